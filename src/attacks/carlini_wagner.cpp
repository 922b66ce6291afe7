#include "bulwark/attacks/carlini_wagner.h"

#include <torch/torch.h>

#include <cmath>

#include "bulwark/core/losses.h"
#include "bulwark/ops/cw_adam_step.h"
#include "core/check.h"

namespace bulwark {

CarliniWagner::CarliniWagner(CarliniWagnerOptions options) : options_(std::move(options)) {
  BULWARK_CHECK(options_.confidence() >= 0, "cw: confidence must be >= 0, got {}",
                options_.confidence());
  BULWARK_CHECK(options_.binary_search_steps() >= 1, "cw: binary_search_steps must be >= 1, got {}",
                options_.binary_search_steps());
  BULWARK_CHECK(options_.initial_const() > 0, "cw: initial_const must be > 0, got {}",
                options_.initial_const());
  BULWARK_CHECK(options_.steps() >= 1, "cw: steps must be >= 1, got {}", options_.steps());
  BULWARK_CHECK(options_.learning_rate() > 0, "cw: learning_rate must be > 0, got {}",
                options_.learning_rate());
  BULWARK_CHECK(options_.eps() >= 0, "cw: eps must be >= 0, got {}", options_.eps());
}

std::unique_ptr<Attack> CarliniWagner::with_budget(double eps, bool) const {
  // C&W always searches for the smallest perturbation; the budget only decides what counts.
  auto options = options_;
  return std::make_unique<CarliniWagner>(options.eps(eps));
}

AttackResult CarliniWagner::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  const int64_t n = x.size(0);
  const double lo = box().lower, hi = box().upper;
  const double kappa = options_.confidence();
  const bool targeted = options_.targeted();
  const auto dbl = x.options().dtype(at::kDouble);
  // tanh change of variables (paper, section 5): x = lo + (hi − lo)(tanh(w) + 1) / 2.
  const auto w0 = at::atanh(((x - lo) / (hi - lo) * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6));
  auto lower = at::zeros({n}, dbl);
  auto upper = at::full({n}, 1e10, dbl);
  auto c = at::full({n}, options_.initial_const(), dbl);
  auto best_l2 = at::full({n}, std::numeric_limits<double>::infinity(), dbl);
  auto best = x.clone();
  AttackResult result;
  result.iterations = at::zeros({n}, x.options().dtype(at::kLong));
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = n;

  for (int64_t search = 0; search < options_.binary_search_steps(); ++search) {
    auto w = w0.clone();
    auto m = at::zeros_like(w);
    auto v = at::zeros_like(w);
    auto succeeded = at::zeros({n}, x.options().dtype(at::kBool));
    const auto c_x = c.to(x.scalar_type());
    double previous = std::numeric_limits<double>::infinity();
    const int64_t check_every = std::max<int64_t>(1, options_.steps() / 10);
    for (int64_t step = 1; step <= options_.steps(); ++step) {
      auto w_var = w.detach().requires_grad_(true);
      const auto adv = lo + (hi - lo) * (at::tanh(w_var) + 1) / 2;
      const auto logits = model.forward(adv);
      const auto l2_sq = (adv - x).pow(2).flatten(1).sum(1);
      const auto margin = cw_margin(logits, y, kappa, targeted);
      const auto loss = l2_sq + c_x * margin;
      const auto grad = torch::autograd::grad({loss.sum()}, {w_var})[0];
      result.gradient_evaluations += n;
      {
        torch::NoGradGuard no_grad;
        // Success at confidence κ: the (targeted) margin has reached −κ and the label flipped.
        const auto success = attack_succeeded(logits, y, targeted)
                                 .logical_and(margin <= -kappa + 1e-12);
        const auto l2 = l2_sq.to(at::kDouble).sqrt();
        const auto improved = success.logical_and(l2 < best_l2);
        best_l2 = at::where(improved, l2, best_l2);
        best = at::where(improved.reshape(shape), adv.detach(), best);
        succeeded.logical_or_(success);
      }
      ops::cw_adam_step_(w, grad, m, v, options_.learning_rate(), 0.9, 0.999, 1e-8, step);
      result.iterations += 1;
      if (options_.abort_early() && step % check_every == 0) {
        const double total = loss.sum().item<double>();
        if (total > previous * 0.9999) break;
        previous = total;
      }
    }
    // Binary search on c, per sample (paper, section 6).
    upper = at::where(succeeded, at::minimum(upper, c), upper);
    lower = at::where(succeeded, lower, at::maximum(lower, c));
    const auto bounded = upper < 1e9;
    c = at::where(bounded, (lower + upper) / 2, c * 10);
  }
  if (std::isfinite(options_.eps())) {
    // Under a budget, a perturbation larger than eps is no success: return the clean input.
    const auto over = best_l2 > options_.eps();
    best = at::where(over.reshape(shape), x, best);
  }
  result.adversarial = best;
  finish_attack_result(result, model, x, y, targeted);
  return result;
}

}  // namespace bulwark
