#include "bulwark/attacks/square.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

namespace {

using torch::indexing::Slice;

// The margin z_y − max_{j≠y} z_j: the attack minimises it and succeeds at <= 0.
at::Tensor margin(const at::Tensor& logits, const at::Tensor& y) {
  const auto own = logits.gather(1, y.unsqueeze(1)).squeeze(1);
  const auto others = logits.scatter(1, y.unsqueeze(1), -std::numeric_limits<double>::infinity());
  return own - std::get<0>(others.max(1));
}

// The random draws of the search, from one generator on the CPU.
class Draws {
 public:
  explicit Draws(uint64_t seed) : generator_(make_generator(seed)) {}
  double uniform() { return at::rand({1}, generator_, at::kDouble).item<double>(); }
  // Uniform on {low, …, high − 1} (low when high <= low), as the reference draws it.
  int64_t integer(int64_t low, int64_t high) {
    return high <= low ? low
                       : low + static_cast<int64_t>(std::floor(
                                   static_cast<double>(high - low) * uniform()));
  }
  // ±1 of `shape`, on `options`' device.
  at::Tensor signs(at::IntArrayRef shape, const at::TensorOptions& options) {
    return (at::rand(shape, generator_, at::kDouble) * 2 - 1).sign().to(options);
  }

 private:
  at::Generator generator_;
};

// n×m: nested rectangles around the centre, weight 1/(r+1)² for ring r, unit Frobenius norm.
at::Tensor rectangles(int64_t n, int64_t m) {
  auto out = at::zeros({n, m}, at::kDouble);
  const int64_t cx = n / 2, cy = m / 2;
  for (int64_t r = 0; r < std::max(cx + 1, cy + 1); ++r) {
    out.index({Slice(std::max<int64_t>(cx - r, 0), std::min(cx + r + 1, n)),
               Slice(std::max<int64_t>(cy - r, 0), std::min(cy + r + 1, m))}) +=
        1.0 / static_cast<double>((r + 1) * (r + 1));
  }
  return out / out.norm();
}

// The L2 update's s×s pattern: positive rectangles on top, negative below, unit norm,
// transposed with probability 1/2.
at::Tensor pattern(int64_t s, Draws& draws) {
  auto out = at::cat({rectangles(s / 2, s), -rectangles(s - s / 2, s)});
  out = out / out.norm();
  if (draws.uniform() > 0.5) out = out.t().contiguous();
  return out;
}

// ‖·‖₂ over the dims `dims`, kept.
at::Tensor norm_over(const at::Tensor& t, at::IntArrayRef dims) {
  return t.square().sum(dims, /*keepdim=*/true).sqrt();
}

struct Search {
  at::Tensor best;     // the current point of every sample
  at::Tensor queries;  // int64 forward passes per sample
};

class RandomSearch {
 public:
  RandomSearch(Model& model, const SquareOptions& options, Draws& draws)
      : model_(model), options_(options), draws_(draws) {}

  // One run on clean images x [B, C, H, W] with labels y.
  Search operator()(const at::Tensor& x, const at::Tensor& y) {
    Search out;
    out.best = options_.norm() == Norm::Linf ? linf_start(x) : l2_start(x);
    out.queries = at::ones({x.size(0)}, x.options().dtype(at::kLong));
    auto best_margin = query(out.best, y);
    auto best_loss = best_margin.clone();
    if (best_margin.lt(0).all().item<bool>()) return out;
    const int64_t h = x.size(2), w = x.size(3);
    // The working set: the samples still robust, gathered once and shrunk only when some are
    // fooled, so that an iteration costs little beyond its forward pass.
    auto index = best_margin.gt(0).nonzero().squeeze(1);
    auto clean = x.index_select(0, index), labels = y.index_select(0, index);
    auto current = out.best.index_select(0, index);
    auto margin = best_margin.index_select(0, index), loss = best_loss.index_select(0, index);
    auto queries = out.queries.index_select(0, index);
    const auto write_back = [&](const at::Tensor& rows) {
      const auto at_rows = index.index_select(0, rows);
      out.best.index_copy_(0, at_rows, current.index_select(0, rows));
      out.queries.index_copy_(0, at_rows, queries.index_select(0, rows));
    };
    std::vector<int64_t> shape(x.dim(), 1);
    for (int64_t i = 0; i < options_.queries() && index.size(0) > 0; ++i) {
      const double p = Square::fraction(i, options_.p_init(), options_.queries(),
                                        options_.rescale_schedule());
      const int64_t s = Square::side(p, h, w, options_.norm());
      const auto candidate = options_.norm() == Norm::Linf ? linf_step(clean, current, s)
                                                           : l2_step(clean, current, s);
      const auto m = query(candidate, labels);
      const auto lower = m.lt(loss);
      loss = at::where(lower, m, loss);
      const auto accept = lower.logical_or(m.le(0));
      margin = at::where(accept, m, margin);
      shape[0] = index.size(0);
      current = at::where(accept.reshape(shape), candidate, current);
      queries += 1;
      const auto fooled = margin.le(0);
      if (fooled.any().item<bool>()) {
        write_back(fooled.nonzero().squeeze(1));
        const auto keep = fooled.logical_not().nonzero().squeeze(1);
        index = index.index_select(0, keep);
        clean = clean.index_select(0, keep);
        labels = labels.index_select(0, keep);
        current = current.index_select(0, keep);
        margin = margin.index_select(0, keep);
        loss = loss.index_select(0, keep);
        queries = queries.index_select(0, keep);
      }
    }
    if (index.size(0) > 0) write_back(at::arange(index.size(0), index.options()));
    return out;
  }

