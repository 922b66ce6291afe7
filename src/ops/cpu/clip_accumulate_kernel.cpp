// CPU kernel of bulwark::clip_accumulate: row norms in parallel over samples (when not given),
// then the weighted sum in parallel over column blocks, each block streaming the rows in order
// so the sum of a column is accumulated in the same order whatever the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "bulwark/ops/clip_accumulate.h"
#include "ops/clip_accumulate_args.h"

namespace bulwark::ops {
namespace {

constexpr int64_t kColumnBlock = 1024;

template <typename scalar_t>
void clip_accumulate_impl(const scalar_t* __restrict grads, const scalar_t* given_norms,
                          scalar_t* __restrict norms, scalar_t* __restrict sum, int64_t n,
                          int64_t d, double max_norm) {
  if (given_norms != nullptr) {
    std::copy(given_norms, given_norms + n, norms);
  } else {
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t* row = grads + i * d;
        double squares = 0.0;
        for (int64_t j = 0; j < d; ++j) squares += static_cast<double>(row[j]) * row[j];
        norms[i] = static_cast<scalar_t>(std::sqrt(squares));
      }
    });
  }
  std::vector<scalar_t> factors(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double factor = max_norm / (static_cast<double>(norms[i]) + kClipStabilizer);
    factors[static_cast<size_t>(i)] = static_cast<scalar_t>(std::min(1.0, factor));
  }
  const int64_t blocks = (d + kColumnBlock - 1) / kColumnBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const int64_t first = block * kColumnBlock;
      const int64_t last = std::min(d, first + kColumnBlock);
      scalar_t* __restrict out = sum + first;
      std::fill(out, out + (last - first), scalar_t(0));
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t f = factors[static_cast<size_t>(i)];
        const scalar_t* __restrict row = grads + i * d + first;
        for (int64_t j = 0; j < last - first; ++j) out[j] += f * row[j];
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> clip_accumulate_cpu(const at::Tensor& grads,
                                                       const std::optional<at::Tensor>& norms,
                                                       double max_norm) {
  const at::Tensor given = norms.value_or(at::Tensor());
  detail::check_clip_accumulate_args(grads, given, max_norm);
  const auto input = grads.contiguous();
  const auto given_contiguous = given.defined() ? given.contiguous() : given;
  auto sum = at::empty({input.size(1)}, input.options());
  auto used = at::empty({input.size(0)}, input.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "clip_accumulate_cpu", [&] {
    clip_accumulate_impl<scalar_t>(
        input.const_data_ptr<scalar_t>(),
        given_contiguous.defined() ? given_contiguous.const_data_ptr<scalar_t>() : nullptr,
        used.mutable_data_ptr<scalar_t>(), sum.mutable_data_ptr<scalar_t>(), input.size(0),
        input.size(1), max_norm);
  });
  return {sum, used};
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CPU, m) { m.impl("clip_accumulate", &clip_accumulate_cpu); }

}  // namespace bulwark::ops
