// CUDA kernel of bulwark::project_step: a grid-stride elementwise kernel for L∞, one block per
// sample with two block reductions (gradient norm, perturbation norm) for L2.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "bulwark/core/norms.h"
#include "ops/project_step_args.h"

namespace bulwark::ops {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ T clamp_nan(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

template <typename T>
__device__ __forceinline__ T sign_nan(T g) {
  return g > T(0) ? T(1) : (g < T(0) ? T(-1) : g);
}

template <typename scalar_t, typename opmath_t>
__global__ void linf_kernel(const scalar_t* __restrict__ x_adv, const scalar_t* __restrict__ grad,
                            const scalar_t* __restrict__ x_orig, scalar_t* __restrict__ out,
                            int64_t numel, opmath_t step, opmath_t eps, opmath_t lo, opmath_t hi) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const opmath_t x0 = static_cast<opmath_t>(x_orig[i]);
    const opmath_t moved =
        static_cast<opmath_t>(x_adv[i]) + sign_nan(static_cast<opmath_t>(grad[i])) * step;
    const opmath_t delta = clamp_nan<opmath_t>(moved - x0, -eps, eps);
    out[i] = static_cast<scalar_t>(clamp_nan<opmath_t>(x0 + delta, lo, hi));
  }
}

// Sum of `value` over the block; every thread gets the result.
__device__ double block_sum(double value, double* shared) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffff, value, offset);
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < (blockDim.x + 31) / 32 ? shared[lane] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffff, value, offset);
    if (lane == 0) shared[0] = value;
  }
  __syncthreads();
  const double total = shared[0];
  __syncthreads();
  return total;
}

template <typename scalar_t, typename opmath_t>
__global__ void l2_kernel(const scalar_t* __restrict__ x_adv, const scalar_t* __restrict__ grad,
                          const scalar_t* __restrict__ x_orig, scalar_t* __restrict__ out,
                          int64_t dim, double step_size, double eps, opmath_t lo, opmath_t hi) {
  __shared__ double shared[kThreads / 32];
  const int64_t offset = blockIdx.x * dim;
  const scalar_t* xa = x_adv + offset;
  const scalar_t* g = grad + offset;
  const scalar_t* x0 = x_orig + offset;
  scalar_t* o = out + offset;

  double grad_sq = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double gi = static_cast<double>(g[i]);
    grad_sq += gi * gi;
  }
  grad_sq = block_sum(grad_sq, shared);
  const opmath_t scale = static_cast<opmath_t>(step_size / fmax(sqrt(grad_sq), 1e-12));

  double delta_sq = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const opmath_t d = static_cast<opmath_t>(xa[i]) + static_cast<opmath_t>(g[i]) * scale -
                       static_cast<opmath_t>(x0[i]);
    delta_sq += static_cast<double>(d) * static_cast<double>(d);
  }
  delta_sq = block_sum(delta_sq, shared);
  const opmath_t factor =
      static_cast<opmath_t>(isinf(eps) ? 1.0 : fmin(1.0, eps / fmax(sqrt(delta_sq), 1e-12)));

  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const opmath_t base = static_cast<opmath_t>(x0[i]);
    const opmath_t d = static_cast<opmath_t>(xa[i]) + static_cast<opmath_t>(g[i]) * scale - base;
    o[i] = static_cast<scalar_t>(clamp_nan<opmath_t>(base + d * factor, lo, hi));
  }
}

at::Tensor project_step_cuda(const at::Tensor& x_adv, const at::Tensor& grad,
                             const at::Tensor& x_orig, double step_size, double eps, int64_t norm,
                             double lower, double upper) {
  detail::check_project_step_args(x_adv, grad, x_orig, step_size, eps, norm, lower, upper);
  const c10::cuda::CUDAGuard device_guard(x_orig.device());
  const auto xa = x_adv.contiguous();
  const auto g = grad.contiguous();
  const auto x0 = x_orig.contiguous();
  auto out = at::empty_like(x0, at::MemoryFormat::Contiguous);
  if (out.numel() == 0) return out;
  const int64_t batch = x0.size(0);
  const int64_t dim = x0.numel() / batch;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x0.scalar_type(), "project_step_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    if (norm == static_cast<int64_t>(Norm::Linf)) {
      const int64_t blocks = std::min<int64_t>((out.numel() + kThreads - 1) / kThreads, 65535);
      linf_kernel<scalar_t, opmath_t><<<blocks, kThreads, 0, stream>>>(
          xa.const_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(),
          x0.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), out.numel(),
          static_cast<opmath_t>(step_size), static_cast<opmath_t>(eps),
          static_cast<opmath_t>(lower), static_cast<opmath_t>(upper));
    } else {
      l2_kernel<scalar_t, opmath_t><<<batch, kThreads, 0, stream>>>(
          xa.const_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(),
          x0.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), dim, step_size, eps,
          static_cast<opmath_t>(lower), static_cast<opmath_t>(upper));
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("project_step", &project_step_cuda); }

}  // namespace bulwark::ops
