#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "core/check.h"
#include "core/torch_errors.h"

namespace bulwark::detail {

std::string torch_error_reason(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    return c10_error->what_without_backtrace();
  }
  std::string reason = e.what();
  const auto first = reason.find_first_not_of(" \n");
  if (first == std::string::npos) return "unknown error";
  reason.erase(0, first);
  return reason.substr(0, reason.find('\n'));
}

std::string shape_string(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  return fmt::format("[{}]", fmt::join(t.sizes(), ", "));
}

std::string dtype_string(const at::Tensor& t) {
  return t.defined() ? std::string(c10::toString(t.scalar_type())) : "undefined";
}

void check_float_tensor(std::string_view where, std::string_view name, const at::Tensor& t,
                        int64_t min_dim) {
  BULWARK_CHECK(t.defined(), "{}: {} is an undefined tensor", where, name);
  BULWARK_CHECK(at::isFloatingType(t.scalar_type()),
                "{}: {} must be a floating-point tensor, got dtype {}", where, name,
                dtype_string(t));
  BULWARK_CHECK(t.dim() >= min_dim, "{}: {} must have at least {} dimension(s), got shape {}",
                where, name, min_dim, shape_string(t));
}

void check_finite(std::string_view where, std::string_view name, const at::Tensor& t) {
  if (t.numel() == 0) return;
  BULWARK_CHECK(at::isfinite(t).all().item<bool>(), "{}: {} contains NaN or infinite values",
                where, name);
}

void check_same_layout(std::string_view where, std::string_view name, const at::Tensor& t,
                       std::string_view reference_name, const at::Tensor& reference) {
  BULWARK_CHECK(t.defined(), "{}: {} is an undefined tensor", where, name);
  BULWARK_CHECK(t.sizes() == reference.sizes(), "{}: {} has shape {} but {} has shape {}", where,
                name, shape_string(t), reference_name, shape_string(reference));
  BULWARK_CHECK(t.scalar_type() == reference.scalar_type(),
                "{}: {} has dtype {} but {} has dtype {}", where, name, dtype_string(t),
                reference_name, dtype_string(reference));
  BULWARK_CHECK(t.device() == reference.device(), "{}: {} is on {} but {} is on {}", where, name,
                t.device().str(), reference_name, reference.device().str());
}

void check_labels(std::string_view where, std::string_view name, const at::Tensor& labels,
                  int64_t batch, int64_t num_classes) {
  BULWARK_CHECK(labels.defined(), "{}: {} is an undefined tensor", where, name);
  BULWARK_CHECK(!at::isFloatingType(labels.scalar_type()) && labels.scalar_type() != at::kBool,
                "{}: {} must hold integer class indices, got dtype {}", where, name,
                dtype_string(labels));
  BULWARK_CHECK(labels.dim() == 1 && labels.size(0) == batch,
                "{}: {} must have shape [{}] (one label per input), got {}", where, name, batch,
                shape_string(labels));
  if (labels.numel() == 0) return;
  const auto lo = labels.min().item<int64_t>();
  const auto hi = labels.max().item<int64_t>();
  BULWARK_CHECK(lo >= 0 && hi < num_classes,
                "{}: {} must lie in [0, {}) (the model has {} classes), got values in [{}, {}]",
                where, name, num_classes, num_classes, lo, hi);
}

}  // namespace bulwark::detail
