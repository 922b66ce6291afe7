#include "bulwark/ops/project_step.h"

#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>

#include "bulwark/config.h"
#include "core/check.h"
#include "ops/project_step_args.h"

namespace bulwark::ops {
namespace detail {

void check_project_step_args(const at::Tensor& x_adv, const at::Tensor& grad,
                             const at::Tensor& x_orig, double step_size, double eps, int64_t norm,
                             double lower, double upper) {
  constexpr std::string_view where = "project_step";
  bulwark::detail::check_float_tensor(where, "x_orig", x_orig);
  bulwark::detail::check_same_layout(where, "x_adv", x_adv, "x_orig", x_orig);
  bulwark::detail::check_same_layout(where, "grad", grad, "x_orig", x_orig);
  BULWARK_CHECK(step_size >= 0 && std::isfinite(step_size),
                "project_step: step_size must be finite and >= 0, got {}", step_size);
  BULWARK_CHECK(eps >= 0, "project_step: eps must be >= 0 (or +inf), got {}", eps);
  BULWARK_CHECK(norm == static_cast<int64_t>(Norm::Linf) || norm == static_cast<int64_t>(Norm::L2),
                "project_step: norm must be 0 (linf) or 1 (l2), got {}", norm);
  BULWARK_CHECK(std::isfinite(lower) && std::isfinite(upper) && lower < upper,
                "project_step: the input box needs finite lower < upper, got [{}, {}]", lower,
                upper);
}

}  // namespace detail

at::Tensor project_step_reference(const at::Tensor& x_adv, const at::Tensor& grad,
                                  const at::Tensor& x_orig, double step_size, double eps,
                                  Norm norm, double lower, double upper) {
  detail::check_project_step_args(x_adv, grad, x_orig, step_size, eps, static_cast<int64_t>(norm),
                                  lower, upper);
  const auto direction = steepest_ascent_direction(grad, norm);
  const auto delta = project_to_ball(x_adv + direction * step_size - x_orig, norm, eps);
  return (x_orig + delta).clamp(lower, upper);
}

at::Tensor project_step(const at::Tensor& x_adv, const at::Tensor& grad, const at::Tensor& x_orig,
                        double step_size, double eps, Norm norm, double lower, double upper) {
  detail::check_project_step_args(x_adv, grad, x_orig, step_size, eps, static_cast<int64_t>(norm),
                                  lower, upper);
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("bulwark::project_step", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                            double, int64_t, double, double)>();
  return op.call(x_adv, grad, x_orig, step_size, eps, static_cast<int64_t>(norm), lower, upper);
}

namespace {

at::Tensor reference_kernel(const at::Tensor& x_adv, const at::Tensor& grad,
                            const at::Tensor& x_orig, double step_size, double eps, int64_t norm,
                            double lower, double upper) {
  return project_step_reference(x_adv, grad, x_orig, step_size, eps, static_cast<Norm>(norm),
                                lower, upper);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(bulwark, m) {
  m.def(
      "project_step(Tensor x_adv, Tensor grad, Tensor x_orig, float step_size, float eps, "
      "int norm, float lower, float upper) -> Tensor");
}

// Any backend without a kernel of its own runs the reference.
TORCH_LIBRARY_IMPL(bulwark, CompositeExplicitAutograd, m) {
  m.impl("project_step", &reference_kernel);
}

#if !BULWARK_WITH_CUDA
namespace {
at::Tensor cuda_fallback(const at::Tensor& x_adv, const at::Tensor& grad, const at::Tensor& x_orig,
                         double step_size, double eps, int64_t norm, double lower, double upper) {
  TORCH_WARN_ONCE(
      "bulwark was built without CUDA kernels; project_step runs its composite reference on CUDA "
      "tensors");
  return reference_kernel(x_adv, grad, x_orig, step_size, eps, norm, lower, upper);
}
}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("project_step", &cuda_fallback); }
#endif

}  // namespace bulwark::ops
