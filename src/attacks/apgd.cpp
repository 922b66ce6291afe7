#include "bulwark/attacks/apgd.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "bulwark/core/losses.h"
#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

std::string to_string(APGDLoss loss) {
  switch (loss) {
    case APGDLoss::CrossEntropy: return "ce";
    case APGDLoss::DLR: return "dlr";
    case APGDLoss::TargetedDLR: return "dlr-targeted";
    case APGDLoss::TargetedCrossEntropy: return "ce-targeted";
  }
  return "unknown";
}

// ---- Step-size control --------------------------------------------------------------------

namespace {

struct Windows {
  int64_t first, shrink, min;
};

// The reference implementation's window sizes: int(0.22 N), int(0.03 N), int(0.06 N), each at
// least 1.
Windows windows(int64_t steps) {
  const auto n = static_cast<double>(steps);
  const auto at_least_one = [](double v) { return std::max<int64_t>(static_cast<int64_t>(v), 1); };
  return {at_least_one(0.22 * n), at_least_one(0.03 * n), at_least_one(0.06 * n)};
}

}  // namespace

APGDStepControl::APGDStepControl(int64_t steps, double rho, const at::Tensor& initial_best_loss)
    : steps_(steps), rho_(rho) {
  BULWARK_CHECK(steps >= 1, "apgd: steps must be >= 1, got {}", steps);
  BULWARK_CHECK(rho > 0 && rho <= 1, "apgd: rho must be in (0, 1], got {}", rho);
  BULWARK_CHECK(initial_best_loss.defined() && initial_best_loss.dim() == 1,
                "apgd: the step control needs a 1-D loss per sample");
  const auto w = windows(steps);
  window_ = w.first;
  shrink_ = w.shrink;
  min_window_ = w.min;
  history_ = at::zeros({steps, initial_best_loss.size(0)}, initial_best_loss.options());
  best_at_last_check_ = initial_best_loss.detach().clone();
  // As in the reference, the "no improvement since the last checkpoint" rule is off at the
  // first checkpoint.
  halved_at_last_check_ = at::ones({initial_best_loss.size(0)},
                                   initial_best_loss.options().dtype(at::kBool));
}

std::vector<int64_t> APGDStepControl::checkpoints(int64_t steps) {
  BULWARK_CHECK(steps >= 1, "apgd: steps must be >= 1, got {}", steps);
  const auto w = windows(steps);
  std::vector<int64_t> out;
  for (int64_t at = w.first, window = w.first; at <= steps;) {
    out.push_back(at);
    window = std::max(window - w.shrink, w.min);
    at += window;
  }
  return out;
}

at::Tensor APGDStepControl::update(int64_t i, const at::Tensor& loss, const at::Tensor& best_loss) {
  BULWARK_CHECK(i >= 0 && i < steps_, "apgd: iteration {} outside [0, {})", i, steps_);
  history_.select(0, i).copy_(loss.detach());
  if (++since_check_ < window_) return at::zeros_like(halved_at_last_check_);
  // How many of the window's k steps raised the loss. The first window's first comparison is
  // against row -1, which the reference reads (numpy-style) as the last, still zero, row.
  auto rises = at::zeros({history_.size(1)}, history_.options().dtype(at::kLong));
  for (int64_t c = 0; c < window_; ++c) {
    const int64_t j = i - c;
    const int64_t previous = (j - 1 + steps_) % steps_;
    rises += history_.select(0, j).gt(history_.select(0, previous));
  }
  const auto oscillating =
      rises.to(at::kDouble).le(static_cast<double>(window_) * rho_);
  const auto stalled =
      halved_at_last_check_.logical_not().logical_and(best_at_last_check_.ge(best_loss));
  const auto halve = oscillating.logical_or(stalled);
  halved_at_last_check_ = halve.clone();
  best_at_last_check_ = best_loss.detach().clone();
  since_check_ = 0;
  window_ = std::max(window_ - shrink_, min_window_);
  return halve;
}

void APGDStepControl::keep(const at::Tensor& rows) {
  history_ = history_.index_select(1, rows);
  best_at_last_check_ = best_at_last_check_.index_select(0, rows);
  halved_at_last_check_ = halved_at_last_check_.index_select(0, rows);
}

// ---- One run ------------------------------------------------------------------------------

