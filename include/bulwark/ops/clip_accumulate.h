#pragma once
/// @file
/// The norm / clip / accumulate step of DP-SGD over materialized per-sample gradients.

#include <ATen/core/Tensor.h>

#include <tuple>

namespace bulwark::ops {

/// Added to a norm before dividing, as Opacus does, so a zero gradient gets factor 1.
inline constexpr double kClipStabilizer = 1e-6;

/// Σᵢ fᵢ·gᵢ over the rows gᵢ of `grads` [N, D] with fᵢ = min(1, C / (nᵢ + 1e-6)), where nᵢ
/// is `norms[i]` when `norms` [N] is given (flat clipping: the norm of the whole per-sample
/// gradient, of which these rows are one part) and the row's own L2 norm ‖gᵢ‖ otherwise.
/// Returns {the sum [D], the norms used [N]}. Sums accumulate in the input's dtype; an empty
/// batch gives a zero sum.
///
/// Dispatched through `torch::ops::bulwark::clip_accumulate`: a CPU kernel, a CUDA kernel when
/// built with CUDA, the composite reference otherwise. Float and double.
///
/// @throws Error when grads is not a 2-D float/double tensor, norms is not [N] of the same dtype
/// and device, max_norm <= 0 or not finite.
std::tuple<at::Tensor, at::Tensor> clip_accumulate(const at::Tensor& grads,
                                                   const at::Tensor& norms, double max_norm);

/// The same computation composed from ATen calls: the reference the kernels are tested against.
std::tuple<at::Tensor, at::Tensor> clip_accumulate_reference(const at::Tensor& grads,
                                                             const at::Tensor& norms,
                                                             double max_norm);

}  // namespace bulwark::ops
