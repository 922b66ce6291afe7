#pragma once
// Validation and the sampling geometry shared by the reference and every kernel of
// bulwark::patch_composite and its backward, so that the CPU and CUDA kernels read the patch
// at exactly the same positions as affine_grid + grid_sample.

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#if defined(__CUDACC__)
#define BULWARK_HOST_DEVICE __host__ __device__
#else
#define BULWARK_HOST_DEVICE
#endif

namespace bulwark::ops::detail {

/// Checks images [N, C, H, W], patch [C, h, w] or [N, C, h, w], mask [h, w], theta [N, 2, 3].
void check_patch_composite_args(const at::Tensor& images, const at::Tensor& patch,
                                const at::Tensor& mask, const at::Tensor& theta, int64_t blend);

/// Checks grad_output [N, C, H, W], mask [h, w], theta [N, 2, 3].
void check_patch_composite_backward_args(const at::Tensor& grad_output, const at::Tensor& mask,
                                         const at::Tensor& theta, int64_t blend);

/// The four bilinear taps of one output pixel in the patch: row/column of the top-left tap
/// and the weights of (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1).
template <typename T>
struct Taps {
  int64_t y0, x0;
  T w00, w01, w10, w11;
};

/// Taps at patch pixel coordinates (ix, iy) (align_corners = false: pixel i's centre is at
/// i). Returns false when no tap lies inside the h×w patch, NaN coordinates included.
template <typename T>
BULWARK_HOST_DEVICE inline bool taps_at(T ix, T iy, int64_t h, int64_t w, Taps<T>& taps) {
  using std::floor;
  if (!(ix > T(-1) && ix < static_cast<T>(w) && iy > T(-1) && iy < static_cast<T>(h))) {
    return false;
  }
  const T fx0 = floor(ix);
  const T fy0 = floor(iy);
  const T fx = ix - fx0;
  const T fy = iy - fy0;
  taps.x0 = static_cast<int64_t>(fx0);
  taps.y0 = static_cast<int64_t>(fy0);
  taps.w00 = (T(1) - fx) * (T(1) - fy);
  taps.w01 = fx * (T(1) - fy);
  taps.w10 = (T(1) - fx) * fy;
  taps.w11 = fx * fy;
  return true;
}

/// Taps of output pixel (y, x) of an H×W image under theta (row-major 2×3) in an h×w patch,
/// with align_corners = false. Returns false when no tap lies inside the patch.
template <typename T>
BULWARK_HOST_DEVICE inline bool patch_taps(const T* theta, int64_t y, int64_t x, int64_t H,
                                           int64_t W, int64_t h, int64_t w, Taps<T>& taps) {
  const T gx = (T(2) * static_cast<T>(x) + T(1)) / static_cast<T>(W) - T(1);
  const T gy = (T(2) * static_cast<T>(y) + T(1)) / static_cast<T>(H) - T(1);
  const T px = theta[0] * gx + theta[1] * gy + theta[2];
  const T py = theta[3] * gx + theta[4] * gy + theta[5];
  return taps_at(((px + T(1)) * static_cast<T>(w) - T(1)) / T(2),
                 ((py + T(1)) * static_cast<T>(h) - T(1)) / T(2), h, w, taps);
}

/// Along output row y the patch coordinates are linear in x: ix = ix0 + x · dix,
/// iy = iy0 + x · diy. [begin, end) holds every x whose taps may lie inside the patch (a
/// slightly larger range; the taps are still checked per pixel): the CPU kernels copy the
/// rest of the row.
template <typename T>
struct RowSpan {
  T ix0, dix, iy0, diy;
  int64_t begin, end;
};

template <typename T>
inline RowSpan<T> row_span(const T* theta, int64_t y, int64_t H, int64_t W, int64_t h,
                           int64_t w) {
  const T gy = (T(2) * static_cast<T>(y) + T(1)) / static_cast<T>(H) - T(1);
  const T g0 = T(1) / static_cast<T>(W) - T(1);  // gx at x = 0
  const T step = T(2) / static_cast<T>(W);        // gx per pixel
  RowSpan<T> span{};
  span.ix0 = ((theta[0] * g0 + theta[1] * gy + theta[2] + T(1)) * static_cast<T>(w) - T(1)) / T(2);
  span.dix = theta[0] * step * static_cast<T>(w) / T(2);
  span.iy0 = ((theta[3] * g0 + theta[4] * gy + theta[5] + T(1)) * static_cast<T>(h) - T(1)) / T(2);
  span.diy = theta[3] * step * static_cast<T>(h) / T(2);
  // The x where lo < c0 + x · d < hi, widened by a pixel on each side for rounding.
  double first = 0, last = static_cast<double>(W);
  const auto clip = [&](T c0, T d, double lo, double hi) {
    if (d == T(0)) {
      if (!(static_cast<double>(c0) > lo - 1e-6 && static_cast<double>(c0) < hi + 1e-6)) {
        last = first - 1;
      }
      return;
    }
    double a = (lo - static_cast<double>(c0)) / static_cast<double>(d);
    double b = (hi - static_cast<double>(c0)) / static_cast<double>(d);
    if (a > b) std::swap(a, b);
    first = std::max(first, a - 1);
    last = std::min(last, b + 1);
  };
  clip(span.ix0, span.dix, -1.0, static_cast<double>(w));
  clip(span.iy0, span.diy, -1.0, static_cast<double>(h));
  if (!(last >= first)) {  // also catches NaN
    span.begin = span.end = 0;
  } else {
    span.begin = std::clamp<int64_t>(static_cast<int64_t>(std::floor(first)), 0, W);
    span.end = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(last)) + 1, span.begin, W);
  }
  return span;
}

/// Calls f(offset, weight) for each tap inside the h×w patch (offset = row · w + column).
template <typename T, typename F>
BULWARK_HOST_DEVICE inline void for_each_tap(const Taps<T>& taps, int64_t h, int64_t w, F&& f) {
  const bool left = taps.x0 >= 0;
  const bool right = taps.x0 + 1 < w;
  const bool top = taps.y0 >= 0;
  const bool bottom = taps.y0 + 1 < h;
  const int64_t base = taps.y0 * w + taps.x0;
  if (top && left) f(base, taps.w00);
  if (top && right) f(base + 1, taps.w01);
  if (bottom && left) f(base + w, taps.w10);
  if (bottom && right) f(base + w + 1, taps.w11);
}

}  // namespace bulwark::ops::detail