namespace {

at::Tensor apgd_objective(APGDLoss loss, const at::Tensor& logits, const at::Tensor& y,
                          const at::Tensor& target) {
  switch (loss) {
    case APGDLoss::CrossEntropy: return cross_entropy(logits, y, Reduction::None);
    case APGDLoss::DLR: return dlr_loss(logits, y);
    case APGDLoss::TargetedDLR: return dlr_loss(logits, y, target);
    case APGDLoss::TargetedCrossEntropy: return -cross_entropy(logits, target, Reduction::None);
  }
  throw Error("apgd: unknown loss");
}

at::Tensor per_sample_view(const at::Tensor& v, const at::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return v.reshape(shape);
}

// The reference's start: L∞, a uniform draw in [-1, 1]^d scaled so that its largest coordinate
// is ε; L2, a Gaussian direction scaled to norm ε; then clamped into the box.
at::Tensor apgd_start(const at::Tensor& x, double eps, Norm norm, const InputBox& box,
                      at::Generator& generator) {
  at::Tensor t;
  if (norm == Norm::Linf) {
    t = at::rand(x.sizes(), generator, x.options()) * 2 - 1;
  } else {
    t = at::randn(x.sizes(), generator, x.options());
  }
  const auto scale = per_sample_norm(t, norm).clamp_min(1e-12);
  return box.clamp(x + per_sample_view(eps / scale, x) * t);
}

// Onto the ε-ball around `clean`, then into the box (the reference's order).
at::Tensor apgd_project(const at::Tensor& point, const at::Tensor& clean, double eps, Norm norm,
                        const InputBox& box) {
  if (norm == Norm::Linf) return box.clamp(at::min(at::max(point, clean - eps), clean + eps));
  const auto delta = point - clean;
  const auto length = per_sample_norm(delta, Norm::L2);
  const auto scale = length.clamp_max(eps) / (length + 1e-12);
  return box.clamp(clean + delta * per_sample_view(scale, delta));
}

struct Evaluation {
  at::Tensor logits, loss, grad;
};

struct Run {
  at::Tensor adversarial;  // the first misclassified iterate, or the point of highest loss
  at::Tensor fooled;       // bool
  at::Tensor iterations;   // int64
  int64_t gradient_evaluations = 0;
  int64_t forward_evaluations = 0;
};

class SingleRun {
 public:
  SingleRun(Model& model, const APGDOptions& options, at::Tensor clean, at::Tensor labels,
            at::Tensor targets, at::Generator& generator)
      : model_(model), options_(options), clean_(std::move(clean)), labels_(std::move(labels)),
        targets_(std::move(targets)) {
    const int64_t n = clean_.size(0);
    run_.adversarial = clean_.clone();
    run_.fooled = at::zeros({n}, clean_.options().dtype(at::kBool));
    run_.iterations = at::zeros({n}, clean_.options().dtype(at::kLong));
    position_ = at::arange(n, clean_.options().dtype(at::kLong));
    adv_ = apgd_start(clean_, options_.eps(), options_.norm(), options_.box(), generator);
  }

  Run operator()() {
    auto now = evaluate(adv_, true);
    best_ = adv_.clone();
    best_loss_ = now.loss.clone();
    grad_ = now.grad;
    grad_best_ = grad_.clone();
    step_ = at::full({clean_.size(0)}, 2.0 * options_.eps(), clean_.options());
    APGDStepControl control(options_.steps(), options_.rho(), best_loss_);
    auto previous = adv_.clone();
    retire(now.logits, adv_, control, &previous);
    for (int64_t i = 0; i < options_.steps() && position_.size(0) > 0; ++i) {
      const double a = i > 0 ? 0.75 : 1.0;
      const auto momentum = adv_ - previous;
      previous = adv_;
      const auto direction =
          options_.norm() == Norm::Linf
              ? grad_.sign()
              : grad_ / per_sample_view(per_sample_norm(grad_, Norm::L2) + 1e-12, grad_);
      const auto eps = options_.eps();
      auto next = apgd_project(adv_ + per_sample_view(step_, adv_) * direction, clean_, eps,
                               options_.norm(), options_.box());
      next = apgd_project(adv_ + (next - adv_) * a + momentum * (1 - a), clean_, eps,
                          options_.norm(), options_.box());
      adv_ = next;
      // The last iterate's gradient is never used: a forward pass judges it.
      now = evaluate(adv_, i + 1 < options_.steps());
      run_.iterations.index_add_(0, position_, at::ones_like(position_));
      const auto improved = now.loss.gt(best_loss_);
      const auto rows = per_sample_view(improved, adv_);
      best_ = at::where(rows, adv_, best_);
      best_loss_ = at::where(improved, now.loss, best_loss_);
      if (now.grad.defined()) {
        grad_ = now.grad;
        grad_best_ = at::where(rows, grad_, grad_best_);
      }
      const auto iterate = adv_;
      const auto halve = control.update(i, now.loss, best_loss_);
      if (halve.any().item<bool>()) {
        step_ = at::where(halve, step_ / 2, step_);
        const auto reset = per_sample_view(halve, adv_);
        adv_ = at::where(reset, best_, adv_);
        if (grad_.defined()) grad_ = at::where(reset, grad_best_, grad_);
      }
      retire(now.logits, iterate, control, &previous);
    }
    // The samples never fooled end at their point of highest loss.
    const auto unfooled = run_.fooled.index_select(0, position_).logical_not();
    run_.adversarial.index_copy_(0, position_.index({unfooled}), best_.index({unfooled}));
    return std::move(run_);
  }

