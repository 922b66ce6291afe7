#pragma once
/// @file
/// The fused step-and-project update that FGSM and PGD take at every iteration.

#include <ATen/core/Tensor.h>

#include "bulwark/core/norms.h"

namespace bulwark::ops {

/// One projected steepest-ascent step, per sample (dimension 0 is the batch):
///
///     x_next = clamp_[lower, upper]( x_orig + Proj_{‖·‖≤eps}( x_adv + step_size · d(grad) − x_orig ) )
///
/// where d(grad) is sign(grad) for L∞ and grad / ‖grad‖₂ for L2 (0 where grad is 0). Because
/// x_orig lies in the box, clamping to the box after projecting never leaves the ball: the
/// result is inside both exactly. FGSM is `project_step(x, grad, x, eps, eps, norm, lo, hi)`.
///
/// Dispatched through `torch::ops::bulwark::project_step`: a CPU kernel, a CUDA kernel when
/// built with CUDA, the composite reference otherwise. Float, double and half; any layout.
///
/// @throws Error when shapes, dtypes or devices differ, when step_size < 0, eps < 0 (eps may
/// be +infinity), lower >= upper, or when a tensor has no batch dimension.
at::Tensor project_step(const at::Tensor& x_adv, const at::Tensor& grad, const at::Tensor& x_orig,
                        double step_size, double eps, Norm norm, double lower, double upper);

/// The same computation composed from ATen calls: the reference the kernels are tested against.
at::Tensor project_step_reference(const at::Tensor& x_adv, const at::Tensor& grad,
                                  const at::Tensor& x_orig, double step_size, double eps,
                                  Norm norm, double lower, double upper);

}  // namespace bulwark::ops
