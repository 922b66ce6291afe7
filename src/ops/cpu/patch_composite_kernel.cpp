// CPU kernels of bulwark::patch_composite and its backward. The forward runs in parallel over
// image rows; along a row the patch coordinates are linear in x, so only the span of the row
// the patch can reach is sampled (at most four taps per pixel) and the rest is copied. The backward
// writes the image gradient in the same pass in which it scatters the patch gradient; a shared
// patch's gradient is summed in a fixed number of sample chunks, each into its own buffer, and
// the buffers are added in order, so the result does not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>

#include "bulwark/ops/patch_composite.h"
#include "ops/patch_composite_args.h"

namespace bulwark::ops {
namespace {

using detail::RowSpan;

struct Geometry {
  int64_t channels, height, width, patch_height, patch_width;
  int64_t image_size() const { return height * width; }
  int64_t patch_size() const { return patch_height * patch_width; }
};

Geometry geometry_of(const at::Tensor& images, const at::Tensor& mask) {
  return {images.size(1), images.size(2), images.size(3), mask.size(0), mask.size(1)};
}

// Copies columns [0, begin) and [end, W) of row `row` of every channel from `from` to `to`.
template <typename scalar_t>
void copy_outside(const scalar_t* from, scalar_t* to, int64_t row, const RowSpan<scalar_t>& span,
                  const Geometry& g) {
  const int64_t plane = g.image_size();
  for (int64_t c = 0; c < g.channels; ++c) {
    const int64_t offset = c * plane + row * g.width;
    std::copy(from + offset, from + offset + span.begin, to + offset);
    std::copy(from + offset + span.end, from + offset + g.width, to + offset + span.end);
  }
}

template <typename scalar_t>
void composite_row(const scalar_t* image, const scalar_t* patch, const scalar_t* mask,
                   const scalar_t* theta, scalar_t* out, int64_t y, const Geometry& g,
                   bool replace) {
  const int64_t plane = g.image_size();
  const int64_t patch_plane = g.patch_size();
  const auto span = detail::row_span(theta, y, g.height, g.width, g.patch_height, g.patch_width);
  copy_outside(image, out, y, span, g);
  for (int64_t x = span.begin; x < span.end; ++x) {
    const int64_t pixel = y * g.width + x;
    const auto xs = static_cast<scalar_t>(x);
    detail::Taps<scalar_t> taps{};
    if (!detail::taps_at(span.ix0 + xs * span.dix, span.iy0 + xs * span.diy, g.patch_height,
                         g.patch_width, taps)) {
      for (int64_t c = 0; c < g.channels; ++c) out[c * plane + pixel] = image[c * plane + pixel];
      continue;
    }
    scalar_t alpha = 0;
    detail::for_each_tap(taps, g.patch_height, g.patch_width,
                         [&](int64_t k, scalar_t weight) { alpha += weight * mask[k]; });
    const scalar_t keep = replace ? scalar_t(1) - alpha : scalar_t(1);
    for (int64_t c = 0; c < g.channels; ++c) {
      const scalar_t* channel = patch + c * patch_plane;
      scalar_t q = 0;
      detail::for_each_tap(taps, g.patch_height, g.patch_width, [&](int64_t k, scalar_t weight) {
        q += weight * mask[k] * channel[k];
      });
      out[c * plane + pixel] = image[c * plane + pixel] * keep + q;
    }
  }
}

at::Tensor patch_composite_cpu(const at::Tensor& images, const at::Tensor& patch,
                               const at::Tensor& mask, const at::Tensor& theta, int64_t blend) {
  detail::check_patch_composite_args(images, patch, mask, theta, blend);
  const auto img = images.contiguous();
  const auto pat = patch.contiguous();
  const auto msk = mask.contiguous();
  const auto th = theta.contiguous();
  auto out = at::empty_like(img, at::MemoryFormat::Contiguous);
  if (out.numel() == 0) return out;
  const auto g = geometry_of(img, msk);
  const int64_t rows = img.size(0) * g.height;
  const bool per_sample = pat.dim() == 4;
  const bool replace = blend == static_cast<int64_t>(Blend::Replace);
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "patch_composite_cpu", [&] {
    const auto* i = img.const_data_ptr<scalar_t>();
    const auto* p = pat.const_data_ptr<scalar_t>();
    const auto* m = msk.const_data_ptr<scalar_t>();
    const auto* t = th.const_data_ptr<scalar_t>();
    auto* o = out.mutable_data_ptr<scalar_t>();
    const int64_t sample = g.channels * g.image_size();
    const int64_t patch_sample = per_sample ? g.channels * g.patch_size() : 0;
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.width * g.channels));
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / g.height;
        composite_row<scalar_t>(i + n * sample, p + n * patch_sample, m, t + n * 6, o + n * sample,
                                r % g.height, g, replace);
      }
    });
  });
  return out;
}

