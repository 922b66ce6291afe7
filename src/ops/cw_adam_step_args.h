#pragma once
// Validation shared by the reference and every kernel of bulwark::cw_adam_step_.

#include <ATen/core/Tensor.h>

namespace bulwark::ops::detail {

void check_cw_adam_step_args(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                             const at::Tensor& v, double lr, double beta1, double beta2,
                             double eps, int64_t step);

}  // namespace bulwark::ops::detail
