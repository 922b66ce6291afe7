#pragma once
/// @file
/// The interface every attack implements, and what an attack returns.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/core/norms.h"

namespace bulwark {

/// One component of a composite attack (AutoAttack runs APGD-CE, APGD-T, FAB-T and Square in
/// turn, each on the samples the earlier ones left robust).
struct AttackStage {
  std::string attack;
  int64_t attacked = 0;  ///< samples it ran on
  int64_t fooled = 0;    ///< of those, samples it fooled
  int64_t gradient_evaluations = 0;
  int64_t forward_evaluations = 0;
  double seconds = 0.0;
};

/// What an attack returns for a batch of N inputs.
struct AttackResult {
  /// Adversarial inputs, same shape, dtype and device as the clean ones; each lies within the
  /// attack's ε-ball around its clean input and inside the input box, exactly.
  at::Tensor adversarial;
  /// bool [N]: the model misclassifies the adversarial input (untargeted) or classifies it as
  /// the target (targeted). Judged by a forward pass on `adversarial`.
  at::Tensor success;
  /// [N] (float64): per-sample L∞ and L2 norms of adversarial − clean.
  at::Tensor linf;
  at::Tensor l2;
  /// int64 [N]: iterations spent on each sample (fewer when stopped early).
  at::Tensor iterations;
  /// Forward+backward passes, summed over samples (the compute the attack used).
  int64_t gradient_evaluations = 0;
  /// Forward passes without a backward pass, summed over samples (Square's queries, the
  /// bookkeeping passes between restarts), not counting the final pass that judges `success`.
  int64_t forward_evaluations = 0;
  /// Composite attacks: what each component did, in order (empty otherwise).
  std::vector<AttackStage> stages;
  /// Signs that the evaluation may be unreliable (a softmax output, zero gradients, ...).
  std::vector<std::string> warnings;
};

/// Compute in forward-pass equivalents, summed over samples: a forward pass counts 1, a
/// forward+backward pass 3 (the backward costs about two forwards).
inline int64_t forward_equivalents(int64_t gradient_evaluations, int64_t forward_evaluations) {
  return forward_evaluations + 3 * gradient_evaluations;
}

/// An adversarial attack. run() validates its inputs, puts the model in eval mode (restoring
/// its mode afterwards) and never changes the model's parameters or their `.grad`: gradients
/// are taken with respect to the input only.
class Attack {
 public:
  virtual ~Attack() = default;

  /// Attacks `x` [N, ...] (inside the input box, finite) with labels `y` [N] (int64): the true
  /// classes for an untargeted attack, the target classes for a targeted one.
  /// @throws Error on undefined or non-float x, NaN/Inf, inputs outside the box, labels of the
  /// wrong shape or outside the model's classes, or x, y and the model on different devices.
  AttackResult run(Model& model, const at::Tensor& x, const at::Tensor& y);

  /// "fgsm", "pgd", "cw", ...
  virtual std::string name() const = 0;
  /// The perturbation budget (may be +infinity for C&W).
  virtual double eps() const = 0;
  virtual Norm norm() const = 0;
  virtual bool targeted() const = 0;
  virtual const InputBox& box() const = 0;
  /// A copy with another budget, and with early stopping on or off (see evaluate()).
  virtual std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const = 0;
  /// True for attacks that search for the smallest perturbation (C&W): their budget only
  /// decides which results count, so one unbounded run answers every budget.
  virtual bool minimizes_norm() const { return false; }

 protected:
  /// The attack itself, on validated inputs, with the model in eval mode.
  virtual AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) = 0;
};

/// The adversarial examples of `attack` for x [N, ...] with labels y [N], `batch_size` samples
/// per run (each run validates its batch), concatenated in order on x's device.
/// @throws Error when batch_size < 1, x and y differ in length, or a run rejects its batch.
at::Tensor run_in_batches(Attack& attack, Model& model, const at::Tensor& x, const at::Tensor& y,
                          int64_t batch_size);

/// Fills success, linf and l2 of `result` from its adversarial inputs (one forward pass).
void finish_attack_result(AttackResult& result, Model& model, const at::Tensor& x,
                          const at::Tensor& y, bool targeted);

/// bool [N]: `logits` classify as `y` (targeted) or not as `y` (untargeted).
at::Tensor attack_succeeded(const at::Tensor& logits, const at::Tensor& y, bool targeted);

}  // namespace bulwark
