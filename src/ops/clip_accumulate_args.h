#pragma once
// Validation shared by the reference and every kernel of bulwark::clip_accumulate.

#include <ATen/core/Tensor.h>

namespace bulwark::ops::detail {

void check_clip_accumulate_args(const at::Tensor& grads, const at::Tensor& norms,
                                double max_norm);

}  // namespace bulwark::ops::detail
