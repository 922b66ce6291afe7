#pragma once
/// @file
/// The Carlini–Wagner L2 attack (Carlini & Wagner 2017).

#include <torch/arg.h>

#include <limits>

#include "bulwark/attacks/attack.h"

namespace bulwark {

struct CarliniWagnerOptions {
  /// Confidence κ: the margin by which the adversarial class must win. 0 as the paper.
  TORCH_ARG(double, confidence) = 0.0;
  /// Searches over the constant c. 9 as Carlini & Wagner's reference code and Foolbox 3.
  TORCH_ARG(int64_t, binary_search_steps) = 9;
  /// The first c. 1e-3 as Carlini & Wagner's reference code and Foolbox 3.
  TORCH_ARG(double, initial_const) = 1e-3;
  /// Adam iterations per search. The reference code uses 10000, ART 10, torchattacks 50;
  /// 100 with early abort is a CPU-friendly middle — raise it for final evaluations.
  TORCH_ARG(int64_t, steps) = 100;
  /// Adam's step size in tanh space. 1e-2 as the paper.
  TORCH_ARG(double, learning_rate) = 1e-2;
  /// Stop a search when the loss has not fallen by 0.01% over a tenth of the steps (paper).
  TORCH_ARG(bool, abort_early) = true;
  TORCH_ARG(bool, targeted) = false;
  /// An L2 budget for evaluation: samples whose smallest perturbation found is larger count as
  /// not fooled and are returned unchanged. +infinity (the default) is the unbounded attack.
  TORCH_ARG(double, eps) = std::numeric_limits<double>::infinity();
  TORCH_ARG(InputBox, box) = InputBox();
};

/// Minimises ‖δ‖₂² + c · f₆(x + δ) over x + δ = box(tanh(w)) with Adam, binary-searching c per
/// sample, and keeps each sample's smallest successful perturbation. The Adam update is the
/// fused op bulwark::cw_adam_step_.
class CarliniWagner : public Attack {
 public:
  /// @throws Error when confidence < 0, binary_search_steps < 1, initial_const <= 0, steps < 1,
  /// learning_rate <= 0, or eps < 0.
  explicit CarliniWagner(CarliniWagnerOptions options = {});
  std::string name() const override { return "cw"; }
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return Norm::L2; }
  bool targeted() const override { return options_.targeted(); }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  bool minimizes_norm() const override { return true; }
  const CarliniWagnerOptions& options() const { return options_; }

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  CarliniWagnerOptions options_;
};

}  // namespace bulwark
