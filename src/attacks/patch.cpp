#include "bulwark/attacks/patch.h"

#include <torch/torch.h>

#include <cmath>
#include <numbers>

#include "attacks/eot_common.h"
#include "bulwark/core/seed.h"
#include "bulwark/ops/patch_composite.h"
#include "core/check.h"

namespace bulwark {

PatchShape parse_patch_shape(std::string_view text) {
  if (text == "square") return PatchShape::Square;
  if (text == "circle") return PatchShape::Circle;
  throw Error(fmt::format("patch shape must be 'square' or 'circle', got '{}'", text));
}

std::string to_string(PatchShape shape) {
  return shape == PatchShape::Square ? "square" : "circle";
}

double AdversarialPatch::area_fraction(int64_t height, int64_t width) const {
  return mask.sum().item<double>() * pixel_scale * pixel_scale /
         static_cast<double>(height * width);
}

AdversarialPatch make_patch(PatchShape shape, double size, int64_t channels, int64_t height,
                            int64_t width, double fill) {
  BULWARK_CHECK(size > 0 && size <= 1, "make_patch: size (fraction of the image area) must lie "
                "in (0, 1], got {}", size);
  BULWARK_CHECK(channels >= 1 && height >= 1 && width >= 1,
                "make_patch: the image needs C, H, W >= 1, got {}x{}x{}", channels, height, width);
  const double area = size * static_cast<double>(height * width);
  const double side = shape == PatchShape::Square ? std::sqrt(area)
                                                  : 2 * std::sqrt(area / std::numbers::pi);
  const auto r = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(side - 1e-9)));
  AdversarialPatch patch;
  patch.shape = shape;
  patch.pixels = torch::full({channels, r, r}, fill);
  if (shape == PatchShape::Square) {
    patch.mask = torch::ones({r, r});
  } else {
    // Pixels whose centre lies inside the inscribed circle.
    const auto centres = torch::arange(r, torch::kDouble) + 0.5 - static_cast<double>(r) / 2;
    const auto d2 = centres.square().unsqueeze(1) + centres.square().unsqueeze(0);
    patch.mask = d2.le(static_cast<double>(r * r) / 4).to(torch::kFloat);
  }
  // Drawn so that the opaque area is exactly `size` of the image at the nominal size.
  patch.pixel_scale = std::sqrt(area / patch.mask.sum().item<double>());
  BULWARK_CHECK(patch.pixel_scale * static_cast<double>(r) <=
                    static_cast<double>(std::min(height, width)) + 1e-9,
                "make_patch: a {} patch covering {} of a {}x{} image ({:.1f} pixels across) is "
                "larger than the image", to_string(shape), size, height, width,
                patch.pixel_scale * static_cast<double>(r));
  return patch;
}

namespace {

void check_patch(std::string_view where, const AdversarialPatch& patch, const at::Tensor& images,
                 const InputBox& box) {
  detail::check_float_tensor(where, "patch.pixels", patch.pixels, 3);
  BULWARK_CHECK(patch.pixels.dim() == 3 && patch.mask.defined() && patch.mask.dim() == 2 &&
                    patch.pixels.size(1) == patch.mask.size(0) &&
                    patch.pixels.size(2) == patch.mask.size(1),
                "{}: the patch must be pixels [C, h, w] with a mask [h, w], got {} and {}", where,
                detail::shape_string(patch.pixels),
                patch.mask.defined() ? detail::shape_string(patch.mask) : "none");
  BULWARK_CHECK(images.dim() == 4 && patch.pixels.size(0) == images.size(1),
                "{}: the patch has {} channels but the images are {}", where,
                patch.pixels.size(0), detail::shape_string(images));
  BULWARK_CHECK(patch.pixel_scale > 0 && std::isfinite(patch.pixel_scale),
                "{}: patch.pixel_scale must be finite and > 0, got {}", where, patch.pixel_scale);
  box.check_contains(where, "patch.pixels", patch.pixels);
}

// The views of a batch: the patch (or `pixels` in its place) at random placements, then the
// image transforms.
at::Tensor patched_views(const at::Tensor& x, const at::Tensor& pixels, const at::Tensor& mask,
                         double pixel_scale, const PlacementOptions& placement,
                         const TransformOptions& transforms, const InputBox& box,
                         at::Generator& generator) {
  const auto theta =
      sample_placements(x.size(0), x.size(2), x.size(3), mask.size(0), mask.size(1), pixel_scale,
                        placement, generator, x.options());
  auto views = ops::patch_composite(x, pixels, mask, theta, ops::Blend::Replace);
  if (transforms.identity()) return views;
  return apply_transforms(views, sample_transforms(views, transforms, generator), box);
}

}  // namespace

