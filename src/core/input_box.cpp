#include "bulwark/core/input_box.h"

#include <torch/torch.h>

#include <cmath>

#include "core/check.h"

namespace bulwark {

InputBox::InputBox(double lower, double upper) : lower(lower), upper(upper) {
  BULWARK_CHECK(std::isfinite(lower) && std::isfinite(upper) && lower < upper,
                "InputBox: need finite lower < upper, got [{}, {}]", lower, upper);
}

bool InputBox::contains(const at::Tensor& x) const {
  if (x.numel() == 0) return true;
  // NaN fails both comparisons, so a NaN input is never contained.
  return at::logical_and(x >= lower, x <= upper).all().item<bool>();
}

at::Tensor InputBox::clamp(const at::Tensor& x) const { return x.clamp(lower, upper); }

void InputBox::check_contains(std::string_view where, std::string_view name,
                              const at::Tensor& x) const {
  detail::check_float_tensor(where, name, x);
  if (contains(x)) return;
  detail::check_finite(where, name, x);
  BULWARK_CHECK(false, "{}: {} must lie in the input box [{}, {}], got values in [{}, {}]", where,
                name, lower, upper, x.min().item<double>(), x.max().item<double>());
}

}  // namespace bulwark
