#include "bulwark/attacks/fab.h"

#include <torch/torch.h>

#include <cmath>

#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

namespace {

// Per row: the number of leading false entries of `reached` (the first true index; the row
// length when none is true).
at::Tensor first_true(const at::Tensor& reached) {
  return reached.logical_not().to(at::kLong).cumprod(1).sum(1);
}

// Row-wise value at column j − 1, or `otherwise` where j == 0 (j < row length).
at::Tensor before(const at::Tensor& values, const at::Tensor& j, const at::Tensor& otherwise) {
  const auto previous = (j - 1).clamp_min(0).unsqueeze(1);
  return at::where(j.gt(0), values.gather(1, previous).squeeze(1), otherwise);
}

// Both projections move along a one-parameter family s >= 0 whose effect on ⟨w, ·⟩ is
// piecewise linear between sorted breakpoints: up to breakpoint j it has reached fixed_j
// (saturated coordinates) + s·rate_j (the others). `reached` [N, d] marks the breakpoints at
// which the target c is met. Returns the s that meets c exactly on the first such segment, and
// whether any does.
std::pair<at::Tensor, at::Tensor> solve_between_breakpoints(const at::Tensor& reached,
                                                            const at::Tensor& fixed,
                                                            const at::Tensor& rate,
                                                            const at::Tensor& total_rate,
                                                            const at::Tensor& c) {
  const auto j = first_true(reached);
  const auto slope = before(rate, j, total_rate);
  const auto zeros = at::zeros_like(c);
  const auto s = at::where(slope.gt(0), (c - before(fixed, j, zeros)) / slope, zeros).clamp_min(0);
  return {s, reached.any(1)};
}

// ⟨w, δ⟩ = −c with c >= 0 (rows flipped so), ‖δ‖∞ smallest, t + δ in the box. The descent
// direction is −sign(w); coordinate i has room p_i to the box. G(λ) = Σ|w_i|·min(λ, p_i) is
// piecewise linear and nondecreasing: solve G(λ) = c between the sorted breakpoints.
at::Tensor project_linf(const at::Tensor& t, const at::Tensor& w, const at::Tensor& c,
                        const InputBox& box) {
  const auto room = at::where(w.gt(0), t - box.lower, box.upper - t).clamp_min(0);
  const auto weight = w.abs();
  const auto [p, order] = room.sort(1);
  const auto a = weight.gather(1, order);
  const auto total = a.sum(1);
  const auto below = (a * p).cumsum(1);       // Σ_{m<=j} |w|·p over the sorted coordinates
  const auto above = total.unsqueeze(1) - a.cumsum(1);  // Σ_{m>j} |w|
  const auto [lambda, reachable] =
      solve_between_breakpoints((below + p * above).ge(c.unsqueeze(1)), below, above, total, c);
  const auto partial = -w.sign() * at::min(lambda.unsqueeze(1), room);
  const auto corner = -w.sign() * room;
  return at::where(reachable.unsqueeze(1), partial, corner);
}

// ⟨w, δ⟩ = −c with c >= 0, ‖δ‖₂ smallest, t + δ in the box: δ(α) = clip(−α·w) to the box,
// with ⟨w, δ(α)⟩ = −α·Σ_{r_i>α} w_i² − Σ_{r_i<=α} r_i·w_i², where r_i is the α at which
// coordinate i reaches the box. Solve between the sorted r.
at::Tensor project_l2(const at::Tensor& t, const at::Tensor& w, const at::Tensor& c,
                      const InputBox& box) {
  const auto frozen = w.abs().le(1e-8);
  const auto v = w.masked_fill(frozen, 0);
  const auto safe = v.masked_fill(frozen, 1);
  const auto r = at::where(v.gt(0), (t - box.lower) / safe, (t - box.upper) / safe)
                     .masked_fill(frozen, 1e12)
                     .clamp(0, 1e12);
  const auto [sorted_r, order] = r.sort(1);
  const auto w2 = v.square().gather(1, order);
  const auto total = w2.sum(1);
  const auto saturated = (sorted_r * w2).cumsum(1);
  const auto free = total.unsqueeze(1) - w2.cumsum(1);
  const auto [alpha, reachable] = solve_between_breakpoints(
      (c.unsqueeze(1) - sorted_r * free - saturated).le(0), saturated, free, total, c);
  const auto lower = box.lower - t, upper = box.upper - t;
  const auto partial = at::max(at::min(-alpha.unsqueeze(1) * v, upper), lower);
  const auto full = at::where(v.gt(0), lower, at::where(v.lt(0), upper, at::zeros_like(t)));
  return at::where(reachable.unsqueeze(1), partial, full);
}

at::Tensor flat_norm(const at::Tensor& t, Norm norm) {
  return norm == Norm::Linf ? t.abs().amax(1) : t.norm(2, {1});
}

struct Run {
  at::Tensor adversarial;  // the smallest adversarial point found (the clean point if none)
  at::Tensor distance;     // its norm (+inf if none)
  int64_t gradient_evaluations = 0;
  int64_t forward_evaluations = 0;
  at::Tensor iterations;
};

class SingleRun {
 public:
  SingleRun(Model& model, const FABOptions& options, at::Tensor clean, at::Tensor labels,
            at::Tensor targets)
      : model_(model), options_(options), shape_(clean.sizes().vec()),
        clean_(clean.flatten(1)), labels_(std::move(labels)), targets_(std::move(targets)) {}

