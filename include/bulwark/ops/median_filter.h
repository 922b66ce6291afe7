#pragma once
/// @file
/// The median filter of feature squeezing (Xu et al. 2018): a k×k median over each image plane.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace bulwark::ops {

/// Largest window the kernels accept (a k×k window is gathered into registers on CUDA).
inline constexpr int64_t kMaxMedianWindow = 11;

/// The k×k median of every pixel of `x` [..., H, W] (each of the leading dimensions filtered
/// on its own), with the conventions of `scipy.ndimage.median_filter(x, size=k)`, the
/// implementation Xu et al. used:
///
/// - the window of output (i, j) covers rows i − ⌊k/2⌋ … i − ⌊k/2⌋ + k − 1 and the same
///   columns, so an even window reaches one pixel further up/left than down/right;
/// - the value is the element of rank ⌊k²/2⌋ (0-based) of the sorted window, the upper of the
///   two middle values when k² is even (k = 1 is the identity);
/// - outside the image the plane is mirrored with its edge pixel repeated (`d c b a | a b c d`,
///   scipy's "reflect"; PyTorch's "reflect" would skip the edge).
///
/// NaN sorts above every number. Not differentiable: attacks go through it with BPDA
/// (the identity on the backward pass), see `defenses/feature_squeezing.h`.
///
/// Dispatched through `torch::ops::bulwark::median_filter`: a CPU kernel, a CUDA kernel when
/// built with CUDA, the composite reference otherwise. Float, double and half; any layout.
///
/// @throws Error when x has fewer than 2 dimensions or is not floating point, or when k is not
/// in [1, kMaxMedianWindow] or is larger than H or W.
at::Tensor median_filter(const at::Tensor& x, int64_t k);

/// The same computation composed from ATen calls: the reference the kernels are tested against.
at::Tensor median_filter_reference(const at::Tensor& x, int64_t k);

}  // namespace bulwark::ops