// Image gradient of sample n, and its patch gradient added into `grad_patch` ([C, h, w]).
template <typename scalar_t>
void backward_sample(const scalar_t* grad_out, const scalar_t* mask, const scalar_t* theta,
                     scalar_t* grad_image, scalar_t* grad_patch, const Geometry& g,
                     bool replace) {
  const int64_t plane = g.image_size();
  const int64_t patch_plane = g.patch_size();
  for (int64_t y = 0; y < g.height; ++y) {
    const auto span =
        detail::row_span(theta, y, g.height, g.width, g.patch_height, g.patch_width);
    copy_outside(grad_out, grad_image, y, span, g);
    for (int64_t x = span.begin; x < span.end; ++x) {
      const int64_t pixel = y * g.width + x;
      const auto xs = static_cast<scalar_t>(x);
      detail::Taps<scalar_t> taps{};
      if (!detail::taps_at(span.ix0 + xs * span.dix, span.iy0 + xs * span.diy, g.patch_height,
                           g.patch_width, taps)) {
        for (int64_t c = 0; c < g.channels; ++c) {
          grad_image[c * plane + pixel] = grad_out[c * plane + pixel];
        }
        continue;
      }
      scalar_t alpha = 0;
      detail::for_each_tap(taps, g.patch_height, g.patch_width,
                           [&](int64_t k, scalar_t weight) { alpha += weight * mask[k]; });
      const scalar_t keep = replace ? scalar_t(1) - alpha : scalar_t(1);
      for (int64_t c = 0; c < g.channels; ++c) {
        const scalar_t go = grad_out[c * plane + pixel];
        grad_image[c * plane + pixel] = go * keep;
        scalar_t* channel = grad_patch + c * patch_plane;
        detail::for_each_tap(taps, g.patch_height, g.patch_width,
                             [&](int64_t k, scalar_t weight) { channel[k] += go * weight * mask[k]; });
      }
    }
  }
}

// Chunks of the batch a shared patch's gradient is summed in; fixed, so the summation order
// (and the result, bit for bit) is the same for any number of threads.
constexpr int64_t kGradientChunks = 16;

std::tuple<at::Tensor, at::Tensor> patch_composite_backward_cpu(const at::Tensor& grad_output,
                                                                const at::Tensor& mask,
                                                                const at::Tensor& theta,
                                                                int64_t blend,
                                                                bool per_sample_patch) {
  detail::check_patch_composite_backward_args(grad_output, mask, theta, blend);
  const auto go = grad_output.contiguous();
  const auto msk = mask.contiguous();
  const auto th = theta.contiguous();
  const auto g = geometry_of(go, msk);
  const int64_t batch = go.size(0);
  auto grad_images = at::empty_like(go, at::MemoryFormat::Contiguous);
  const int64_t chunks = per_sample_patch ? batch : std::min(batch, kGradientChunks);
  // Per-sample patches get their gradient written in place; a shared one sums chunk buffers.
  auto buffers = at::zeros({chunks, g.channels, g.patch_height, g.patch_width}, go.options());
  const bool replace = blend == static_cast<int64_t>(Blend::Replace);
  if (batch > 0) {
    AT_DISPATCH_FLOATING_TYPES(go.scalar_type(), "patch_composite_backward_cpu", [&] {
      const auto* gp = go.const_data_ptr<scalar_t>();
      const auto* m = msk.const_data_ptr<scalar_t>();
      const auto* t = th.const_data_ptr<scalar_t>();
      auto* gi = grad_images.mutable_data_ptr<scalar_t>();
      auto* b = buffers.mutable_data_ptr<scalar_t>();
      const int64_t sample = g.channels * g.image_size();
      const int64_t patch_sample = g.channels * g.patch_size();
      at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t chunk = begin; chunk < end; ++chunk) {
          const int64_t first = chunk * batch / chunks;
          const int64_t last = (chunk + 1) * batch / chunks;
          for (int64_t n = first; n < last; ++n) {
            backward_sample<scalar_t>(gp + n * sample, m, t + n * 6, gi + n * sample,
                                      b + chunk * patch_sample, g, replace);
          }
        }
      });
    });
  }
  if (per_sample_patch) return {grad_images, buffers};
  // Summed in chunk order, one after the other: deterministic.
  auto grad_patch = at::zeros({g.channels, g.patch_height, g.patch_width}, go.options());
  for (int64_t chunk = 0; chunk < chunks; ++chunk) grad_patch.add_(buffers[chunk]);
  return {grad_images, grad_patch};
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CPU, m) {
  m.impl("patch_composite", &patch_composite_cpu);
  m.impl("patch_composite_backward", &patch_composite_backward_cpu);
}

}  // namespace bulwark::ops
