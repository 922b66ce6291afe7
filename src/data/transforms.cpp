#include "bulwark/data/transforms.h"

#include <torch/torch.h>

#include <cmath>
#include <numbers>

#include "core/check.h"

namespace bulwark {
namespace {

constexpr double kDegree = std::numbers::pi / 180.0;

// n values uniform in [lo, hi], in double on the CPU.
at::Tensor uniform(int64_t n, double lo, double hi, at::Generator& generator) {
  return at::rand({n}, generator, at::TensorOptions().dtype(at::kDouble)) * (hi - lo) + lo;
}

// [N] → [N, 1, 1, 1] for broadcasting over images.
at::Tensor per_image(const at::Tensor& v) { return v.reshape({-1, 1, 1, 1}); }

void check_images(std::string_view where, const at::Tensor& images) {
  detail::check_float_tensor(where, "images", images);
  BULWARK_CHECK(images.dim() == 4, "{}: images must be [N, C, H, W], got shape {}", where,
                detail::shape_string(images));
}

// Separable Gaussian blur with one standard deviation per image (0 leaves it unchanged),
// replicate padding at the borders.
at::Tensor gaussian_blur(const at::Tensor& images, const at::Tensor& sigma, double max_sigma) {
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t radius = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * max_sigma)));
  const auto offsets = at::arange(-radius, radius + 1, images.options()).reshape({1, -1});
  const auto s = sigma.reshape({-1, 1}).clamp_min(1e-3);
  auto weights = at::exp(-offsets.square() / (2 * s.square()));
  // A standard deviation of (nearly) zero is the identity kernel.
  const auto delta = (offsets == 0).to(images.scalar_type()).expand_as(weights);
  weights = at::where(sigma.reshape({-1, 1}) < 1e-3, delta, weights);
  weights = (weights / weights.sum(1, true)).repeat_interleave(c, 0);  // [N*C, k]
  const int64_t k = 2 * radius + 1;
  auto x = at::pad(images.reshape({1, n * c, h, w}), {radius, radius, radius, radius},
                   "replicate");
  const std::vector<int64_t> ones{1, 1}, zeros{0, 0};
  x = at::conv2d(x, weights.reshape({n * c, 1, k, 1}), at::Tensor(), ones, zeros, ones, n * c);
  x = at::conv2d(x, weights.reshape({n * c, 1, 1, k}), at::Tensor(), ones, zeros, ones, n * c);
  return x.reshape({n, c, h, w});
}

}  // namespace

bool TransformOptions::geometric_identity() const {
  return rotation_ == 0 && scale_min_ == 1 && scale_max_ == 1 && translate_ == 0;
}

TransformOptions TransformOptions::scaled(double factor) const {
  BULWARK_CHECK(factor >= 0 && std::isfinite(factor),
                "TransformOptions::scaled: factor must be finite and >= 0, got {}", factor);
  const auto widen = [factor](double lo, double hi) {
    return std::pair{std::max(0.05, 1 - factor * (1 - lo)), 1 + factor * (hi - 1)};
  };
  const auto [scale_lo, scale_hi] = widen(scale_min_, scale_max_);
  const auto [contrast_lo, contrast_hi] = widen(contrast_min_, contrast_max_);
  return TransformOptions()
      .rotation(rotation_ * factor)
      .scale(factor == 0 ? 1 : scale_lo, factor == 0 ? 1 : scale_hi)
      .translate(translate_ * factor)
      .brightness(brightness_ * factor)
      .contrast(factor == 0 ? 1 : contrast_lo, factor == 0 ? 1 : contrast_hi)
      .blur(blur_ * factor)
      .noise(noise_ * factor);
}

bool TransformOptions::identity() const {
  return geometric_identity() && brightness_ == 0 && contrast_min_ == 1 && contrast_max_ == 1 &&
         blur_ == 0 && noise_ == 0;
}