  int64_t forward_evaluations() const { return forwards_; }

 private:
  at::Tensor query(const at::Tensor& x, const at::Tensor& y) {
    torch::NoGradGuard no_grad;
    forwards_ += x.size(0);
    const auto logits = model_.forward(x);
    BULWARK_CHECK(at::isfinite(logits).all().item<bool>(),
                  "square: the model '{}' returned NaN or infinite logits", model_.name());
    return margin(logits.to(at::kDouble), y);
  }

  at::Tensor project(const at::Tensor& point, const at::Tensor& clean) const {
    const double eps = options_.eps();
    return options_.box().clamp(at::min(at::max(point, clean - eps), clean + eps));
  }

  // Vertical stripes: one sign per sample, channel and column.
  at::Tensor linf_start(const at::Tensor& x) {
    const auto stripes = draws_.signs({x.size(0), x.size(1), 1, x.size(3)}, x.options());
    return options_.box().clamp(x + options_.eps() * stripes);
  }

  // One s×s window, moved to ±ε per channel (the same window and signs for every sample).
  at::Tensor linf_step(const at::Tensor& clean, const at::Tensor& current, int64_t s) {
    const int64_t vh = draws_.integer(0, clean.size(2) - s);
    const int64_t vw = draws_.integer(0, clean.size(3) - s);
    auto delta = at::zeros({clean.size(1), clean.size(2), clean.size(3)}, clean.options());
    delta.index({Slice(), Slice(vh, vh + s), Slice(vw, vw + s)}) =
        2 * options_.eps() * draws_.signs({clean.size(1), 1, 1}, clean.options());
    return project(current + delta, clean);
  }

  // Tiles of side H/5, each a random-signed pattern per sample and channel, scaled to ε.
  at::Tensor l2_start(const at::Tensor& x) {
    const int64_t h = x.size(2), w = x.size(3);
    const int64_t s = h / 5;
    const int64_t offset = (h - 5 * s) / 2;
    auto delta = at::zeros_like(x);
    for (int64_t a = 0; a < h / s; ++a) {
      for (int64_t b = 0; b < w / s; ++b) {
        const int64_t r = offset + a * s, c = offset + b * s;
        const int64_t rows = std::min(s, h - r), cols = std::min(s, w - c);
        const auto tile = pattern(s, draws_).index({Slice(0, rows), Slice(0, cols)}).to(x.options());
        delta.index({Slice(), Slice(), Slice(r, r + rows), Slice(c, c + cols)}) +=
            tile * draws_.signs({x.size(0), x.size(1), 1, 1}, x.options());
      }
    }
    return options_.box().clamp(x + options_.eps() * delta /
                                        (norm_over(delta, {1, 2, 3}) + 1e-12));
  }

  // Moves the perturbation's mass from two windows into the first, as a fresh pattern plus
  // the old content, with the unused budget shared equally by the channels; then rescales the
  // whole perturbation to norm ε.
  at::Tensor l2_step(const at::Tensor& clean, const at::Tensor& current, int64_t s) {
    const int64_t h = clean.size(2), w = clean.size(3), channels = clean.size(1);
    auto delta = current - clean;
    const int64_t vh = draws_.integer(0, h - s), vw = draws_.integer(0, w - s);
    const auto window = [&](int64_t r, int64_t c) {
      return std::vector<at::indexing::TensorIndex>{Slice(), Slice(), Slice(r, r + s),
                                                    Slice(c, c + s)};
    };
    const auto first = window(vh, vw);
    const auto in_first = norm_over(delta.index(first), {2, 3});
    const int64_t vh2 = draws_.integer(0, h - s), vw2 = draws_.integer(0, w - s);
    const auto second = window(vh2, vw2);
    auto mask = at::zeros({1, 1, h, w}, clean.options());
    mask.index(first) = 1;
    mask.index(second) = 1;
    const auto whole = norm_over(delta, {1, 2, 3});
    const auto in_both = norm_over(delta * mask, {2, 3});
    auto block = pattern(s, draws_).to(clean.options()).view({1, 1, s, s}) *
                 draws_.signs({clean.size(0), channels, 1, 1}, clean.options());
    block = block + delta.index(first) / (in_first + 1e-12);
    const auto budget =
        ((options_.eps() * options_.eps() - whole.square()).clamp_min(0) /
             static_cast<double>(channels) +
         in_both.square())
            .sqrt();
    block = block / (norm_over(block, {2, 3}) + 1e-12) * budget;
    delta.index(second) = 0;
    delta.index(first) = block;
    return options_.box().clamp(clean + options_.eps() * delta /
                                            (norm_over(delta, {1, 2, 3}) + 1e-12));
  }

