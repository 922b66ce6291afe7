#pragma once
/// @file
/// Puts a patch (or a masked perturbation) into a batch of images under per-sample affine
/// placements: the compositing step of the patch and sticker attacks.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace bulwark::ops {

/// How the sampled patch is combined with the image.
enum class Blend : int64_t {
  /// The patch covers the image where its mask is 1: out = image · (1 − a) + q. A printed
  /// patch or an opaque sticker.
  Replace = 0,
  /// The patch is added to the image: out = image + q. A masked perturbation (RP2).
  Add = 1,
};

/// For each sample n, with S_n the bilinear sampler (zero outside the patch) that reads the
/// patch at the position `theta[n]` maps each output pixel to:
///
///     a_n = S_n(mask),   q_n = S_n(mask ⊙ patch)   (premultiplied, so edges antialias)
///     out[n] = images[n] · (1 − a_n) + q_n      (Replace)
///     out[n] = images[n] + q_n                  (Add)
///
/// `theta` [N, 2, 3] maps output coordinates to patch coordinates, both normalized to [−1, 1]
/// with align_corners = false, exactly as `torch::nn::functional::affine_grid` +
/// `grid_sample` (bilinear, zero padding) read them. The result is not clamped: with a patch
/// and a mask inside [0, 1] Replace stays in the images' range, Add may leave it.
///
/// Shapes: images [N, C, H, W]; patch [C, h, w] (one patch shared by the batch) or
/// [N, C, h, w] (one per sample); mask [h, w] with values in [0, 1]. Float or double, all on
/// one device. Differentiable with respect to `images` and `patch` (a backward op of its own);
/// `mask` and `theta` are constants and must not require gradients.
///
/// Dispatched through `torch::ops::bulwark::patch_composite`: a CPU kernel, a CUDA kernel when
/// built with CUDA, the composite reference otherwise.
///
/// @throws Error on a shape, dtype or device mismatch, a mask outside [0, 1], non-finite theta,
/// or a mask or theta that requires gradients.
at::Tensor patch_composite(const at::Tensor& images, const at::Tensor& patch,
                           const at::Tensor& mask, const at::Tensor& theta, Blend blend);

/// The same computation from `affine_grid` and `grid_sample`: the reference for the kernels
/// (differentiable through ordinary autograd).
at::Tensor patch_composite_reference(const at::Tensor& images, const at::Tensor& patch,
                                     const at::Tensor& mask, const at::Tensor& theta,
                                     Blend blend);

/// The gradients of patch_composite with respect to images and patch, given the gradient of
/// its output: (grad_images [N, C, H, W], grad_patch [C, h, w] or, with `per_sample_patch`,
/// [N, C, h, w]). They depend on neither the images nor the patch values. For a shared patch
/// the CPU kernel sums over samples in a fixed order: the same result for any thread count.
std::tuple<at::Tensor, at::Tensor> patch_composite_backward(const at::Tensor& grad_output,
                                                            const at::Tensor& mask,
                                                            const at::Tensor& theta, Blend blend,
                                                            bool per_sample_patch);

/// The backward from `grid_sampler_2d_backward`: the reference for the backward kernels.
std::tuple<at::Tensor, at::Tensor> patch_composite_backward_reference(
    const at::Tensor& grad_output, const at::Tensor& mask, const at::Tensor& theta, Blend blend,
    bool per_sample_patch);

}  // namespace bulwark::ops
