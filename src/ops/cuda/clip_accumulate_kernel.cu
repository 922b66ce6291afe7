// CUDA kernel of bulwark::clip_accumulate: one block per row reduces its squared norm (when the
// norms are not given), then one thread per column sums the clipped rows in order.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

#include "bulwark/ops/clip_accumulate.h"
#include "ops/clip_accumulate_args.h"

namespace bulwark::ops {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void row_norm_kernel(const scalar_t* __restrict__ grads, scalar_t* __restrict__ norms,
                                int64_t d) {
  __shared__ double partial[kThreads];
  const scalar_t* row = grads + blockIdx.x * d;
  double squares = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const double v = static_cast<double>(row[j]);
    squares += v * v;
  }
  partial[threadIdx.x] = squares;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) norms[blockIdx.x] = static_cast<scalar_t>(sqrt(partial[0]));
}

template <typename scalar_t>
__global__ void accumulate_kernel(const scalar_t* __restrict__ grads,
                                  const scalar_t* __restrict__ norms, scalar_t* __restrict__ sum,
                                  int64_t n, int64_t d, double max_norm) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < d;
       j += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    scalar_t total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double factor = max_norm / (static_cast<double>(norms[i]) + kClipStabilizer);
      total += static_cast<scalar_t>(factor < 1.0 ? factor : 1.0) * grads[i * d + j];
    }
    sum[j] = total;
  }
}

std::tuple<at::Tensor, at::Tensor> clip_accumulate_cuda(const at::Tensor& grads,
                                                        const std::optional<at::Tensor>& norms,
                                                        double max_norm) {
  const at::Tensor given = norms.value_or(at::Tensor());
  detail::check_clip_accumulate_args(grads, given, max_norm);
  const c10::cuda::CUDAGuard guard(grads.device());
  const auto input = grads.contiguous();
  const int64_t n = input.size(0);
  const int64_t d = input.size(1);
  auto sum = at::empty({d}, input.options());
  auto used = given.defined() ? given.contiguous().clone() : at::empty({n}, input.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "clip_accumulate_cuda", [&] {
    if (!given.defined() && n > 0) {
      row_norm_kernel<scalar_t><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
          input.const_data_ptr<scalar_t>(), used.mutable_data_ptr<scalar_t>(), d);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (d > 0) {
      const int64_t blocks = std::min<int64_t>((d + kThreads - 1) / kThreads, 65535);
      accumulate_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
          input.const_data_ptr<scalar_t>(), used.const_data_ptr<scalar_t>(),
          sum.mutable_data_ptr<scalar_t>(), n, d, max_norm);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {sum, used};
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("clip_accumulate", &clip_accumulate_cuda); }

}  // namespace bulwark::ops
