#pragma once
/// @file
/// The fast gradient sign method (Goodfellow et al. 2015) and its L2 version, the fast gradient
/// method (Miyato et al. 2016; Foolbox's L2FastGradientAttack).

#include <torch/arg.h>

#include "bulwark/attacks/attack.h"

namespace bulwark {

struct FGSMOptions {
  /// @param eps the budget in the input space (e.g. 0.1 on [0, 1] Fashion-MNIST).
  explicit FGSMOptions(double eps) : eps_(eps) {}
  TORCH_ARG(double, eps);
  /// L∞ (sign of the gradient, the original FGSM) or L2 (normalised gradient).
  TORCH_ARG(Norm, norm) = Norm::Linf;
  /// Targeted: y holds target classes and the step descends the loss of the target.
  TORCH_ARG(bool, targeted) = false;
  TORCH_ARG(InputBox, box) = InputBox();
};

/// One step of size eps along the steepest-ascent direction of the cross-entropy loss.
class FGSM : public Attack {
 public:
  /// @throws Error when eps < 0 or is not finite.
  explicit FGSM(FGSMOptions options);
  std::string name() const override { return "fgsm"; }
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return options_.norm(); }
  bool targeted() const override { return options_.targeted(); }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const FGSMOptions& options() const { return options_; }

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  FGSMOptions options_;
};

}  // namespace bulwark
