// CUDA kernel of bulwark::median_filter: one thread per output pixel; the k×k window is
// gathered into a local array and ordered by insertion sort (k² <= 121 values).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "bulwark/ops/median_filter.h"
#include "ops/median_filter_args.h"

namespace bulwark::ops {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void median_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ out,
                              int64_t numel, int64_t h, int64_t w, int64_t k) {
  // Compared in float for half inputs (c10::Half has no unambiguous device comparisons).
  using opmath_t = at::opmath_type<scalar_t>;
  opmath_t window[kMaxMedianWindow * kMaxMedianWindow];
  const int64_t count = k * k;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       index < numel; index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t j = index % w;
    const int64_t i = (index / w) % h;
    const scalar_t* plane = in + (index / (h * w)) * h * w;
    int64_t n = 0;
    for (int64_t a = 0; a < k; ++a) {
      const int64_t row = detail::mirror_index(i - k / 2 + a, h);
      for (int64_t b = 0; b < k; ++b) {
        const auto v = static_cast<opmath_t>(plane[row * w + detail::mirror_index(j - k / 2 + b, w)]);
        int64_t pos = n++;
        while (pos > 0 && detail::nan_last_less(v, window[pos - 1])) {
          window[pos] = window[pos - 1];
          --pos;
        }
        window[pos] = v;
      }
    }
    out[index] = static_cast<scalar_t>(window[count / 2]);
  }
}

at::Tensor median_filter_cuda(const at::Tensor& x, int64_t k) {
  detail::check_median_filter_args(x, k);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto input = x.contiguous();
  auto out = at::empty_like(input, at::MemoryFormat::Contiguous);
  const int64_t numel = input.numel();
  if (numel == 0) return out;
  const int64_t blocks = std::min<int64_t>((numel + kThreads - 1) / kThreads, 65535);
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(input.scalar_type(), "median_filter_cuda", [&] {
    median_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        input.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), numel, x.size(-2),
        x.size(-1), k);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("median_filter", &median_filter_cuda); }

}  // namespace bulwark::ops
