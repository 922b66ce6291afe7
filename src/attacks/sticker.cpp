#include "bulwark/attacks/sticker.h"

#include <torch/torch.h>

#include <cmath>

#include "attacks/eot_common.h"
#include "bulwark/ops/patch_composite.h"
#include "core/check.h"

namespace bulwark {

StickerOptions::StickerOptions(at::Tensor mask) : mask_(std::move(mask)) {}

namespace {

void check_mask(std::string_view where, const at::Tensor& mask, const at::Tensor& images) {
  detail::check_float_tensor(where, "mask", mask);
  BULWARK_CHECK(mask.dim() == 2 && images.dim() == 4 && mask.size(0) == images.size(2) &&
                    mask.size(1) == images.size(3),
                "{}: the mask must be [H, W] = [{}, {}] like the images, got {}", where,
                images.dim() == 4 ? images.size(2) : -1, images.dim() == 4 ? images.size(3) : -1,
                detail::shape_string(mask));
  BULWARK_CHECK(((mask >= 0) & (mask <= 1)).all().item<bool>(),
                "{}: mask values must lie in [0, 1] (and not be NaN)", where);
  BULWARK_CHECK(mask.gt(0).any().item<bool>(),
                "{}: the mask is empty (all zero): the sticker has nowhere to go", where);
}

void check_sticker(std::string_view where, const Sticker& sticker, const at::Tensor& images) {
  check_mask(where, sticker.mask, images);
  detail::check_float_tensor(where, "sticker.perturbation", sticker.perturbation);
  BULWARK_CHECK(sticker.perturbation.dim() == 3 &&
                    sticker.perturbation.sizes() == images.sizes().slice(1),
                "{}: the perturbation must be [C, H, W] like one image {}, got {}", where,
                detail::shape_string(images), detail::shape_string(sticker.perturbation));
  detail::check_finite(where, "sticker.perturbation", sticker.perturbation);
}

// Sticker views for training: the clean images under the draw's alignment with the masked
// perturbation carried along (RP2's x_i + T_i(M ⊙ δ)), clipped, then the light changes.
at::Tensor sticker_views(const at::Tensor& x, const at::Tensor& delta, const at::Tensor& mask,
                         const TransformOptions& transforms, const InputBox& box,
                         at::Generator& generator) {
  const auto draw = sample_transforms(x, transforms, generator);
  const auto warped = apply_geometric(x, draw);
  const auto theta = draw.theta.defined()
                         ? draw.theta
                         : torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 0.0}, x.options())
                               .reshape({1, 2, 3})
                               .expand({x.size(0), 2, 3})
                               .contiguous();
  const auto stickered = box.clamp(ops::patch_composite(warped, delta, mask, theta, ops::Blend::Add));
  return apply_photometric(stickered, draw, box);
}

}  // namespace

at::Tensor non_printability_score(const at::Tensor& colors, const at::Tensor& palette) {
  constexpr std::string_view where = "non_printability_score";
  detail::check_float_tensor(where, "colors", colors, 2);
  detail::check_float_tensor(where, "palette", palette, 2);
  BULWARK_CHECK(colors.dim() == 2 && palette.dim() == 2 && colors.size(1) == palette.size(1) &&
                    palette.size(0) >= 1,
                "{}: colors must be [M, C] and palette [P >= 1, C] with the same C, got {} and {}",
                where, detail::shape_string(colors), detail::shape_string(palette));
  if (colors.size(0) == 0) return at::zeros({}, colors.options());
  const auto distances =
      (colors.unsqueeze(1) - palette.to(colors.options()).unsqueeze(0)).square().sum(2).sqrt();
  return distances.prod(1).mean();
}

at::Tensor apply_sticker(const at::Tensor& images, const Sticker& sticker, const InputBox& box) {
  constexpr std::string_view where = "apply_sticker";
  detail::check_float_tensor(where, "images", images, 4);
  check_sticker(where, sticker, images);
  const auto mask = sticker.mask.to(images.options());
  const auto stickered = box.clamp(images + mask * sticker.perturbation.to(images.options()));
  return at::where(mask.gt(0).expand_as(images), stickered, images);
}