  Model& model_;
  const SquareOptions& options_;
  Draws& draws_;
  int64_t forwards_ = 0;
};

}  // namespace

Square::Square(SquareOptions options) : options_(std::move(options)) {
  BULWARK_CHECK(options_.eps() >= 0 && std::isfinite(options_.eps()),
                "square: eps must be finite and >= 0, got {}", options_.eps());
  BULWARK_CHECK(options_.queries() >= 1, "square: queries must be >= 1, got {}",
                options_.queries());
  BULWARK_CHECK(options_.restarts() >= 1, "square: restarts must be >= 1, got {}",
                options_.restarts());
  BULWARK_CHECK(options_.p_init() > 0 && options_.p_init() <= 1,
                "square: p_init must be in (0, 1], got {}", options_.p_init());
}

std::unique_ptr<Attack> Square::with_budget(double eps, bool /*early_stop*/) const {
  // The search always stops on a fooled sample: that is its definition, not an option.
  auto options = options_;
  return std::make_unique<Square>(options.eps(eps));
}

double Square::fraction(int64_t it, double p_init, int64_t queries, bool rescale) {
  BULWARK_CHECK(it >= 0 && queries >= 1 && p_init > 0 && p_init <= 1,
                "square: fraction needs it >= 0, queries >= 1 and p_init in (0, 1], got {}, {} "
                "and {}",
                it, queries, p_init);
  if (rescale) it = static_cast<int64_t>(static_cast<double>(it) / queries * 10000);
  static constexpr int64_t kStages[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  double p = p_init;
  for (const int64_t stage : kStages) {
    if (it > stage) p /= 2;
  }
  return p;
}

int64_t Square::side(double p, int64_t height, int64_t width, Norm norm) {
  BULWARK_CHECK(p > 0 && p <= 1 && height >= 1 && width >= 1,
                "square: side needs p in (0, 1] and an image of at least 1×1 pixels, got p {} and "
                "{}×{}",
                p, height, width);
  auto s = static_cast<int64_t>(std::nearbyint(std::sqrt(p * static_cast<double>(height * width))));
  if (norm == Norm::Linf) {
    s = std::max<int64_t>(s, 1);
  } else {
    s = std::max<int64_t>(s, 3);
    if (s % 2 == 0) ++s;
  }
  return std::min({s, height, width});
}

AttackResult Square::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  BULWARK_CHECK(x.dim() == 4, "square: needs images [N, C, H, W], got {}",
                detail::shape_string(x));
  BULWARK_CHECK(options_.norm() == Norm::Linf || (x.size(2) >= 5 && x.size(3) >= 5),
                "square: the L2 version needs images of at least 5×5 pixels, got {}",
                detail::shape_string(x));
  Draws draws(options_.seed());
  RandomSearch search(model, options_, draws);
  AttackResult result;
  result.adversarial = x.clone();
  result.iterations = at::zeros({x.size(0)}, x.options().dtype(at::kLong));
  at::Tensor fooled;
  {
    torch::NoGradGuard no_grad;
    const auto logits = model.forward(x);
    BULWARK_CHECK(at::isfinite(logits).all().item<bool>(),
                  "square: the model '{}' returned NaN or infinite logits on the clean inputs",
                  model.name());
    fooled = logits.argmax(1).ne(y);
    result.forward_evaluations = x.size(0);
  }
  for (int64_t restart = 0; restart < options_.restarts(); ++restart) {
    const auto index = fooled.logical_not().nonzero().squeeze(1);
    if (index.size(0) == 0) break;
    const auto labels = y.index_select(0, index);
    const auto run = search(x.index_select(0, index), labels);
    result.iterations.index_add_(0, index, run.queries);
    torch::NoGradGuard no_grad;
    const auto now = model.forward(run.best).argmax(1).ne(labels);
    result.forward_evaluations += index.size(0);
    // Fooled samples take their point; the others keep the best point of the first run.
    const auto take = restart == 0 ? at::ones_like(now) : now;
    result.adversarial.index_copy_(0, index.index({take}), run.best.index({take}));
    fooled.index_copy_(0, index, now);
  }
  result.forward_evaluations += search.forward_evaluations();
  finish_attack_result(result, model, x, y, false);
  return result;
}

}  // namespace bulwark
