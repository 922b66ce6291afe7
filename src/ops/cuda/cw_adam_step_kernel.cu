// CUDA kernel of bulwark::cw_adam_step_: a grid-stride elementwise Adam update, in place.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "ops/cw_adam_step_args.h"

namespace bulwark::ops {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void adam_kernel(scalar_t* __restrict__ w, const scalar_t* __restrict__ g,
                            scalar_t* __restrict__ m, scalar_t* __restrict__ v, int64_t numel,
                            scalar_t lr_corrected, scalar_t beta1, scalar_t beta2,
                            scalar_t inv_sqrt_bias2, scalar_t eps) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const scalar_t gi = g[i];
    const scalar_t mi = beta1 * m[i] + (1 - beta1) * gi;
    const scalar_t vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr_corrected * mi / (sqrt(vi) * inv_sqrt_bias2 + eps);
  }
}

void cw_adam_step_cuda(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                       const at::Tensor& v, double lr, double beta1, double beta2, double eps,
                       int64_t step) {
  detail::check_cw_adam_step_args(w, grad, m, v, lr, beta1, beta2, eps, step);
  if (w.numel() == 0) return;
  const c10::cuda::CUDAGuard device_guard(w.device());
  const auto g = grad.contiguous();
  const double bias1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias2 = 1 - std::pow(beta2, static_cast<double>(step));
  const int64_t blocks = std::min<int64_t>((w.numel() + kThreads - 1) / kThreads, 65535);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "cw_adam_step_cuda", [&] {
    adam_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        w.mutable_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(),
        m.mutable_data_ptr<scalar_t>(), v.mutable_data_ptr<scalar_t>(), w.numel(),
        static_cast<scalar_t>(lr / bias1), static_cast<scalar_t>(beta1),
        static_cast<scalar_t>(beta2), static_cast<scalar_t>(1 / std::sqrt(bias2)),
        static_cast<scalar_t>(eps));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("cw_adam_step_", &cw_adam_step_cuda); }

}  // namespace bulwark::ops