void TransformOptions::validate(std::string_view where) const {
  for (const auto& [name, v] : {std::pair<std::string_view, double>{"rotation", rotation_},
                                {"translate", translate_},
                                {"brightness", brightness_},
                                {"blur", blur_},
                                {"noise", noise_}}) {
    BULWARK_CHECK(std::isfinite(v) && v >= 0, "{}: transform range {} must be finite and >= 0, "
                  "got {}", where, name, v);
  }
  BULWARK_CHECK(std::isfinite(scale_max_) && scale_min_ > 0 && scale_min_ <= scale_max_,
                "{}: transform scale range must satisfy 0 < lo <= hi, got [{}, {}]", where,
                scale_min_, scale_max_);
  BULWARK_CHECK(std::isfinite(contrast_max_) && contrast_min_ >= 0 &&
                    contrast_min_ <= contrast_max_,
                "{}: transform contrast range must satisfy 0 <= lo <= hi, got [{}, {}]", where,
                contrast_min_, contrast_max_);
  BULWARK_CHECK(blur_ <= 10, "{}: blur sigma above 10 pixels is not supported, got {}", where,
                blur_);
}

std::array<double, 6> placement_theta(int64_t H, int64_t W, int64_t h, int64_t w, double cx,
                                      double cy, double angle, double scale) {
  const double c = std::cos(angle), s = std::sin(angle);
  const double hw = static_cast<double>(W), hh = static_cast<double>(H);
  const double pw = static_cast<double>(w) * scale, ph = static_cast<double>(h) * scale;
  // Output pixel (X, Y) relative to the centre, rotated back by −angle, in patch pixels,
  // normalized to [−1, 1]; written for normalized output coordinates gx = 2X/W − 1.
  return {c * hw / pw,
          s * hh / pw,
          2 / pw * (c * (hw / 2 - cx) + s * (hh / 2 - cy)),
          -s * hw / ph,
          c * hh / ph,
          2 / ph * (-s * (hw / 2 - cx) + c * (hh / 2 - cy))};
}

TransformDraw sample_transforms(const at::Tensor& images, const TransformOptions& options,
                                at::Generator& generator) {
  constexpr std::string_view where = "sample_transforms";
  check_images(where, images);
  options.validate(where);
  const int64_t n = images.size(0), H = images.size(2), W = images.size(3);
  const auto to_images = [&](const at::Tensor& t) {
    return t.to(images.device(), images.scalar_type());
  };
  TransformDraw draw;
  // Every range is drawn, used or not, so that changing one range leaves the others' draws
  // unchanged for the same seed.
  const auto angle = uniform(n, -options.rotation(), options.rotation(), generator) * kDegree;
  const auto zoom = uniform(n, options.scale_min(), options.scale_max(), generator);
  const auto tx = uniform(n, -options.translate(), options.translate(), generator);
  const auto ty = uniform(n, -options.translate(), options.translate(), generator);
  const auto brightness = uniform(n, -options.brightness(), options.brightness(), generator);
  const auto contrast = uniform(n, options.contrast_min(), options.contrast_max(), generator);
  const auto blur = uniform(n, 0, options.blur(), generator);
  const auto noise_std = uniform(n, 0, options.noise(), generator);
  if (!options.geometric_identity()) {
    auto theta = at::empty({n, 2, 3}, at::TensorOptions().dtype(at::kDouble));
    auto t = theta.accessor<double, 3>();
    const auto a = angle.accessor<double, 1>(), z = zoom.accessor<double, 1>(),
               x = tx.accessor<double, 1>(), y = ty.accessor<double, 1>();
    for (int64_t i = 0; i < n; ++i) {
      const auto m = placement_theta(H, W, H, W, W * (0.5 + x[i]), H * (0.5 + y[i]), a[i], z[i]);
      for (int k = 0; k < 6; ++k) t[i][k / 3][k % 3] = m[static_cast<size_t>(k)];
    }
    draw.theta = to_images(theta);
  }
  draw.brightness = to_images(brightness);
  draw.contrast = to_images(contrast);
  draw.blur_sigma = to_images(blur);
  if (options.noise() > 0) {
    const auto unit = at::randn(images.sizes(), generator, at::TensorOptions().dtype(at::kFloat));
    draw.noise = to_images(unit) * per_image(to_images(noise_std));
  }
  draw.photometric_identity = options.brightness() == 0 && options.contrast_min() == 1 &&
                              options.contrast_max() == 1 && options.blur() == 0 &&
                              options.noise() == 0;
  return draw;
}

at::Tensor apply_geometric(const at::Tensor& images, const TransformDraw& draw) {
  check_images("apply_geometric", images);
  if (!draw.theta.defined()) return images;
  BULWARK_CHECK(draw.theta.dim() == 3 && draw.theta.size(0) == images.size(0),
                "apply_geometric: the draw is for {} views but images has {}",
                draw.theta.size(0), images.size(0));
  const auto grid = at::affine_grid_generator(draw.theta, images.sizes(), false);
  return at::grid_sampler(images, grid, /*bilinear*/ 0, /*zeros*/ 0, false);
}

