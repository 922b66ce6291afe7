#pragma once
// Validation shared by the reference and every kernel of bulwark::project_step, so a call
// straight through the dispatcher is checked as well as one through the C++ entry point.

#include <ATen/core/Tensor.h>

namespace bulwark::ops::detail {

void check_project_step_args(const at::Tensor& x_adv, const at::Tensor& grad,
                             const at::Tensor& x_orig, double step_size, double eps, int64_t norm,
                             double lower, double upper);

}  // namespace bulwark::ops::detail
