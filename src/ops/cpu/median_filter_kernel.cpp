// CPU kernel of bulwark::median_filter, parallel over image rows (mirrored indices are
// precomputed once per call). Windows of up to 5×5 are sorted for a whole row at once: the
// row's windows are gathered into k² lanes of width W and put through an odd-even
// transposition network of branch-free compare-exchanges, which the compiler vectorizes across
// the row. Larger windows select each median with std::nth_element.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <vector>

#include "bulwark/ops/median_filter.h"
#include "ops/median_filter_args.h"

namespace bulwark::ops {
namespace {

// Largest window count the sorting network handles.
constexpr int64_t kNetworkMax = 25;

template <typename scalar_t>
inline void compare_exchange(scalar_t* __restrict x, scalar_t* __restrict y, int64_t w) {
  for (int64_t j = 0; j < w; ++j) {
    const scalar_t a = x[j];
    const scalar_t b = y[j];
    // b sorts before a (NaN last), without branches.
    const bool swap = (b < a) | ((a != a) & (b == b));
    x[j] = swap ? b : a;
    y[j] = swap ? a : b;
  }
}

template <typename scalar_t>
void filter_rows_network(const scalar_t* __restrict in, scalar_t* __restrict out, int64_t begin,
                         int64_t end, int64_t h, int64_t w, int64_t k,
                         const std::vector<int64_t>& rows, const std::vector<int64_t>& cols) {
  const int64_t count = k * k;
  std::vector<scalar_t> lanes(static_cast<size_t>(count * w));
  scalar_t* buffer = lanes.data();
  for (int64_t r = begin; r < end; ++r) {  // r indexes (plane, row)
    const int64_t plane = r / h;
    const int64_t i = r % h;
    const scalar_t* src = in + plane * h * w;
    for (int64_t a = 0; a < k; ++a) {
      const scalar_t* line = src + rows[i * k + a] * w;
      for (int64_t b = 0; b < k; ++b) {
        scalar_t* lane = buffer + (a * k + b) * w;
        for (int64_t j = 0; j < w; ++j) lane[j] = line[cols[j * k + b]];
      }
    }
    for (int64_t round = 0; round < count; ++round) {
      for (int64_t p = round & 1; p + 1 < count; p += 2) {
        compare_exchange(buffer + p * w, buffer + (p + 1) * w, w);
      }
    }
    std::copy_n(buffer + (count / 2) * w, w, out + plane * h * w + i * w);
  }
}

template <typename scalar_t>
void filter_rows(const scalar_t* __restrict in, scalar_t* __restrict out, int64_t begin,
                 int64_t end, int64_t h, int64_t w, int64_t k, const std::vector<int64_t>& rows,
                 const std::vector<int64_t>& cols) {
  std::array<scalar_t, kMaxMedianWindow * kMaxMedianWindow> window{};
  const int64_t count = k * k;
  const int64_t rank = count / 2;
  const auto less = [](scalar_t a, scalar_t b) { return detail::nan_last_less(a, b); };
  for (int64_t r = begin; r < end; ++r) {  // r indexes (plane, row)
    const int64_t plane = r / h;
    const int64_t i = r % h;
    const scalar_t* src = in + plane * h * w;
    scalar_t* dst = out + plane * h * w + i * w;
    const int64_t* row_index = rows.data() + i * k;
    for (int64_t j = 0; j < w; ++j) {
      const int64_t* col_index = cols.data() + j * k;
      int64_t n = 0;
      for (int64_t a = 0; a < k; ++a) {
        const scalar_t* line = src + row_index[a] * w;
        for (int64_t b = 0; b < k; ++b) window[n++] = line[col_index[b]];
      }
      std::nth_element(window.begin(), window.begin() + rank, window.begin() + count, less);
      dst[j] = window[rank];
    }
  }
}

std::vector<int64_t> mirrored(int64_t size, int64_t k) {
  std::vector<int64_t> index(static_cast<size_t>(size * k));
  for (int64_t i = 0; i < size; ++i) {
    for (int64_t a = 0; a < k; ++a) index[i * k + a] = detail::mirror_index(i - k / 2 + a, size);
  }
  return index;
}

at::Tensor median_filter_cpu(const at::Tensor& x, int64_t k) {
  detail::check_median_filter_args(x, k);
  const auto input = x.contiguous();
  auto out = at::empty_like(input, at::MemoryFormat::Contiguous);
  if (out.numel() == 0) return out;
  const int64_t h = x.size(-2);
  const int64_t w = x.size(-1);
  const int64_t total_rows = input.numel() / w;
  const auto rows = mirrored(h, k);
  const auto cols = mirrored(w, k);
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, w * k * k));
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(input.scalar_type(), "median_filter_cpu", [&] {
    const auto* in = input.const_data_ptr<scalar_t>();
    auto* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, total_rows, grain, [&](int64_t begin, int64_t end) {
      if (k * k <= kNetworkMax) {
        filter_rows_network<scalar_t>(in, o, begin, end, h, w, k, rows, cols);
      } else {
        filter_rows<scalar_t>(in, o, begin, end, h, w, k, rows, cols);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CPU, m) { m.impl("median_filter", &median_filter_cpu); }

}  // namespace bulwark::ops
