#include "bulwark/ops/patch_composite.h"

#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/torch.h>

#include "bulwark/config.h"
#include "core/check.h"
#include "ops/patch_composite_args.h"

namespace bulwark::ops {
namespace detail {
namespace {

constexpr std::string_view kWhere = "patch_composite";

void check_blend(int64_t blend) {
  BULWARK_CHECK(blend == static_cast<int64_t>(Blend::Replace) ||
                    blend == static_cast<int64_t>(Blend::Add),
                "patch_composite: blend must be 0 (replace) or 1 (add), got {}", blend);
}

void check_float_or_double(std::string_view name, const at::Tensor& t) {
  BULWARK_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
                "patch_composite: {} must be float or double, got {}", name,
                bulwark::detail::dtype_string(t));
}

// mask [h, w] in [0, 1] and theta [batch, 2, 3], finite, like `reference` in dtype and device.
void check_mask_and_theta(const at::Tensor& mask, const at::Tensor& theta,
                          const at::Tensor& reference, std::string_view reference_name) {
  const int64_t batch = reference.size(0);
  bulwark::detail::check_float_tensor(kWhere, "mask", mask);
  bulwark::detail::check_float_tensor(kWhere, "theta", theta);
  BULWARK_CHECK(mask.dim() == 2 && mask.size(0) > 0 && mask.size(1) > 0,
                "patch_composite: mask must be [h, w] with h, w >= 1, got shape {}",
                bulwark::detail::shape_string(mask));
  BULWARK_CHECK(theta.dim() == 3 && theta.size(0) == batch && theta.size(1) == 2 &&
                    theta.size(2) == 3,
                "patch_composite: theta must be [{}, 2, 3] (one affine map per sample), got {}",
                batch, bulwark::detail::shape_string(theta));
  for (const auto& [name, t] : {std::pair<std::string_view, const at::Tensor&>{"mask", mask},
                                {"theta", theta}}) {
    BULWARK_CHECK(t.scalar_type() == reference.scalar_type() && t.device() == reference.device(),
                  "patch_composite: {} is {} on {} but {} is {} on {}", name,
                  bulwark::detail::dtype_string(t), t.device().str(), reference_name,
                  bulwark::detail::dtype_string(reference), reference.device().str());
  }
  bulwark::detail::check_finite(kWhere, "theta", theta);
  if (mask.numel() > 0) {
    BULWARK_CHECK(((mask >= 0) & (mask <= 1)).all().item<bool>(),
                  "patch_composite: mask values must lie in [0, 1] (and not be NaN)");
  }
}

}  // namespace

void check_patch_composite_args(const at::Tensor& images, const at::Tensor& patch,
                                const at::Tensor& mask, const at::Tensor& theta, int64_t blend) {
  check_blend(blend);
  bulwark::detail::check_float_tensor(kWhere, "images", images);
  check_float_or_double("images", images);
  BULWARK_CHECK(images.dim() == 4, "patch_composite: images must be [N, C, H, W], got shape {}",
                bulwark::detail::shape_string(images));
  check_mask_and_theta(mask, theta, images, "images");
  bulwark::detail::check_float_tensor(kWhere, "patch", patch);
  const bool shared = patch.dim() == 3;
  BULWARK_CHECK(
      (shared || patch.dim() == 4) &&
          patch.size(shared ? 0 : 1) == images.size(1) &&
          patch.size(shared ? 1 : 2) == mask.size(0) && patch.size(shared ? 2 : 3) == mask.size(1) &&
          (shared || patch.size(0) == images.size(0)),
      "patch_composite: patch must be [C, h, w] or [N, C, h, w] with C = {} (the images' "
      "channels), [h, w] = {} (the mask's shape) and N = {}, got {}",
      images.size(1), bulwark::detail::shape_string(mask), images.size(0),
      bulwark::detail::shape_string(patch));
  BULWARK_CHECK(patch.scalar_type() == images.scalar_type() && patch.device() == images.device(),
                "patch_composite: patch is {} on {} but images are {} on {}",
                bulwark::detail::dtype_string(patch), patch.device().str(),
                bulwark::detail::dtype_string(images), images.device().str());
}

void check_patch_composite_backward_args(const at::Tensor& grad_output, const at::Tensor& mask,
                                         const at::Tensor& theta, int64_t blend) {
  check_blend(blend);
  bulwark::detail::check_float_tensor(kWhere, "grad_output", grad_output);
  check_float_or_double("grad_output", grad_output);
  BULWARK_CHECK(grad_output.dim() == 4,
                "patch_composite_backward: grad_output must be [N, C, H, W], got shape {}",
                bulwark::detail::shape_string(grad_output));
  check_mask_and_theta(mask, theta, grad_output, "grad_output");
}

}  // namespace detail

