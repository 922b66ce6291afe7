#pragma once
/// @file
/// Random, differentiable, batched image transforms for expectation over transformation (EOT):
/// the views under which patches and stickers must keep working, and the placements of a patch
/// in an image.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string_view>

#include "bulwark/core/input_box.h"

namespace bulwark {

/// Ranges of the random transforms of a view; every range is sampled uniformly and
/// independently per sample. All zero (the default) is the identity. The geometric part is one
/// affine map: rotation about the image centre, scaling, translation.
struct TransformOptions {
  /// Rotation in degrees, uniform in [−v, v].
  TransformOptions& rotation(double v) { rotation_ = v; return *this; }
  /// Zoom factor, uniform in [lo, hi] (1 keeps the size; default [1, 1]).
  TransformOptions& scale(double lo, double hi) { scale_min_ = lo; scale_max_ = hi; return *this; }
  /// Shift along each axis, uniform in [−v, v] times the image's width or height.
  TransformOptions& translate(double v) { translate_ = v; return *this; }
  /// Added to every pixel, uniform in [−v, v] (a change of light).
  TransformOptions& brightness(double v) { brightness_ = v; return *this; }
  /// Contrast factor about the image's mean, uniform in [lo, hi] (default [1, 1]).
  TransformOptions& contrast(double lo, double hi) {
    contrast_min_ = lo;
    contrast_max_ = hi;
    return *this;
  }
  /// Gaussian blur with standard deviation uniform in [0, v] pixels (defocus).
  TransformOptions& blur(double v) { blur_ = v; return *this; }
  /// Additive Gaussian noise with standard deviation uniform in [0, v] (sensor noise).
  TransformOptions& noise(double v) { noise_ = v; return *this; }

  double rotation() const { return rotation_; }
  double scale_min() const { return scale_min_; }
  double scale_max() const { return scale_max_; }
  double translate() const { return translate_; }
  double brightness() const { return brightness_; }
  double contrast_min() const { return contrast_min_; }
  double contrast_max() const { return contrast_max_; }
  double blur() const { return blur_; }
  double noise() const { return noise_; }

  /// The same kinds of change with every range widened (factor > 1) or narrowed (< 1) about
  /// the identity: factor 0 is the identity, 1 these options; a scale or contrast range's
  /// distance from 1 is multiplied (its lower end kept above 0.05).
  TransformOptions scaled(double factor) const;

  /// No geometric change: rotation 0, scale [1, 1], translation 0.
  bool geometric_identity() const;
  /// No change of any kind.
  bool identity() const;
  /// @throws Error naming `where` on negative or non-finite ranges, scale_min <= 0, scale or
  /// contrast with lo > hi, contrast_min < 0.
  void validate(std::string_view where) const;

 private:
  double rotation_ = 0, scale_min_ = 1, scale_max_ = 1, translate_ = 0, brightness_ = 0,
         contrast_min_ = 1, contrast_max_ = 1, blur_ = 0, noise_ = 0;
};

/// One draw of the transforms for a batch of N views (all tensors on the images' device, in
/// their dtype).
struct TransformDraw {
  /// [N, 2, 3]: maps each output pixel to where it reads the input (affine_grid convention,
  /// align_corners = false); undefined when the geometric part is the identity.
  at::Tensor theta;
  at::Tensor brightness;  ///< [N] additive
  at::Tensor contrast;    ///< [N] factor
  at::Tensor blur_sigma;  ///< [N] pixels
  at::Tensor noise;       ///< [N, C, H, W] Gaussian noise, already scaled; undefined if none
  bool photometric_identity = true;
};

/// Draws the transforms of `images.size(0)` views of [N, C, H, W] images.
/// @throws Error when the options are invalid or images are not [N, C, H, W] floats.
TransformDraw sample_transforms(const at::Tensor& images, const TransformOptions& options,
                                at::Generator& generator);

/// Warps `images` by draw.theta (bilinear, zero fill; differentiable). The identity when the
/// draw has no geometric part: the same tensor, bit for bit.
at::Tensor apply_geometric(const at::Tensor& images, const TransformDraw& draw);

/// Contrast about each image's mean, brightness, blur, noise, then clamping into `box`, in that
/// order (differentiable). The identity when the draw has no photometric part.
at::Tensor apply_photometric(const at::Tensor& images, const TransformDraw& draw,
                             const InputBox& box);

/// Both parts: apply_photometric(apply_geometric(images)).
at::Tensor apply_transforms(const at::Tensor& images, const TransformDraw& draw,
                            const InputBox& box);

/// How a patch of h×w pixels is placed into an image: rotated about its centre, scaled, and put
/// at a uniformly random position where it lies wholly inside the image.
struct PlacementOptions {
  /// Rotation in degrees, uniform in [−v, v] (default 22.5, as IBM ART's AdversarialPatch).
  PlacementOptions& rotation(double v) { rotation_ = v; return *this; }
  /// Size factor relative to the patch's nominal size, uniform in [lo, hi] (default [0.8, 1]:
  /// the nominal size is the largest).
  PlacementOptions& scale(double lo, double hi) { scale_min_ = lo; scale_max_ = hi; return *this; }
  double rotation() const { return rotation_; }
  double scale_min() const { return scale_min_; }
  double scale_max() const { return scale_max_; }
  /// @throws Error naming `where` unless 0 <= rotation, 0 < scale_min <= scale_max, all finite.
  void validate(std::string_view where) const;

 private:
  double rotation_ = 22.5, scale_min_ = 0.8, scale_max_ = 1.0;
};

/// The affine map (affine_grid convention, [2, 3] as 6 doubles, row-major) that shows an h×w
/// patch in an H×W image with its centre at pixel position (cx, cy) (continuous coordinates,
/// pixel i covering [i, i + 1)), rotated by `angle` radians and drawn `scale` image pixels per
/// patch pixel. With h = H, w = W, the centre of the image, angle 0 and scale 1: the identity.
std::array<double, 6> placement_theta(int64_t H, int64_t W, int64_t h, int64_t w, double cx,
                                      double cy, double angle, double scale);

/// Random placements [N, 2, 3] of an h×w patch drawn `pixel_scale` image pixels per patch pixel
/// (times the options' random factor) in H×W images, in `dtype` on `device`.
/// @throws Error when the patch at the smallest scale does not fit into the image.
at::Tensor sample_placements(int64_t n, int64_t H, int64_t W, int64_t h, int64_t w,
                             double pixel_scale, const PlacementOptions& options,
                             at::Generator& generator, const at::TensorOptions& tensor_options);

}  // namespace bulwark