at::Tensor apply_patch(const at::Tensor& images, const AdversarialPatch& patch,
                       const at::Tensor& theta) {
  return ops::patch_composite(images, patch.pixels.to(images.options()),
                              patch.mask.to(images.options()), theta.to(images.options()),
                              ops::Blend::Replace);
}

PatchTraining train_patch(Model& model, const Dataset& data, const PatchOptions& options,
                          const EOTCallback& callback) {
  constexpr std::string_view where = "train_patch";
  BULWARK_CHECK(options.steps() >= 1, "train_patch: steps must be >= 1, got {}", options.steps());
  BULWARK_CHECK(options.batch_size() >= 1, "train_patch: batch_size must be >= 1, got {}",
                options.batch_size());
  BULWARK_CHECK(options.learning_rate() > 0 && std::isfinite(options.learning_rate()),
                "train_patch: learning_rate must be finite and > 0, got {}",
                options.learning_rate());
  options.placement().validate(where);
  options.transforms().validate(where);
  detail::check_eot_inputs(where, model, data, options.target(), options.box());
  const auto train = detail::without_target_class(where, data, options.target());
  const auto& images = train.images;
  auto patch = make_patch(options.shape(), options.size(), images.size(1), images.size(2),
                          images.size(3));
  // Fails early, with the patch's size in the message, if it cannot be placed.
  auto unused_generator = make_generator(0);
  static_cast<void>(sample_placements(0, images.size(2), images.size(3), patch.mask.size(0),
                                      patch.mask.size(1), patch.pixel_scale, options.placement(),
                                      unused_generator, at::TensorOptions()));
  patch.target = options.target();
  const auto& box = options.box();
  auto init_generator = make_generator(options.seed());
  auto pixels = (at::rand(patch.pixels.sizes(), init_generator,
                          at::TensorOptions().dtype(images.scalar_type())) *
                     (box.upper - box.lower) +
                 box.lower)
                    .to(images.device())
                    .requires_grad_(true);
  const auto mask = patch.mask.to(images.options());
  auto loop = detail::run_eot_loop(
      model, train, pixels, options.target(), options.steps(), options.batch_size(),
      options.learning_rate(), options.seed(),
      [&](const at::Tensor& x, const at::Tensor&, at::Generator& generator) {
        return model.forward(patched_views(x, pixels, mask, patch.pixel_scale,
                                           options.placement(), options.transforms(), box,
                                           generator));
      },
      /*penalty=*/{}, [&](at::Tensor& p) { p.clamp_(box.lower, box.upper); }, callback);
  patch.pixels = pixels.detach();
  patch.mask = mask;
  return {std::move(patch), std::move(loop.losses), std::move(loop.success_rates),
          loop.gradient_evaluations, loop.seconds};
}

EOTEvaluation evaluate_patch(Model& model, const Dataset& data, const AdversarialPatch& patch,
                             const EOTEvaluationOptions& options) {
  constexpr std::string_view where = "evaluate_patch";
  detail::check_eot_inputs(where, model, data, patch.target, options.box());
  check_patch(where, patch, data.images, options.box());
  const auto pixels = patch.pixels.to(data.images.options());
  const auto mask = patch.mask.to(data.images.options());
  const auto& box = options.box();
  return detail::evaluate_views(
      model, data, patch.target, options,
      [&](const at::Tensor& x, bool baseline, at::Generator& generator) {
        const auto content =
            baseline ? (at::rand(pixels.sizes(), generator,
                                 at::TensorOptions().dtype(pixels.scalar_type())) *
                            (box.upper - box.lower) +
                        box.lower)
                           .to(pixels.device())
                     : pixels;
        return patched_views(x, content, mask, patch.pixel_scale, options.placement(),
                             options.transforms(), box, generator);
      });
}

}  // namespace bulwark
