#pragma once
/// @file
/// FAB, the fast adaptive boundary attack (Croce & Hein 2020, "Minimally distorted adversarial
/// examples with a fast adaptive boundary attack"), L∞ and L2: a minimum-norm attack that
/// linearises the decision boundary at the current point, projects both the current point and
/// the clean one onto that hyperplane inside the input box, and steps to a combination biased
/// towards the clean point. FAB-T linearises only the boundary towards one target class, the
/// runner-up classes of the clean prediction in turn. As in AutoAttack (fra31/auto-attack,
/// `FABAttack_PT`), a sample counts as fooled when the smallest adversarial point found lies
/// within ε.

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

#include "bulwark/attacks/attack.h"

namespace bulwark {

struct FABOptions {
  explicit FABOptions(double eps) : eps_(eps) {}
  /// The budget that decides success, and the scale of the random starts (radius ε/2).
  TORCH_ARG(double, eps);
  TORCH_ARG(Norm, norm) = Norm::Linf;
  TORCH_ARG(int64_t, steps) = 100;
  /// Runs per target; the first starts at the clean point, the others at random points.
  TORCH_ARG(int64_t, restarts) = 1;
  /// FAB-T: aim at one runner-up class at a time (true) or at the nearest linearised boundary
  /// of all classes (false; costs one backward pass per class and step).
  TORCH_ARG(bool, targeted) = true;
  /// FAB-T: how many runner-up classes are tried (9; capped at the number of classes − 1).
  TORCH_ARG(int64_t, target_classes) = 9;
  /// Largest weight of the clean point's projection in a step (α_max = 0.1).
  TORCH_ARG(double, alpha_max) = 0.1;
  /// Overshoot of the projections (η = 1.05).
  TORCH_ARG(double, eta) = 1.05;
  /// After an adversarial step, the point moves back to clean + β·(point − clean) (β = 0.9).
  TORCH_ARG(double, beta) = 0.9;
  /// Stop working on a sample once it is adversarial within ε (the verdict is unchanged).
  TORCH_ARG(bool, early_stop) = true;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(InputBox, box) = InputBox();
};

class FAB : public Attack {
 public:
  /// @throws Error when eps < 0 or not finite, steps, restarts or target_classes < 1,
  /// alpha_max outside [0, 1], eta <= 0 or beta outside (0, 1].
  explicit FAB(FABOptions options);
  std::string name() const override { return options_.targeted() ? "fab-t" : "fab"; }
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return options_.norm(); }
  /// Untargeted in Bulwark's sense: y holds the true classes, success is misclassification.
  bool targeted() const override { return false; }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const FABOptions& options() const { return options_; }

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  FABOptions options_;
};

/// Per row of t [N, d]: the displacement δ of smallest L∞ or L2 norm with ⟨w, t + δ⟩ = b and
/// t + δ inside the box, for w [N, d] and b [N]. When the box does not reach the hyperplane,
/// the box corner (L∞) or box point (L2) that comes closest to it. Coordinates with w = 0
/// (|w| <= 1e-8 for L2) do not move.
/// @throws Error on mismatched shapes.
at::Tensor project_onto_hyperplane_in_box(const at::Tensor& t, const at::Tensor& w,
                                          const at::Tensor& b, Norm norm, const InputBox& box);

}  // namespace bulwark
