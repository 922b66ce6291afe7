#pragma once
// Validation and window geometry shared by the reference and every kernel of
// bulwark::median_filter.

#include <ATen/core/Tensor.h>

#include <cstdint>

#if defined(__CUDACC__)
#define BULWARK_MEDIAN_HOST_DEVICE __host__ __device__
#else
#define BULWARK_MEDIAN_HOST_DEVICE
#endif

namespace bulwark::ops::detail {

void check_median_filter_args(const at::Tensor& x, int64_t k);

/// Index of position i (which may lie up to k − 1 outside [0, size)) mirrored with the edge
/// repeated; needs k <= size, which check_median_filter_args ensures.
BULWARK_MEDIAN_HOST_DEVICE inline int64_t mirror_index(int64_t i, int64_t size) {
  if (i < 0) return -i - 1;
  if (i >= size) return 2 * size - i - 1;
  return i;
}

/// "a sorts before b", with NaN above every number (as in at::sort and at::kthvalue).
template <typename T>
BULWARK_MEDIAN_HOST_DEVICE inline bool nan_last_less(T a, T b) {
  return a < b || (b != b && a == a);
}

}  // namespace bulwark::ops::detail
