#pragma once
/// @file
/// Lp norms of perturbations and projections onto Lp balls, per sample (dimension 0 is the batch).

#include <ATen/core/Tensor.h>

#include <string>
#include <string_view>

namespace bulwark {

/// The norm a perturbation budget ε is measured in.
enum class Norm : int64_t { Linf = 0, L2 = 1 };

/// "linf" or "l2".
std::string to_string(Norm norm);
/// Parses "linf", "inf", "l-inf" or "l2" (any case). @throws Error for anything else.
Norm parse_norm(std::string_view text);

/// Per-sample norm of `x` [N, ...]: a tensor [N] of the same dtype.
/// @throws Error when `x` has no batch dimension or is not floating point.
at::Tensor per_sample_norm(const at::Tensor& x, Norm norm);

/// `delta` [N, ...] projected per sample onto the ball of radius `eps` around 0: clamped to
/// [-eps, eps] (L∞) or rescaled to norm `eps` when longer (L2). eps may be +infinity.
/// @throws Error when eps < 0 or is NaN.
at::Tensor project_to_ball(const at::Tensor& delta, Norm norm, double eps);

/// The unit steepest-ascent direction of `grad` per sample under `norm`: sign(grad) for L∞,
/// grad / ||grad||₂ for L2 (zero where the gradient is zero).
at::Tensor steepest_ascent_direction(const at::Tensor& grad, Norm norm);

}  // namespace bulwark
