// CUDA kernels of bulwark::patch_composite and its backward: one thread per output pixel
// (grid-stride), looping over channels. The backward scatters the patch gradient with atomic
// adds (so a shared patch's gradient may differ in the last bits between runs).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "bulwark/ops/patch_composite.h"
#include "ops/patch_composite_args.h"

namespace bulwark::ops {
namespace {

constexpr int kThreads = 256;

struct Geometry {
  int64_t batch, channels, height, width, patch_height, patch_width;
};

int64_t blocks_for(int64_t items) {
  return std::max<int64_t>(1, std::min<int64_t>((items + kThreads - 1) / kThreads, 65535));
}

template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ images,
                               const scalar_t* __restrict__ patch,
                               const scalar_t* __restrict__ mask,
                               const scalar_t* __restrict__ theta, scalar_t* __restrict__ out,
                               Geometry g, bool per_sample, bool replace) {
  const int64_t plane = g.height * g.width;
  const int64_t patch_plane = g.patch_height * g.patch_width;
  const int64_t pixels = g.batch * plane;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < pixels;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t n = i / plane;
    const int64_t pixel = i % plane;
    const int64_t y = pixel / g.width;
    const int64_t x = pixel % g.width;
    const scalar_t* image = images + n * g.channels * plane;
    scalar_t* o = out + n * g.channels * plane;
    detail::Taps<scalar_t> taps{};
    if (!detail::patch_taps(theta + n * 6, y, x, g.height, g.width, g.patch_height,
                            g.patch_width, taps)) {
      for (int64_t c = 0; c < g.channels; ++c) o[c * plane + pixel] = image[c * plane + pixel];
      continue;
    }
    scalar_t alpha = 0;
    detail::for_each_tap(taps, g.patch_height, g.patch_width,
                         [&](int64_t k, scalar_t weight) { alpha += weight * mask[k]; });
    const scalar_t keep = replace ? scalar_t(1) - alpha : scalar_t(1);
    const scalar_t* p = patch + (per_sample ? n * g.channels * patch_plane : 0);
    for (int64_t c = 0; c < g.channels; ++c) {
      const scalar_t* channel = p + c * patch_plane;
      scalar_t q = 0;
      detail::for_each_tap(taps, g.patch_height, g.patch_width, [&](int64_t k, scalar_t weight) {
        q += weight * mask[k] * channel[k];
      });
      o[c * plane + pixel] = image[c * plane + pixel] * keep + q;
    }
  }
}

template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ grad_out,
                                const scalar_t* __restrict__ mask,
                                const scalar_t* __restrict__ theta,
                                scalar_t* __restrict__ grad_images,
                                scalar_t* __restrict__ grad_patch, Geometry g, bool per_sample,
                                bool replace) {
  const int64_t plane = g.height * g.width;
  const int64_t patch_plane = g.patch_height * g.patch_width;
  const int64_t pixels = g.batch * plane;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < pixels;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t n = i / plane;
    const int64_t pixel = i % plane;
    const int64_t y = pixel / g.width;
    const int64_t x = pixel % g.width;
    const scalar_t* go = grad_out + n * g.channels * plane;
    scalar_t* gi = grad_images + n * g.channels * plane;
    detail::Taps<scalar_t> taps{};
    if (!detail::patch_taps(theta + n * 6, y, x, g.height, g.width, g.patch_height,
                            g.patch_width, taps)) {
      for (int64_t c = 0; c < g.channels; ++c) gi[c * plane + pixel] = go[c * plane + pixel];
      continue;
    }
    scalar_t alpha = 0;
    detail::for_each_tap(taps, g.patch_height, g.patch_width,
                         [&](int64_t k, scalar_t weight) { alpha += weight * mask[k]; });
    const scalar_t keep = replace ? scalar_t(1) - alpha : scalar_t(1);
    scalar_t* gp = grad_patch + (per_sample ? n * g.channels * patch_plane : 0);
    for (int64_t c = 0; c < g.channels; ++c) {
      const scalar_t value = go[c * plane + pixel];
      gi[c * plane + pixel] = value * keep;
      scalar_t* channel = gp + c * patch_plane;
      detail::for_each_tap(taps, g.patch_height, g.patch_width, [&](int64_t k, scalar_t weight) {
        atomicAdd(channel + k, value * weight * mask[k]);
      });
    }
  }
}

Geometry geometry_of(const at::Tensor& images, const at::Tensor& mask) {
  return {images.size(0), images.size(1), images.size(2), images.size(3), mask.size(0),
          mask.size(1)};
}

at::Tensor patch_composite_cuda(const at::Tensor& images, const at::Tensor& patch,
                                const at::Tensor& mask, const at::Tensor& theta, int64_t blend) {
  detail::check_patch_composite_args(images, patch, mask, theta, blend);
  const c10::cuda::CUDAGuard device_guard(images.device());
  const auto img = images.contiguous();
  const auto pat = patch.contiguous();
  const auto msk = mask.contiguous();
  const auto th = theta.contiguous();
  auto out = at::empty_like(img, at::MemoryFormat::Contiguous);
  if (out.numel() == 0) return out;
  const auto g = geometry_of(img, msk);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "patch_composite_cuda", [&] {
    forward_kernel<scalar_t><<<blocks_for(g.batch * g.height * g.width), kThreads, 0, stream>>>(
        img.const_data_ptr<scalar_t>(), pat.const_data_ptr<scalar_t>(),
        msk.const_data_ptr<scalar_t>(), th.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), g, pat.dim() == 4,
        blend == static_cast<int64_t>(Blend::Replace));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> patch_composite_backward_cuda(const at::Tensor& grad_output,
                                                                 const at::Tensor& mask,
                                                                 const at::Tensor& theta,
                                                                 int64_t blend,
                                                                 bool per_sample_patch) {
  detail::check_patch_composite_backward_args(grad_output, mask, theta, blend);
  const c10::cuda::CUDAGuard device_guard(grad_output.device());
  const auto go = grad_output.contiguous();
  const auto msk = mask.contiguous();
  const auto th = theta.contiguous();
  const auto g = geometry_of(go, msk);
  auto grad_images = at::empty_like(go, at::MemoryFormat::Contiguous);
  auto grad_patch =
      per_sample_patch
          ? at::zeros({g.batch, g.channels, g.patch_height, g.patch_width}, go.options())
          : at::zeros({g.channels, g.patch_height, g.patch_width}, go.options());
  if (go.numel() == 0) return {grad_images, grad_patch};
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(go.scalar_type(), "patch_composite_backward_cuda", [&] {
    backward_kernel<scalar_t><<<blocks_for(g.batch * g.height * g.width), kThreads, 0, stream>>>(
        go.const_data_ptr<scalar_t>(), msk.const_data_ptr<scalar_t>(),
        th.const_data_ptr<scalar_t>(), grad_images.mutable_data_ptr<scalar_t>(),
        grad_patch.mutable_data_ptr<scalar_t>(), g, per_sample_patch,
        blend == static_cast<int64_t>(Blend::Replace));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_images, grad_patch};
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) {
  m.impl("patch_composite", &patch_composite_cuda);
  m.impl("patch_composite_backward", &patch_composite_backward_cuda);
}

}  // namespace bulwark::ops