  Run operator()(bool random_start, at::Generator& generator) {
    const int64_t n = clean_.size(0);
    Run run;
    run.adversarial = clean_.clone();
    run.distance = at::full({n}, std::numeric_limits<double>::infinity(),
                            clean_.options().dtype(at::kDouble));
    run.iterations = at::zeros({n}, clean_.options().dtype(at::kLong));
    auto position = at::arange(n, clean_.options().dtype(at::kLong));
    auto x0 = clean_, labels = labels_, targets = targets_;
    auto x1 = clean_.clone();
    if (random_start) {
      const auto t = options_.norm() == Norm::Linf
                         ? at::rand(x1.sizes(), generator, x1.options()) * 2 - 1
                         : at::randn(x1.sizes(), generator, x1.options());
      x1 = options_.box().clamp(
          x0 + 0.5 * options_.eps() * t / flat_norm(t, options_.norm()).clamp_min(1e-12).unsqueeze(1));
    }
    const auto norm = options_.norm();
    for (int64_t it = 0; it < options_.steps() && position.size(0) > 0; ++it) {
      const auto [df, dg] = linearise(x1, labels, targets, run);
      const auto b = -df + (dg * x1).sum(1);
      const auto both = project_onto_hyperplane_in_box(at::cat({x1, x0}), at::cat({dg, dg}),
                                                       at::cat({b, b}), norm, options_.box());
      const int64_t m = x1.size(0);
      const auto d1 = both.narrow(0, 0, m), d2 = both.narrow(0, m, m);
      const auto a1 = flat_norm(d1, norm).clamp_min(1e-8);
      const auto a2 = flat_norm(d2, norm).clamp_min(1e-8);
      const auto alpha = (a1 / (a1 + a2)).clamp(0, options_.alpha_max()).unsqueeze(1);
      x1 = options_.box().clamp((1 - alpha) * (x1 + options_.eta() * d1) +
                                alpha * (x0 + options_.eta() * d2));
      at::Tensor is_adv;
      {
        torch::NoGradGuard no_grad;
        is_adv = model_.forward(x1.view(shape_for(m))).argmax(1).ne(labels);
        run.forward_evaluations += m;
      }
      run.iterations.index_add_(0, position, at::ones_like(position));
      const auto distance = flat_norm(x1 - x0, norm).to(at::kDouble);
      const auto closer = is_adv.logical_and(distance.lt(run.distance.index_select(0, position)));
      const auto rows = position.index({closer});
      run.adversarial.index_copy_(0, rows, x1.index({closer}));
      run.distance.index_copy_(0, rows, distance.index({closer}));
      x1 = at::where(is_adv.unsqueeze(1), x0 + options_.beta() * (x1 - x0), x1);
      if (options_.early_stop()) {
        const auto keep =
            run.distance.index_select(0, position).gt(options_.eps()).nonzero().squeeze(1);
        if (keep.size(0) < position.size(0)) {
          position = position.index_select(0, keep);
          x0 = x0.index_select(0, keep);
          x1 = x1.index_select(0, keep);
          labels = labels.index_select(0, keep);
          if (targets.defined()) targets = targets.index_select(0, keep);
        }
      }
    }
    run.adversarial = run.adversarial.view(shape_for(n));
    return run;
  }

 private:
  std::vector<int64_t> shape_for(int64_t n) const {
    auto shape = shape_;
    shape[0] = n;
    return shape;
  }

  // The linearised boundary at x1: f = z_k − z_y and its gradient, for the target class, or
  // (untargeted) for the class whose linearised boundary is nearest in the dual norm.
  std::pair<at::Tensor, at::Tensor> linearise(const at::Tensor& x1, const at::Tensor& labels,
                                              const at::Tensor& targets, Run& run) {
    const int64_t m = x1.size(0);
    auto input = x1.detach().view(shape_for(m)).requires_grad_(true);
    const auto logits = model_.forward(input);
    const auto own = logits.gather(1, labels.unsqueeze(1)).squeeze(1);
    if (targets.defined()) {
      const auto f = logits.gather(1, targets.unsqueeze(1)).squeeze(1) - own;
      const auto g = torch::autograd::grad({f.sum()}, {input})[0];
      run.gradient_evaluations += m;
      return {f.detach(), g.flatten(1)};
    }
    const int64_t classes = logits.size(1);
    std::vector<at::Tensor> grads;
    for (int64_t k = 0; k < classes; ++k) {
      grads.push_back(torch::autograd::grad({logits.select(1, k).sum()}, {input}, {},
                                            /*retain_graph=*/k + 1 < classes)[0]
                          .flatten(1));
    }
    run.gradient_evaluations += m * classes;
    const auto jacobian = at::stack(grads, 1);  // [m, K, d]
    const auto own_grad = jacobian.gather(1, labels.view({m, 1, 1}).expand({m, 1, jacobian.size(2)}));
    auto df = (logits.detach() - own.detach().unsqueeze(1))
                  .scatter(1, labels.unsqueeze(1), 1e10);
    const auto dg = jacobian - own_grad;
    const auto dual = options_.norm() == Norm::Linf ? dg.abs().sum(2) : dg.norm(2, {2});
    const auto k = (df.abs() / (dual + 1e-12)).argmin(1);
    return {df.gather(1, k.unsqueeze(1)).squeeze(1),
            dg.gather(1, k.view({m, 1, 1}).expand({m, 1, dg.size(2)})).squeeze(1)};
  }