at::Tensor apply_photometric(const at::Tensor& images, const TransformDraw& draw,
                             const InputBox& box) {
  check_images("apply_photometric", images);
  if (draw.photometric_identity) return images;
  BULWARK_CHECK(draw.contrast.defined() && draw.contrast.size(0) == images.size(0),
                "apply_photometric: the draw does not match the {} images", images.size(0));
  const auto mean = images.mean({1, 2, 3}, true);
  auto x = (images - mean) * per_image(draw.contrast) + mean + per_image(draw.brightness);
  const double max_sigma = draw.blur_sigma.max().item<double>();
  if (max_sigma > 0) x = gaussian_blur(x, draw.blur_sigma, max_sigma);
  if (draw.noise.defined()) x = x + draw.noise;
  return box.clamp(x);
}

at::Tensor apply_transforms(const at::Tensor& images, const TransformDraw& draw,
                            const InputBox& box) {
  return apply_photometric(apply_geometric(images, draw), draw, box);
}

void PlacementOptions::validate(std::string_view where) const {
  BULWARK_CHECK(std::isfinite(rotation_) && rotation_ >= 0,
                "{}: placement rotation must be finite and >= 0 degrees, got {}", where,
                rotation_);
  BULWARK_CHECK(std::isfinite(scale_max_) && scale_min_ > 0 && scale_min_ <= scale_max_,
                "{}: placement scale range must satisfy 0 < lo <= hi, got [{}, {}]", where,
                scale_min_, scale_max_);
}

at::Tensor sample_placements(int64_t n, int64_t H, int64_t W, int64_t h, int64_t w,
                             double pixel_scale, const PlacementOptions& options,
                             at::Generator& generator, const at::TensorOptions& tensor_options) {
  constexpr std::string_view where = "sample_placements";
  options.validate(where);
  BULWARK_CHECK(n >= 0 && H > 0 && W > 0 && h > 0 && w > 0 && pixel_scale > 0,
                "sample_placements: needs n >= 0 and positive sizes, got n {}, image {}x{}, "
                "patch {}x{}, scale {}", n, H, W, h, w, pixel_scale);
  const double smallest = pixel_scale * options.scale_min();
  BULWARK_CHECK(smallest * static_cast<double>(h) <= static_cast<double>(H) + 1e-9 &&
                    smallest * static_cast<double>(w) <= static_cast<double>(W) + 1e-9,
                "sample_placements: a {}x{} patch at scale {} ({:.1f}x{:.1f} pixels) is larger "
                "than the {}x{} image", h, w, smallest, smallest * static_cast<double>(h),
                smallest * static_cast<double>(w), H, W);
  const auto zoom = uniform(n, options.scale_min(), options.scale_max(), generator);
  const auto angle =
      uniform(n, -options.rotation(), options.rotation(), generator) * kDegree;
  const auto px = uniform(n, 0, 1, generator);
  const auto py = uniform(n, 0, 1, generator);
  auto theta = at::empty({n, 2, 3}, at::TensorOptions().dtype(at::kDouble));
  auto t = theta.accessor<double, 3>();
  const auto z = zoom.accessor<double, 1>(), a = angle.accessor<double, 1>(),
             u = px.accessor<double, 1>(), v = py.accessor<double, 1>();
  for (int64_t i = 0; i < n; ++i) {
    const double scale = pixel_scale * z[i];
    const double c = std::abs(std::cos(a[i])), s = std::abs(std::sin(a[i]));
    // Half extents of the rotated patch's bounding box; a patch that no longer fits after
    // rotation is centred.
    const double ex = scale * (c * static_cast<double>(w) + s * static_cast<double>(h)) / 2;
    const double ey = scale * (s * static_cast<double>(w) + c * static_cast<double>(h)) / 2;
    const double cx = 2 * ex <= W ? ex + u[i] * (W - 2 * ex) : W / 2.0;
    const double cy = 2 * ey <= H ? ey + v[i] * (H - 2 * ey) : H / 2.0;
    const auto m = placement_theta(H, W, h, w, cx, cy, a[i], scale);
    for (int k = 0; k < 6; ++k) t[i][k / 3][k % 3] = m[static_cast<size_t>(k)];
  }
  return theta.to(tensor_options);
}

}  // namespace bulwark