 private:
  // The loss and (averaged over eot_iter passes) its gradient at `x`.
  Evaluation evaluate(const at::Tensor& x, bool with_grad) {
    Evaluation out;
    const int64_t n = x.size(0);
    if (!with_grad) {
      torch::NoGradGuard no_grad;
      out.logits = model_.forward(x);
      out.loss = apgd_objective(options_.loss(), out.logits, labels_, targets_);
      run_.forward_evaluations += n;
      return out;
    }
    for (int64_t e = 0; e < options_.eot_iter(); ++e) {
      auto input = x.detach().requires_grad_(true);
      out.logits = model_.forward(input);
      out.loss = apgd_objective(options_.loss(), out.logits, labels_, targets_);
      auto grad = torch::autograd::grad({out.loss.sum()}, {input})[0];
      out.grad = out.grad.defined() ? out.grad + grad : grad;
      run_.gradient_evaluations += n;
    }
    if (options_.eot_iter() > 1) out.grad = out.grad / static_cast<double>(options_.eot_iter());
    out.logits = out.logits.detach();
    out.loss = out.loss.detach();
    return out;
  }

  // Records the samples that `iterate` misclassifies; with early stopping, they leave.
  void retire(const at::Tensor& logits, const at::Tensor& iterate, APGDStepControl& control,
              at::Tensor* previous = nullptr) {
    const auto fooled = logits.argmax(1).ne(labels_);
    if (!fooled.any().item<bool>()) return;
    const auto rows = position_.index({fooled});
    run_.adversarial.index_copy_(0, rows, iterate.index({fooled}));
    run_.fooled.index_fill_(0, rows, true);
    if (!options_.early_stop()) return;
    const auto keep = fooled.logical_not().nonzero().squeeze(1);
    position_ = position_.index_select(0, keep);
    for (auto* t : {&clean_, &labels_, &adv_, &best_, &best_loss_, &grad_, &grad_best_, &step_}) {
      if (t->defined()) *t = t->index_select(0, keep);
    }
    if (targets_.defined()) targets_ = targets_.index_select(0, keep);
    if (previous != nullptr) *previous = previous->index_select(0, keep);
    control.keep(keep);
  }

