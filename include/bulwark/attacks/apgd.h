#pragma once
/// @file
/// Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
/// of diverse parameter-free attacks"), L∞ and L2: PGD with momentum whose step size halves at
/// checkpoints when progress stalls, restarting from the best point found. APGD ascends the
/// cross-entropy or the DLR loss; APGD-T ascends the targeted DLR loss towards each of the
/// runner-up classes of the clean prediction in turn. Both are untargeted evaluations: a sample
/// counts as fooled when any iterate is misclassified, and that iterate is kept.

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <vector>

#include "bulwark/attacks/attack.h"

namespace bulwark {

enum class APGDLoss {
  CrossEntropy,  ///< APGD-CE
  DLR,           ///< APGD-DLR: shift- and scale-invariant, needs at least 3 classes
  TargetedDLR,   ///< APGD-T's loss (targeted DLR), needs at least 4 classes
  TargetedCrossEntropy,  ///< APGD-T with cross-entropy towards the target (any class count)
};

/// "ce", "dlr", "dlr-targeted", "ce-targeted".
std::string to_string(APGDLoss loss);

/// Defaults are those of the reference implementation (fra31/auto-attack, `APGDAttack`) as
/// AutoAttack's `standard` version sets them, except where noted.
struct APGDOptions {
  explicit APGDOptions(double eps) : eps_(eps) {}
  TORCH_ARG(double, eps);
  TORCH_ARG(Norm, norm) = Norm::Linf;
  /// Iterations per restart (n_iter = 100).
  TORCH_ARG(int64_t, steps) = 100;
  /// Runs from new random starts; each only attacks the samples not fooled yet (n_restarts = 1).
  TORCH_ARG(int64_t, restarts) = 1;
  /// APGD's loss; APGDTargeted uses TargetedDLR or TargetedCrossEntropy.
  TORCH_ARG(APGDLoss, loss) = APGDLoss::CrossEntropy;
  /// APGD-T: how many runner-up classes are tried as targets, one after another (9; capped at
  /// the number of classes − 1).
  TORCH_ARG(int64_t, target_classes) = 9;
  /// The halving rule's threshold: at a checkpoint the step size halves when the loss rose in
  /// at most rho of the window's steps (ρ = 0.75).
  TORCH_ARG(double, rho) = 0.75;
  /// Gradient averaged over this many forward+backward passes (expectation over
  /// transformation, for randomised models; AutoAttack's `rand` version uses 20).
  TORCH_ARG(int64_t, eot_iter) = 1;
  /// Stop working on a sample at its first misclassified iterate. The samples are independent,
  /// so the verdict per sample is the one of the full run; only the compute differs.
  TORCH_ARG(bool, early_stop) = true;
  /// Seeds the random starts: the same seed gives the same result on CPU.
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(InputBox, box) = InputBox();
};

class APGD : public Attack {
 public:
  /// @throws Error when eps < 0 or not finite, steps, restarts or eot_iter < 1, rho outside
  /// (0, 1], or a targeted loss (use APGDTargeted).
  explicit APGD(APGDOptions options);
  std::string name() const override;
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return options_.norm(); }
  bool targeted() const override { return false; }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const APGDOptions& options() const { return options_; }

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  APGDOptions options_;
};

/// APGD-T: for k = 2 … target_classes + 1, APGD with the targeted loss towards the class with
/// the k-th largest clean logit, on the samples no earlier target has fooled. `y` holds the
/// true classes; success means misclassified (any class).
class APGDTargeted : public Attack {
 public:
  /// Defaults to the targeted DLR loss. @throws Error as APGD, or for an untargeted loss or
  /// target_classes < 1.
  explicit APGDTargeted(APGDOptions options);
  std::string name() const override { return "apgd-t"; }
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return options_.norm(); }
  bool targeted() const override { return false; }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const APGDOptions& options() const { return options_; }

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  APGDOptions options_;
};

/// APGD's step-size control, on its own so that it can be checked on scripted losses.
/// Checkpoints fall after 0.22·N iterations, then at intervals shrinking by 0.03·N down to
/// 0.06·N (N = 100: after iterations 22, 41, 57, 70, 80, 87, 93 and 99). At a checkpoint a
/// sample's step halves, and it restarts from its best point, when its loss rose in at most
/// ρ·k of the window's k steps, or when its step did not halve at the previous checkpoint and
/// its best loss has not improved since.
class APGDStepControl {
 public:
  /// `initial_best_loss` [batch]: each sample's loss at its starting point.
  /// @throws Error when steps < 1, rho outside (0, 1] or the loss is not 1-D.
  APGDStepControl(int64_t steps, double rho, const at::Tensor& initial_best_loss);

  /// Records iteration `i` (0-based, in order): each sample's loss at the new iterate and its
  /// best loss so far (after counting this iterate). Returns bool [batch]: the samples whose
  /// step halves now (all false between checkpoints).
  at::Tensor update(int64_t i, const at::Tensor& loss, const at::Tensor& best_loss);
  /// Keeps only the samples at `rows` (int64), in that order (samples leaving early).
  void keep(const at::Tensor& rows);

  /// The iteration counts after which checkpoints fall (22, 41, … for N = 100).
  static std::vector<int64_t> checkpoints(int64_t steps);

 private:
  int64_t steps_;
  double rho_;
  int64_t window_;       // k: steps to the next checkpoint
  int64_t since_check_ = 0;
  int64_t min_window_;
  int64_t shrink_;
  at::Tensor history_;   // [steps, batch] loss per iteration (zeros before they are filled)
  at::Tensor best_at_last_check_;
  at::Tensor halved_at_last_check_;
};

}  // namespace bulwark
