#include "bulwark/ops/clip_accumulate.h"

#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>

#include "bulwark/config.h"
#include "core/check.h"
#include "ops/clip_accumulate_args.h"

namespace bulwark::ops {
namespace detail {

void check_clip_accumulate_args(const at::Tensor& grads, const at::Tensor& norms,
                                double max_norm) {
  BULWARK_CHECK(grads.defined() && grads.dim() == 2,
                "clip_accumulate: grads must be [N, D], got {}",
                grads.defined() ? bulwark::detail::shape_string(grads) : "an undefined tensor");
  BULWARK_CHECK(grads.scalar_type() == at::kFloat || grads.scalar_type() == at::kDouble,
                "clip_accumulate: grads must be float or double, got {}",
                bulwark::detail::dtype_string(grads));
  BULWARK_CHECK(std::isfinite(max_norm) && max_norm > 0,
                "clip_accumulate: max_norm must be a positive number, got {}", max_norm);
  if (norms.defined()) {
    BULWARK_CHECK(norms.dim() == 1 && norms.size(0) == grads.size(0),
                  "clip_accumulate: norms must be [{}] (one per row of grads), got {}",
                  grads.size(0), bulwark::detail::shape_string(norms));
    BULWARK_CHECK(norms.scalar_type() == grads.scalar_type() && norms.device() == grads.device(),
                  "clip_accumulate: norms must have grads' dtype and device ({} on {}), got {} "
                  "on {}",
                  bulwark::detail::dtype_string(grads), grads.device().str(),
                  bulwark::detail::dtype_string(norms), norms.device().str());
  }
}

}  // namespace detail

std::tuple<at::Tensor, at::Tensor> clip_accumulate_reference(const at::Tensor& grads,
                                                             const at::Tensor& norms,
                                                             double max_norm) {
  detail::check_clip_accumulate_args(grads, norms, max_norm);
  const auto used = norms.defined() ? norms : grads.norm(2, {1});
  const auto factors = (max_norm / (used + kClipStabilizer)).clamp_max(1.0);
  return {(grads * factors.unsqueeze(1)).sum(0), used};
}

namespace {

std::tuple<at::Tensor, at::Tensor> dispatch(const at::Tensor& grads,
                                            const std::optional<at::Tensor>& norms,
                                            double max_norm) {
  return clip_accumulate_reference(grads, norms.value_or(at::Tensor()), max_norm);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> clip_accumulate(const at::Tensor& grads,
                                                   const at::Tensor& norms, double max_norm) {
  detail::check_clip_accumulate_args(grads, norms, max_norm);
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("bulwark::clip_accumulate", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&,
                                                    const std::optional<at::Tensor>&, double)>();
  return op.call(grads, norms.defined() ? std::optional<at::Tensor>(norms) : std::nullopt,
                 max_norm);
}

TORCH_LIBRARY_FRAGMENT(bulwark, m) {
  m.def("clip_accumulate(Tensor grads, Tensor? norms, float max_norm) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(bulwark, CompositeExplicitAutograd, m) {
  m.impl("clip_accumulate", &dispatch);
}

#if !BULWARK_WITH_CUDA
namespace {
std::tuple<at::Tensor, at::Tensor> cuda_fallback(const at::Tensor& grads,
                                                 const std::optional<at::Tensor>& norms,
                                                 double max_norm) {
  TORCH_WARN_ONCE(
      "bulwark was built without CUDA kernels; clip_accumulate runs its composite reference on "
      "CUDA tensors");
  return dispatch(grads, norms, max_norm);
}
}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("clip_accumulate", &cuda_fallback); }
#endif

}  // namespace bulwark::ops
