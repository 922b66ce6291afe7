#include "bulwark/defenses/adaptive_attack.h"

#include <torch/torch.h>

#include <cmath>

#include "bulwark/attacks/pgd.h"
#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

void AdaptiveAttackOptions::validate() const {
  BULWARK_CHECK(eps_ >= 0 && std::isfinite(eps_), "adaptive attack: eps must be finite and >= 0, got {}",
                eps_);
  BULWARK_CHECK(steps_ >= 1, "adaptive attack: steps must be >= 1, got {}", steps_);
  BULWARK_CHECK(std::isfinite(step_size_), "adaptive attack: step_size must be finite");
  BULWARK_CHECK(detector_weight_ >= 0 && std::isfinite(detector_weight_),
                "adaptive attack: detector_weight must be finite and >= 0, got {}",
                detector_weight_);
  BULWARK_CHECK(kappa_ >= 0 && std::isfinite(kappa_),
                "adaptive attack: kappa must be finite and >= 0, got {}", kappa_);
}

at::Tensor adaptive_attack(Model& model, Detector& detector, const at::Tensor& x,
                           const at::Tensor& y, const AdaptiveAttackOptions& options) {
  options.validate();
  constexpr std::string_view where = "adaptive attack";
  detail::check_float_tensor(where, "x", x, 2);
  options.box().check_contains(where, "x", x);
  BULWARK_CHECK(y.defined() && y.device() == x.device(), "adaptive attack: y must be on x's device");
  if (x.size(0) == 0) return x.clone();
  EvalModeGuard eval_mode(model);
  int64_t classes = 0;
  {
    torch::NoGradGuard no_grad;
    classes = model.forward(x.slice(0, 0, 1)).size(1);
  }
  detail::check_labels(where, "y", y, x.size(0), classes);
  // One model that returns the classifier's logits and the detector's score as column K.
  auto defended = Model::composite(
      {model},
      [model, &detector](const at::Tensor& input) mutable {
        return at::cat({model.forward(input), detector.adaptive_score(input).unsqueeze(1)}, 1);
      },
      "defended(" + model.name() + "," + detector.name() + ")");
  const auto labels = y.to(at::kLong);
  const double kappa = options.kappa();
  const double weight = options.detector_weight();
  const auto objective = [&labels, classes, kappa, weight](const at::Tensor& out) {
    const auto logits = out.slice(1, 0, classes);
    const auto score = out.select(1, classes);
    const auto true_logit = logits.gather(1, labels.unsqueeze(1)).squeeze(1);
    const auto others = logits.scatter(1, labels.unsqueeze(1), -std::numeric_limits<float>::infinity());
    const auto margin = (std::get<0>(others.max(1)) - true_logit).clamp_max(kappa);
    return margin - weight * score;
  };
  const PGD pgd(PGDOptions(options.eps())
                    .norm(options.norm())
                    .steps(options.steps())
                    .step_size(options.step_size())
                    .box(options.box())
                    .seed(options.seed()));
  auto generator = make_generator(options.seed(), x.device());
  return pgd.perturb(defended, x.detach(), labels, generator, objective);
}

}  // namespace bulwark