StickerTraining train_sticker(Model& model, const Dataset& data, const StickerOptions& options,
                              const EOTCallback& callback) {
  constexpr std::string_view where = "train_sticker";
  BULWARK_CHECK(options.steps() >= 1, "train_sticker: steps must be >= 1, got {}",
                options.steps());
  BULWARK_CHECK(options.batch_size() >= 1, "train_sticker: batch_size must be >= 1, got {}",
                options.batch_size());
  BULWARK_CHECK(options.learning_rate() > 0 && std::isfinite(options.learning_rate()),
                "train_sticker: learning_rate must be finite and > 0, got {}",
                options.learning_rate());
  BULWARK_CHECK(options.penalty() >= 0 && std::isfinite(options.penalty()),
                "train_sticker: penalty must be finite and >= 0, got {}", options.penalty());
  BULWARK_CHECK(options.printability_weight() >= 0 && std::isfinite(options.printability_weight()),
                "train_sticker: printability_weight must be finite and >= 0, got {}",
                options.printability_weight());
  options.transforms().validate(where);
  detail::check_eot_inputs(where, model, data, options.target(), options.box());
  check_mask(where, options.mask(), data.images);
  const auto& images = data.images;
  const auto& box = options.box();
  at::Tensor palette;
  if (options.palette().defined()) {
    detail::check_float_tensor(where, "palette", options.palette(), 2);
    BULWARK_CHECK(options.palette().dim() == 2 && options.palette().size(0) >= 1 &&
                      options.palette().size(1) == images.size(1),
                  "train_sticker: the palette must be [P >= 1, C = {}] (one printable colour per "
                  "row), got {}", images.size(1), detail::shape_string(options.palette()));
    box.check_contains(where, "palette", options.palette());
    palette = options.palette().to(images.options());
  }
  const auto train = detail::without_target_class(where, data, options.target());
  const auto mask = options.mask().to(images.options());
  const auto inside = mask.gt(0);
  auto delta = at::zeros(images.sizes().slice(1), images.options()).requires_grad_(true);
  const double range = box.upper - box.lower;
  detail::Penalty penalty = [&](const at::Tensor& d, const at::Tensor& x) {
    // The L2 norm, with a floor under the square root so its gradient at δ = 0 is finite.
    auto term = options.penalty() * (mask * d).square().sum().add(1e-12).sqrt();
    if (palette.defined() && options.printability_weight() > 0) {
      // The colours that would be printed: the stickered pixels inside the mask.
      const auto printed = box.clamp(x + mask * d).permute({0, 2, 3, 1});
      const auto colors = printed.index({inside.expand({x.size(0), -1, -1})});
      term = term + options.printability_weight() * non_printability_score(colors, palette);
    }
    return term;
  };
  auto loop = detail::run_eot_loop(
      model, train, delta, options.target(), options.steps(), options.batch_size(),
      options.learning_rate(), options.seed(),
      [&](const at::Tensor& x, const at::Tensor&, at::Generator& generator) {
        return model.forward(
            sticker_views(x, delta, mask, options.transforms(), box, generator));
      },
      penalty, [&](at::Tensor& d) { d.clamp_(-range, range); }, callback);
  Sticker sticker{(delta.detach() * inside).contiguous(), mask, options.target()};
  return {std::move(sticker), std::move(loop.losses), std::move(loop.success_rates),
          loop.gradient_evaluations, loop.seconds};
}

EOTEvaluation evaluate_sticker(Model& model, const Dataset& data, const Sticker& sticker,
                               const EOTEvaluationOptions& options) {
  constexpr std::string_view where = "evaluate_sticker";
  detail::check_eot_inputs(where, model, data, sticker.target, options.box());
  check_sticker(where, sticker, data.images);
  const auto& box = options.box();
  const auto perturbation = sticker.perturbation.to(data.images.options());
  return detail::evaluate_views(
      model, data, sticker.target, options,
      [&](const at::Tensor& x, bool baseline, at::Generator& generator) {
        Sticker used{perturbation, sticker.mask, sticker.target};
        if (baseline) {
          const auto signs = at::rand(perturbation.sizes(), generator,
                                      at::TensorOptions().dtype(at::kFloat))
                                 .lt(0.5)
                                 .to(perturbation.options()) *
                             2 -
                             1;
          used.perturbation = perturbation.abs() * signs;
        }
        const auto stickered = apply_sticker(x, used, box);
        if (options.transforms().identity()) return stickered;
        return apply_transforms(stickered, sample_transforms(stickered, options.transforms(), generator),
                                box);
      });
}

}  // namespace bulwark
