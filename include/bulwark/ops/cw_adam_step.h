#pragma once
/// @file
/// The fused per-iteration update of the Carlini–Wagner attack: one Adam step on the
/// tanh-space variable, in place.

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace bulwark::ops {

/// Adam (Kingma & Ba 2015), as torch.optim.Adam without weight decay, applied in place:
///
///     m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
///     w ← w − lr · (m / (1−β₁ᵗ)) / (sqrt(v / (1−β₂ᵗ)) + ε)
///
/// `w`, `m`, `v` are updated in place and must be contiguous; `grad` may have any layout. All
/// four share shape, dtype (float or double) and device. Dispatched through
/// `torch::ops::bulwark::cw_adam_step_`: CPU kernel, CUDA kernel, composite reference.
/// @throws Error on mismatched tensors, non-contiguous state, lr <= 0, β outside [0, 1),
/// eps <= 0 or step < 1.
void cw_adam_step_(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                   const at::Tensor& v, double lr, double beta1, double beta2, double eps,
                   int64_t step);

/// The same update composed from ATen calls: the reference the kernels are tested against.
void cw_adam_step_reference_(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                             const at::Tensor& v, double lr, double beta1, double beta2,
                             double eps, int64_t step);

}  // namespace bulwark::ops