  Model& model_;
  const APGDOptions& options_;
  at::Tensor clean_, labels_, targets_;
  at::Tensor adv_, best_, best_loss_, grad_, grad_best_, step_, position_;
  Run run_;
};

void check_options(const char* name, const APGDOptions& o) {
  BULWARK_CHECK(o.eps() >= 0 && std::isfinite(o.eps()), "{}: eps must be finite and >= 0, got {}",
                name, o.eps());
  BULWARK_CHECK(o.steps() >= 1, "{}: steps must be >= 1, got {}", name, o.steps());
  BULWARK_CHECK(o.restarts() >= 1, "{}: restarts must be >= 1, got {}", name, o.restarts());
  BULWARK_CHECK(o.eot_iter() >= 1, "{}: eot_iter must be >= 1, got {}", name, o.eot_iter());
  BULWARK_CHECK(o.rho() > 0 && o.rho() <= 1, "{}: rho must be in (0, 1], got {}", name, o.rho());
}

bool is_targeted(APGDLoss loss) {
  return loss == APGDLoss::TargetedDLR || loss == APGDLoss::TargetedCrossEntropy;
}

// The clean logits: finite, with enough classes for the loss.
at::Tensor clean_logits(const std::string& name, Model& model, const at::Tensor& x,
                        APGDLoss loss) {
  torch::NoGradGuard no_grad;
  const auto logits = model.forward(x);
  BULWARK_CHECK(logits.dim() == 2, "{}: the model must return logits [N, classes], got {}", name,
                detail::shape_string(logits));
  BULWARK_CHECK(at::isfinite(logits).all().item<bool>(),
                "{}: the model '{}' returned NaN or infinite logits on the clean inputs", name,
                model.name());
  const int64_t needed = loss == APGDLoss::DLR ? 3 : loss == APGDLoss::TargetedDLR ? 4 : 2;
  BULWARK_CHECK(logits.size(1) >= needed,
                "{}: the {} loss needs at least {} classes, the model has {}; use the "
                "cross-entropy loss (ce{})",
                name, to_string(loss), needed, logits.size(1), is_targeted(loss) ? "-targeted" : "");
  return logits;
}

// Runs `restarts` runs towards `targets` (undefined: untargeted) on the samples not fooled yet,
// folding each into `result` and `fooled`.
void run_restarts(Model& model, const APGDOptions& options, const at::Tensor& x,
                  const at::Tensor& y, const at::Tensor& targets, at::Generator& generator,
                  at::Tensor& fooled, AttackResult& result) {
  for (int64_t restart = 0; restart < options.restarts(); ++restart) {
    const auto index = fooled.logical_not().nonzero().squeeze(1);
    if (index.size(0) == 0) return;
    auto run = SingleRun(model, options, x.index_select(0, index), y.index_select(0, index),
                         targets.defined() ? targets.index_select(0, index) : at::Tensor(),
                         generator)();
    result.gradient_evaluations += run.gradient_evaluations;
    result.forward_evaluations += run.forward_evaluations;
    result.iterations.index_add_(0, index, run.iterations);
    // A fooled sample keeps its misclassified iterate; the others the latest run's best point.
    result.adversarial.index_copy_(0, index, run.adversarial);
    fooled.index_copy_(0, index, run.fooled);
  }
}

// Both attacks: the clean pass, then for each round (a target per sample, or undefined for
// untargeted) the restarts on the samples not fooled yet.
template <typename Rounds>
AttackResult perform_runs(const std::string& name, const APGDOptions& options, Model& model,
                          const at::Tensor& x, const at::Tensor& y, Rounds&& rounds_of) {
  auto generator = make_generator(options.seed(), x.device());
  const auto logits = clean_logits(name, model, x, options.loss());
  AttackResult result;
  result.adversarial = x.clone();
  result.iterations = at::zeros({x.size(0)}, x.options().dtype(at::kLong));
  result.forward_evaluations = x.size(0);
  auto fooled = logits.argmax(1).ne(y);
  for (const auto& targets : rounds_of(logits)) {
    run_restarts(model, options, x, y, targets, generator, fooled, result);
  }
  finish_attack_result(result, model, x, y, false);
  return result;
}

}  // namespace

// ---- APGD and APGD-T ------------------------------------------------------------------------

APGD::APGD(APGDOptions options) : options_(std::move(options)) {
  check_options("apgd", options_);
  BULWARK_CHECK(!is_targeted(options_.loss()),
                "apgd: the {} loss is targeted; use APGDTargeted (apgd-t)",
                to_string(options_.loss()));
}

std::string APGD::name() const { return "apgd-" + to_string(options_.loss()); }

std::unique_ptr<Attack> APGD::with_budget(double eps, bool early_stop) const {
  auto options = options_;
  return std::make_unique<APGD>(options.eps(eps).early_stop(early_stop));
}

AttackResult APGD::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  return perform_runs(name(), options_, model, x, y, [](const at::Tensor&) {
    return std::vector<at::Tensor>{at::Tensor()};  // one untargeted round
  });
}

APGDTargeted::APGDTargeted(APGDOptions options) : options_(std::move(options)) {
  if (options_.loss() == APGDLoss::CrossEntropy) options_.loss(APGDLoss::TargetedDLR);
  check_options("apgd-t", options_);
  BULWARK_CHECK(is_targeted(options_.loss()),
                "apgd-t: needs a targeted loss (dlr-targeted or ce-targeted), got {}",
                to_string(options_.loss()));
  BULWARK_CHECK(options_.target_classes() >= 1, "apgd-t: target_classes must be >= 1, got {}",
                options_.target_classes());
}

std::unique_ptr<Attack> APGDTargeted::with_budget(double eps, bool early_stop) const {
  auto options = options_;
  return std::make_unique<APGDTargeted>(options.eps(eps).early_stop(early_stop));
}

AttackResult APGDTargeted::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  const int64_t wanted = options_.target_classes();
  return perform_runs(name(), options_, model, x, y, [wanted](const at::Tensor& logits) {
    // Targets: the classes with the 2nd, 3rd, … largest clean logit.
    const auto ranked = std::get<1>(logits.sort(1, /*descending=*/true));
    std::vector<at::Tensor> rounds;
    for (int64_t k = 1; k <= std::min(wanted, logits.size(1) - 1); ++k) {
      rounds.push_back(ranked.select(1, k).contiguous());
    }
    return rounds;
  });
}

}  // namespace bulwark
