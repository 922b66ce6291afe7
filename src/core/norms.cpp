#include "bulwark/core/norms.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/check.h"

namespace bulwark {

std::string to_string(Norm norm) { return norm == Norm::Linf ? "linf" : "l2"; }

Norm parse_norm(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "linf" || lower == "inf" || lower == "l-inf" || lower == "l_inf") return Norm::Linf;
  if (lower == "l2" || lower == "2") return Norm::L2;
  throw Error(fmt::format("parse_norm: expected 'linf' or 'l2', got '{}'", text));
}

at::Tensor per_sample_norm(const at::Tensor& x, Norm norm) {
  detail::check_float_tensor("per_sample_norm", "x", x);
  const auto flat = x.dim() == 1 ? x.unsqueeze(1) : x.flatten(1);
  if (flat.size(1) == 0) return at::zeros({x.size(0)}, x.options());
  return norm == Norm::Linf ? flat.abs().amax(1) : flat.norm(2, 1);
}

at::Tensor project_to_ball(const at::Tensor& delta, Norm norm, double eps) {
  detail::check_float_tensor("project_to_ball", "delta", delta);
  BULWARK_CHECK(eps >= 0, "project_to_ball: eps must be >= 0, got {}", eps);
  if (std::isinf(eps)) return delta.clone();
  if (norm == Norm::Linf) return delta.clamp(-eps, eps);
  const auto norms = per_sample_norm(delta, Norm::L2);
  // Scale down only the samples whose perturbation is longer than eps.
  auto factor = (eps / norms.clamp_min(1e-12)).clamp_max(1.0);
  std::vector<int64_t> shape(delta.dim(), 1);
  shape[0] = delta.size(0);
  return delta * factor.reshape(shape);
}

at::Tensor steepest_ascent_direction(const at::Tensor& grad, Norm norm) {
  detail::check_float_tensor("steepest_ascent_direction", "grad", grad);
  if (norm == Norm::Linf) return grad.sign();
  const auto norms = per_sample_norm(grad, Norm::L2);
  std::vector<int64_t> shape(grad.dim(), 1);
  shape[0] = grad.size(0);
  return grad / norms.clamp_min(1e-12).reshape(shape);
}

}  // namespace bulwark
