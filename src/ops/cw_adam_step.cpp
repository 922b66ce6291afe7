#include "bulwark/ops/cw_adam_step.h"

#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>

#include "bulwark/config.h"
#include "core/check.h"
#include "ops/cw_adam_step_args.h"

namespace bulwark::ops {
namespace detail {

void check_cw_adam_step_args(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                             const at::Tensor& v, double lr, double beta1, double beta2,
                             double eps, int64_t step) {
  constexpr std::string_view where = "cw_adam_step_";
  bulwark::detail::check_float_tensor(where, "w", w, 0);
  bulwark::detail::check_same_layout(where, "grad", grad, "w", w);
  bulwark::detail::check_same_layout(where, "m", m, "w", w);
  bulwark::detail::check_same_layout(where, "v", v, "w", w);
  BULWARK_CHECK(w.is_contiguous() && m.is_contiguous() && v.is_contiguous(),
                "cw_adam_step_: w, m and v are updated in place and must be contiguous");
  BULWARK_CHECK(w.scalar_type() == at::kFloat || w.scalar_type() == at::kDouble,
                "cw_adam_step_: w must be float or double, got {}",
                bulwark::detail::dtype_string(w));
  BULWARK_CHECK(lr > 0 && std::isfinite(lr), "cw_adam_step_: lr must be finite and > 0, got {}",
                lr);
  BULWARK_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
                "cw_adam_step_: beta1 and beta2 must lie in [0, 1), got {} and {}", beta1, beta2);
  BULWARK_CHECK(eps > 0, "cw_adam_step_: eps must be > 0, got {}", eps);
  BULWARK_CHECK(step >= 1, "cw_adam_step_: step counts from 1, got {}", step);
}

}  // namespace detail

void cw_adam_step_reference_(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                             const at::Tensor& v, double lr, double beta1, double beta2,
                             double eps, int64_t step) {
  detail::check_cw_adam_step_args(w, grad, m, v, lr, beta1, beta2, eps, step);
  at::NoGradGuard no_grad;
  const double bias1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias2 = 1 - std::pow(beta2, static_cast<double>(step));
  const_cast<at::Tensor&>(m).mul_(beta1).add_(grad, 1 - beta1);
  const_cast<at::Tensor&>(v).mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  const auto denominator = (v / bias2).sqrt_().add_(eps);
  const_cast<at::Tensor&>(w).addcdiv_(m, denominator, -lr / bias1);
}

void cw_adam_step_(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                   const at::Tensor& v, double lr, double beta1, double beta2, double eps,
                   int64_t step) {
  detail::check_cw_adam_step_args(w, grad, m, v, lr, beta1, beta2, eps, step);
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("bulwark::cw_adam_step_", "")
                             .typed<void(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, double, double, double, double,
                                         int64_t)>();
  op.call(w, grad, m, v, lr, beta1, beta2, eps, step);
}

TORCH_LIBRARY_FRAGMENT(bulwark, m) {
  m.def(
      "cw_adam_step_(Tensor(a!) w, Tensor grad, Tensor(b!) m, Tensor(c!) v, float lr, "
      "float beta1, float beta2, float eps, int step) -> ()");
}

TORCH_LIBRARY_IMPL(bulwark, CompositeExplicitAutograd, m) {
  m.impl("cw_adam_step_", &cw_adam_step_reference_);
}

#if !BULWARK_WITH_CUDA
namespace {
void cuda_fallback(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                   const at::Tensor& v, double lr, double beta1, double beta2, double eps,
                   int64_t step) {
  TORCH_WARN_ONCE(
      "bulwark was built without CUDA kernels; cw_adam_step_ runs its composite reference on "
      "CUDA tensors");
  cw_adam_step_reference_(w, grad, m, v, lr, beta1, beta2, eps, step);
}
}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("cw_adam_step_", &cuda_fallback); }
#endif

}  // namespace bulwark::ops
