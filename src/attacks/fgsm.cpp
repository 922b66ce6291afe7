#include "bulwark/attacks/fgsm.h"

#include <torch/torch.h>

#include <cmath>

#include "bulwark/attacks/pgd.h"
#include "bulwark/ops/project_step.h"
#include "core/check.h"

namespace bulwark {

FGSM::FGSM(FGSMOptions options) : options_(std::move(options)) {
  BULWARK_CHECK(options_.eps() >= 0 && std::isfinite(options_.eps()),
                "fgsm: eps must be finite and >= 0, got {}", options_.eps());
}

std::unique_ptr<Attack> FGSM::with_budget(double eps, bool) const {
  auto options = options_;
  return std::make_unique<FGSM>(options.eps(eps));
}

AttackResult FGSM::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  auto input = x.clone().requires_grad_(true);
  const auto objective =
      attack_objective(AttackLoss::CrossEntropy, model.forward(input), y, options_.targeted());
  const auto grad = torch::autograd::grad({objective.sum()}, {input})[0];
  AttackResult result;
  result.adversarial = ops::project_step(x, grad, x, options_.eps(), options_.eps(),
                                         options_.norm(), box().lower, box().upper);
  result.iterations = at::ones({x.size(0)}, x.options().dtype(at::kLong));
  result.gradient_evaluations = x.size(0);
  finish_attack_result(result, model, x, y, options_.targeted());
  return result;
}

}  // namespace bulwark
