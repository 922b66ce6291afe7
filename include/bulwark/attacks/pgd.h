#pragma once
/// @file
/// Projected gradient descent (Madry et al. 2018), L∞ and L2.

#include <ATen/core/Generator.h>
#include <torch/arg.h>

#include <functional>

#include "bulwark/attacks/attack.h"

namespace bulwark {

/// The loss PGD ascends.
enum class AttackLoss {
  CrossEntropy,  ///< Madry et al. 2018
  CWMargin,      ///< the C&W margin f6 (Carlini & Wagner 2017), negated
  DLR,           ///< Croce & Hein 2020
};

struct PGDOptions {
  explicit PGDOptions(double eps) : eps_(eps) {}
  TORCH_ARG(double, eps);
  TORCH_ARG(Norm, norm) = Norm::Linf;
  /// Iterations per restart. 10 as torchattacks 3.5 (PGD and PGDL2).
  TORCH_ARG(int64_t, steps) = 10;
  /// Step size; <= 0 means 2.5 · eps / steps (Madry et al. 2018, and MadryLab's robustness).
  TORCH_ARG(double, step_size) = 0.0;
  /// Start from a uniform random point of the ball (Madry et al. 2018; torchattacks default).
  TORCH_ARG(bool, random_start) = true;
  /// Independent runs; each sample keeps its strongest result across them.
  TORCH_ARG(int64_t, restarts) = 1;
  TORCH_ARG(bool, targeted) = false;
  TORCH_ARG(AttackLoss, loss) = AttackLoss::CrossEntropy;
  /// Stop working on samples as soon as they are fooled, keeping that iterate (evaluation mode).
  TORCH_ARG(bool, early_stop) = false;
  /// Seeds the random starts: the same seed gives the same result on CPU.
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(InputBox, box) = InputBox();
};

class PGD : public Attack {
 public:
  /// @throws Error when eps < 0 or not finite, steps < 1, restarts < 1, or step_size not finite.
  explicit PGD(PGDOptions options);
  std::string name() const override { return "pgd"; }
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return options_.norm(); }
  bool targeted() const override { return options_.targeted(); }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const PGDOptions& options() const { return options_; }
  /// The step size in use (the default resolved).
  double step_size() const;

  /// Per-sample values to ascend, from the logits of the whole batch (TRADES ascends a KL
  /// divergence to the clean predictions).
  using Objective = std::function<at::Tensor(const at::Tensor& logits)>;
  /// The iterations alone, as adversarial training takes them: one run over every sample from
  /// a random start drawn from `generator`, with the model in whatever mode it is in, no
  /// restarts and no forward pass to judge success. Ascends `objective` when given, the
  /// options' loss otherwise; starts from `start` when given (TRADES starts at
  /// x + 0.001·N(0, 1)). Inputs are not validated beyond their shapes.
  /// @throws Error when early_stop is on, or x, y and start do not match.
  at::Tensor perturb(Model& model, const at::Tensor& x, const at::Tensor& y,
                     at::Generator& generator, const Objective& objective = {},
                     const at::Tensor& start = {}) const;

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  PGDOptions options_;
};

/// Per-sample value of `loss` on logits, oriented so that the attack ascends it.
at::Tensor attack_objective(AttackLoss loss, const at::Tensor& logits, const at::Tensor& y,
                            bool targeted);

}  // namespace bulwark
