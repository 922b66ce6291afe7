#pragma once
/// @file
/// The adaptive attack on a defended system: PGD that must fool the classifier and keep the
/// detector quiet at once (Carlini & Wagner 2017, "Adversarial examples are not easily
/// detected"; Athalye et al. 2018 for BPDA and EOT, which the detectors' adaptive scores use).
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/core/norms.h"
#include "bulwark/defenses/detector.h"

namespace bulwark {

struct AdaptiveAttackOptions {
  explicit AdaptiveAttackOptions(double eps = 0.1) : eps_(eps) {}
  TORCH_ARG(double, eps);
  TORCH_ARG(Norm, norm) = Norm::Linf;
  /// More steps than a plain PGD evaluation: two objectives pull against each other.
  TORCH_ARG(int64_t, steps) = 50;
  /// <= 0: 2.5 · eps / steps.
  TORCH_ARG(double, step_size) = 0.0;
  /// Weight of the detector's adaptive score in the objective.
  TORCH_ARG(double, detector_weight) = 1.0;
  /// Logit margin by which the classifier must be fooled before only the detector term
  /// counts (the κ of C&W's f6).
  TORCH_ARG(double, kappa) = 2.0;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(InputBox, box) = InputBox();

 public:
  /// @throws Error when eps < 0, steps < 1, or a weight is negative or not finite.
  void validate() const;
};

/// PGD (random start) maximizing, per sample,
///
///     min(max_{j≠y} Z_j(x') − Z_y(x'), κ) − λ · detector.adaptive_score(x')
///
/// inside the eps-ball around x and the box: untargeted misclassification with margin κ,
/// while lowering the detector's score. Returns the adversarial batch; the model and the
/// detector's models are put in eval mode for the call.
/// @throws Error on invalid options or inputs (shapes, labels, box, NaN).
at::Tensor adaptive_attack(Model& model, Detector& detector, const at::Tensor& x,
                           const at::Tensor& y, const AdaptiveAttackOptions& options);

}  // namespace bulwark