  Model& model_;
  const FABOptions& options_;
  std::vector<int64_t> shape_;
  at::Tensor clean_, labels_, targets_;
};

}  // namespace

at::Tensor project_onto_hyperplane_in_box(const at::Tensor& t, const at::Tensor& w,
                                          const at::Tensor& b, Norm norm, const InputBox& box) {
  BULWARK_CHECK(t.defined() && w.defined() && b.defined() && t.dim() == 2 &&
                    w.sizes() == t.sizes() && b.dim() == 1 && b.size(0) == t.size(0),
                "project_onto_hyperplane_in_box: needs t [N, d], w [N, d] and b [N], got {}, {} "
                "and {}",
                t.defined() ? detail::shape_string(t) : "undefined",
                w.defined() ? detail::shape_string(w) : "undefined",
                b.defined() ? detail::shape_string(b) : "undefined");
  const auto c = (w * t).sum(1) - b;
  // Orient every row so that ⟨w, t⟩ must decrease by c >= 0.
  const auto sign = at::where(c.lt(0), -at::ones_like(c), at::ones_like(c));
  const auto oriented = w * sign.unsqueeze(1);
  return norm == Norm::Linf ? project_linf(t, oriented, c * sign, box)
                            : project_l2(t, oriented, c * sign, box);
}

FAB::FAB(FABOptions options) : options_(std::move(options)) {
  const char* name = options_.targeted() ? "fab-t" : "fab";
  BULWARK_CHECK(options_.eps() >= 0 && std::isfinite(options_.eps()),
                "{}: eps must be finite and >= 0, got {}", name, options_.eps());
  BULWARK_CHECK(options_.steps() >= 1, "{}: steps must be >= 1, got {}", name, options_.steps());
  BULWARK_CHECK(options_.restarts() >= 1, "{}: restarts must be >= 1, got {}", name,
                options_.restarts());
  BULWARK_CHECK(options_.target_classes() >= 1, "{}: target_classes must be >= 1, got {}", name,
                options_.target_classes());
  BULWARK_CHECK(options_.alpha_max() >= 0 && options_.alpha_max() <= 1,
                "{}: alpha_max must be in [0, 1], got {}", name, options_.alpha_max());
  BULWARK_CHECK(options_.eta() > 0 && std::isfinite(options_.eta()),
                "{}: eta must be finite and > 0, got {}", name, options_.eta());
  BULWARK_CHECK(options_.beta() > 0 && options_.beta() <= 1, "{}: beta must be in (0, 1], got {}",
                name, options_.beta());
}

std::unique_ptr<Attack> FAB::with_budget(double eps, bool early_stop) const {
  auto options = options_;
  return std::make_unique<FAB>(options.eps(eps).early_stop(early_stop));
}

AttackResult FAB::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  auto generator = make_generator(options_.seed(), x.device());
  AttackResult result;
  result.adversarial = x.clone();
  result.iterations = at::zeros({x.size(0)}, x.options().dtype(at::kLong));
  at::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model.forward(x);
  }
  BULWARK_CHECK(at::isfinite(logits).all().item<bool>(),
                "{}: the model '{}' returned NaN or infinite logits on the clean inputs", name(),
                model.name());
  result.forward_evaluations = x.size(0);
  auto fooled = logits.argmax(1).ne(y);
  const auto ranked = std::get<1>(logits.sort(1, /*descending=*/true));
  const int64_t rounds =
      options_.targeted() ? std::min(options_.target_classes(), logits.size(1) - 1) : 1;
  for (int64_t k = 1; k <= rounds; ++k) {
    for (int64_t restart = 0; restart < options_.restarts(); ++restart) {
      const auto index = fooled.logical_not().nonzero().squeeze(1);
      if (index.size(0) == 0) break;
      const auto targets =
          options_.targeted() ? ranked.select(1, k).index_select(0, index) : at::Tensor();
      auto run = SingleRun(model, options_, x.index_select(0, index), y.index_select(0, index),
                           targets)(restart > 0, generator);
      result.gradient_evaluations += run.gradient_evaluations;
      result.forward_evaluations += run.forward_evaluations;
      result.iterations.index_add_(0, index, run.iterations);
      // Fooled: misclassified (checked on every improvement) and within ε.
      const auto success = run.distance.le(options_.eps());
      result.adversarial.index_copy_(0, index.index({success}), run.adversarial.index({success}));
      fooled.index_fill_(0, index.index({success}), true);
    }
  }
  finish_attack_result(result, model, x, y, false);
  return result;
}

}  // namespace bulwark
