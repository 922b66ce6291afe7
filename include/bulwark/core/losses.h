#pragma once
/// @file
/// Classification losses used by attacks and training, on logits [N, K] and labels [N] (int64).

#include <ATen/core/Tensor.h>

namespace bulwark {

enum class Reduction { None, Mean, Sum };

/// Softmax cross-entropy.
/// @throws Error on shape mismatches or labels outside [0, K).
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels,
                         Reduction reduction = Reduction::Mean);

/// The Carlini–Wagner margin f₆ (Carlini & Wagner 2017, eq. for f6), to be minimised:
/// untargeted (labels = true classes): max(Z_y − max_{i≠y} Z_i, −κ);
/// targeted (labels = targets):         max(max_{i≠t} Z_i − Z_t, −κ).
/// It reaches −κ exactly when the sample is misclassified (or classified as the target) with
/// margin κ. @throws Error when kappa < 0 or on bad shapes/labels.
at::Tensor cw_margin(const at::Tensor& logits, const at::Tensor& labels, double kappa = 0.0,
                     bool targeted = false, Reduction reduction = Reduction::None);

/// The Difference of Logits Ratio loss (Croce & Hein 2020), to be maximised by an attack:
/// untargeted: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e−12);
/// targeted (`targets` defined): −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e−12).
/// Invariant to shifts and scaling of the logits. Needs K ≥ 3 (K ≥ 4 targeted).
at::Tensor dlr_loss(const at::Tensor& logits, const at::Tensor& labels,
                    const at::Tensor& targets = {}, Reduction reduction = Reduction::None);

}  // namespace bulwark