namespace {

// affine_grid for an [N, C, H, W] output, align_corners = false.
at::Tensor sampling_grid(const at::Tensor& theta, const at::IntArrayRef output_size) {
  return at::affine_grid_generator(theta, output_size, /*align_corners=*/false);
}

constexpr int64_t kBilinear = 0;
constexpr int64_t kZeros = 0;

}  // namespace

at::Tensor patch_composite_reference(const at::Tensor& images, const at::Tensor& patch,
                                     const at::Tensor& mask, const at::Tensor& theta,
                                     Blend blend) {
  detail::check_patch_composite_args(images, patch, mask, theta, static_cast<int64_t>(blend));
  const int64_t n = images.size(0);
  const int64_t h = mask.size(0);
  const int64_t w = mask.size(1);
  const auto grid = sampling_grid(theta, images.sizes());
  const auto premultiplied = (patch * mask).expand({n, images.size(1), h, w});
  const auto q = at::grid_sampler(premultiplied, grid, kBilinear, kZeros, false);
  if (blend == Blend::Add) return images + q;
  const auto alpha = at::grid_sampler(mask.expand({n, 1, h, w}), grid, kBilinear, kZeros, false);
  return images * (1 - alpha) + q;
}

std::tuple<at::Tensor, at::Tensor> patch_composite_backward_reference(
    const at::Tensor& grad_output, const at::Tensor& mask, const at::Tensor& theta, Blend blend,
    bool per_sample_patch) {
  detail::check_patch_composite_backward_args(grad_output, mask, theta,
                                              static_cast<int64_t>(blend));
  const int64_t n = grad_output.size(0);
  const int64_t h = mask.size(0);
  const int64_t w = mask.size(1);
  const auto grid = sampling_grid(theta, grad_output.sizes());
  // The bilinear sampler is linear in its input, so its input values do not enter the gradient.
  const auto input_like = at::zeros({n, grad_output.size(1), h, w}, grad_output.options());
  const auto grad_premultiplied = std::get<0>(at::grid_sampler_2d_backward(
      grad_output, input_like, grid, kBilinear, kZeros, false, {true, false}));
  auto grad_patch = grad_premultiplied * mask;
  if (!per_sample_patch) grad_patch = grad_patch.sum(0);
  at::Tensor grad_images;
  if (blend == Blend::Add) {
    grad_images = grad_output.clone(at::MemoryFormat::Contiguous);
  } else {
    const auto alpha = at::grid_sampler(mask.expand({n, 1, h, w}), grid, kBilinear, kZeros, false);
    grad_images = grad_output * (1 - alpha);
  }
  return {grad_images, grad_patch};
}

namespace {

const auto& forward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("bulwark::patch_composite", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&,
                                               const at::Tensor&, const at::Tensor&, int64_t)>();
  return op;
}

