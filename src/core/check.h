#pragma once
// Private helpers for input validation. Every message names the function and argument, what
// was expected and what came.

#include <ATen/core/Tensor.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <string_view>

#include "bulwark/core/error.h"

/// Throws bulwark::Error with an fmt-formatted message unless `cond` holds.
#define BULWARK_CHECK(cond, ...)                                   \
  do {                                                             \
    if (!(cond)) [[unlikely]] {                                    \
      throw ::bulwark::Error(::fmt::format(__VA_ARGS__));          \
    }                                                              \
  } while (0)

namespace bulwark::detail {

/// "[2, 3, 28, 28]".
std::string shape_string(const at::Tensor& t);
/// "float", "double", ...
std::string dtype_string(const at::Tensor& t);

/// Defined, floating point, at least `min_dim` dimensions.
void check_float_tensor(std::string_view where, std::string_view name, const at::Tensor& t,
                        int64_t min_dim = 1);
/// No NaN or infinity.
void check_finite(std::string_view where, std::string_view name, const at::Tensor& t);
/// Same shape, dtype and device as `reference`.
void check_same_layout(std::string_view where, std::string_view name, const at::Tensor& t,
                       std::string_view reference_name, const at::Tensor& reference);
/// Labels: integer, 1-D, `batch` entries, each in [0, num_classes).
void check_labels(std::string_view where, std::string_view name, const at::Tensor& labels,
                  int64_t batch, int64_t num_classes);

}  // namespace bulwark::detail
