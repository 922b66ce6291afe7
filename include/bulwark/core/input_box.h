#pragma once
/// @file
/// The valid range of a model's inputs.

#include <ATen/core/Tensor.h>

#include <string_view>

namespace bulwark {

/// The box [lower, upper] every input coordinate must lie in (default [0, 1], images scaled to
/// unit range). Attacks keep their results inside it exactly; normalization belongs to the
/// model (see `Normalize`), so ε is measured in this space.
struct InputBox {
  double lower = 0.0;
  double upper = 1.0;

  InputBox() = default;
  /// @throws Error unless lower and upper are finite and lower < upper.
  InputBox(double lower, double upper);

  /// True when every element of `x` lies in [lower, upper] (and none is NaN).
  bool contains(const at::Tensor& x) const;
  /// `x` clamped into the box.
  at::Tensor clamp(const at::Tensor& x) const;
  /// @throws Error naming `where` and `name` when `x` has an element outside the box or a NaN.
  void check_contains(std::string_view where, std::string_view name, const at::Tensor& x) const;
};

}  // namespace bulwark
