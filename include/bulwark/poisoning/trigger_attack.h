#pragma once
/// @file
/// A backdoor trigger seen as an attack: it stamps the trigger on its inputs and asks nothing of
/// the model's gradients. Whatever measures attacks (detector evaluations, `bulwark detect`)
/// then measures triggered inputs: STRIP's detection rate is the fraction of triggered inputs
/// that fool the model and are flagged.
#include "bulwark/attacks/attack.h"
#include "bulwark/poisoning/trigger.h"

namespace bulwark {

class TriggerAttack : public Attack {
 public:
  /// The triggered images are clamped into `box`. Success is judged untargeted against the
  /// true labels: an all-to-one backdoor succeeds on an image of another class when the model
  /// answers anything but its class (the target, for a working backdoor).
  explicit TriggerAttack(Trigger trigger, InputBox box = InputBox());
  std::string name() const override { return "trigger"; }
  /// +infinity: a trigger is not bounded by a norm budget.
  double eps() const override;
  Norm norm() const override { return Norm::Linf; }
  bool targeted() const override { return false; }
  const InputBox& box() const override { return box_; }
  /// A copy: the budget does not apply to a trigger.
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const Trigger& trigger() const { return trigger_; }

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  Trigger trigger_;
  InputBox box_;
};

}  // namespace bulwark