const auto& backward_op() {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("bulwark::patch_composite_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                    const at::Tensor&, int64_t, bool)>();
  return op;
}

// Autograd for the op: the backward is an op of its own, so each device runs its own kernel.
class PatchCompositeFunction : public torch::autograd::Function<PatchCompositeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& images,
                            const at::Tensor& patch, const at::Tensor& mask,
                            const at::Tensor& theta, int64_t blend) {
    BULWARK_CHECK(!mask.requires_grad() && !theta.requires_grad(),
                  "patch_composite: gradients flow to images and patch only; mask and theta "
                  "must not require grad (detach them)");
    ctx->save_for_backward({mask, theta});
    ctx->saved_data["blend"] = blend;
    ctx->saved_data["per_sample"] = patch.dim() == 4;
    at::AutoDispatchBelowADInplaceOrView guard;
    return forward_op().call(images, patch, mask, theta, blend);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [grad_images, grad_patch] =
        backward_op().call(grads[0].contiguous(), saved[0], saved[1],
                           ctx->saved_data["blend"].toInt(), ctx->saved_data["per_sample"].toBool());
    return {grad_images, grad_patch, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor autograd_kernel(const at::Tensor& images, const at::Tensor& patch,
                           const at::Tensor& mask, const at::Tensor& theta, int64_t blend) {
  return PatchCompositeFunction::apply(images, patch, mask, theta, blend);
}

at::Tensor reference_kernel(const at::Tensor& images, const at::Tensor& patch,
                            const at::Tensor& mask, const at::Tensor& theta, int64_t blend) {
  return patch_composite_reference(images, patch, mask, theta, static_cast<Blend>(blend));
}

std::tuple<at::Tensor, at::Tensor> backward_reference_kernel(const at::Tensor& grad_output,
                                                             const at::Tensor& mask,
                                                             const at::Tensor& theta,
                                                             int64_t blend,
                                                             bool per_sample_patch) {
  return patch_composite_backward_reference(grad_output, mask, theta, static_cast<Blend>(blend),
                                            per_sample_patch);
}

}  // namespace

at::Tensor patch_composite(const at::Tensor& images, const at::Tensor& patch,
                           const at::Tensor& mask, const at::Tensor& theta, Blend blend) {
  detail::check_patch_composite_args(images, patch, mask, theta, static_cast<int64_t>(blend));
  return forward_op().call(images, patch, mask, theta, static_cast<int64_t>(blend));
}

std::tuple<at::Tensor, at::Tensor> patch_composite_backward(const at::Tensor& grad_output,
                                                            const at::Tensor& mask,
                                                            const at::Tensor& theta, Blend blend,
                                                            bool per_sample_patch) {
  detail::check_patch_composite_backward_args(grad_output, mask, theta,
                                              static_cast<int64_t>(blend));
  return backward_op().call(grad_output, mask, theta, static_cast<int64_t>(blend),
                            per_sample_patch);
}

TORCH_LIBRARY_FRAGMENT(bulwark, m) {
  m.def("patch_composite(Tensor images, Tensor patch, Tensor mask, Tensor theta, int blend) -> "
        "Tensor");
  m.def("patch_composite_backward(Tensor grad_output, Tensor mask, Tensor theta, int blend, "
        "bool per_sample_patch) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(bulwark, Autograd, m) { m.impl("patch_composite", &autograd_kernel); }

// Any backend without a kernel of its own runs the reference.
TORCH_LIBRARY_IMPL(bulwark, CompositeExplicitAutograd, m) {
  m.impl("patch_composite", &reference_kernel);
  m.impl("patch_composite_backward", &backward_reference_kernel);
}

#if !BULWARK_WITH_CUDA
namespace {
at::Tensor cuda_fallback(const at::Tensor& images, const at::Tensor& patch, const at::Tensor& mask,
                         const at::Tensor& theta, int64_t blend) {
  TORCH_WARN_ONCE(
      "bulwark was built without CUDA kernels; patch_composite runs its composite reference on "
      "CUDA tensors");
  return reference_kernel(images, patch, mask, theta, blend);
}
}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) {
  m.impl("patch_composite", &cuda_fallback);
  m.impl("patch_composite_backward", &backward_reference_kernel);
}
#endif

}  // namespace bulwark::ops
