#include "bulwark/poisoning/trigger_attack.h"

#include <ATen/ATen.h>

#include <limits>

namespace bulwark {

TriggerAttack::TriggerAttack(Trigger trigger, InputBox box)
    : trigger_(std::move(trigger)), box_(box) {}

double TriggerAttack::eps() const { return std::numeric_limits<double>::infinity(); }

std::unique_ptr<Attack> TriggerAttack::with_budget(double, bool) const {
  return std::make_unique<TriggerAttack>(trigger_, box_);
}

AttackResult TriggerAttack::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  AttackResult result;
  result.adversarial = box_.clamp(trigger_.apply(x));
  result.iterations = at::zeros({x.size(0)}, x.options().dtype(at::kLong));
  finish_attack_result(result, model, x, y, /*targeted=*/false);
  return result;
}

}  // namespace bulwark
