// Per-class splitting, covariance spectra and the median-absolute-deviation anomaly index.
#include "poisoning/class_statistics.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace bulwark::detail {

std::vector<ClassSamples> split_by_class(const at::Tensor& features, const at::Tensor& labels,
                                         int64_t num_classes, const char* what) {
  BULWARK_CHECK(features.defined() && labels.defined() && features.dim() >= 1 &&
                    labels.dim() == 1 && features.size(0) == labels.size(0),
                "{}: representations [N, ...] and labels [N] must agree in length", what);
  BULWARK_CHECK(features.size(0) > 0, "{}: no samples", what);
  BULWARK_CHECK(num_classes >= 1, "{}: num_classes must be >= 1, got {}", what, num_classes);
  const auto y = labels.cpu().to(torch::kLong);
  BULWARK_CHECK(y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < num_classes,
                "{}: labels must be in [0, {})", what, num_classes);
  const auto flat = features.detach().flatten(1).to(torch::kDouble);
  BULWARK_CHECK(flat.isfinite().all().item<bool>(), "{}: the representations are not finite",
                what);
  std::vector<ClassSamples> out;
  for (int64_t c = 0; c < num_classes; ++c) {
    const auto idx = y.eq(c).nonzero().squeeze(1);
    if (idx.numel() == 0) continue;
    BULWARK_CHECK(idx.numel() >= 2, "{}: class {} has 1 sample; at least 2 are needed", what, c);
    out.push_back({c, idx, flat.index_select(0, idx.to(flat.device()))});
  }
  return out;
}

ClassSpectrum spectrum(const at::Tensor& features, int64_t k) {
  ClassSpectrum s;
  s.centred = features - features.mean(0, /*keepdim=*/true);
  const auto n = features.size(0), d = features.size(1);
  const double scale = 1.0 / static_cast<double>(std::max<int64_t>(1, n - 1));
  // The d × d covariance, or the n × n Gram matrix when there are fewer samples than
  // dimensions (the same nonzero eigenvalues; eigenvectors mapped back through the data).
  const bool gram = n < d;
  const auto matrix = gram ? s.centred.matmul(s.centred.t()) * scale
                           : s.centred.t().matmul(s.centred) * scale;
  // Ascending eigenvalues of the symmetric matrix; the last k, reversed.
  const auto [values, vectors] = torch::linalg_eigh(matrix);
  const auto m = values.size(0);
  k = std::min(k, m);
  const auto order = torch::arange(m - 1, m - 1 - k, -1, torch::kLong).to(values.device());
  const auto top = values.index_select(0, order).clamp_min(0);
  for (int64_t i = 0; i < k; ++i) s.eigenvalues.push_back(top[i].item<double>());
  auto chosen = vectors.index_select(1, order);
  if (gram) {
    chosen = s.centred.t().matmul(chosen);
    chosen = chosen / chosen.norm(2, 0, /*keepdim=*/true).clamp_min(1e-300);
  }
  s.eigenvectors = chosen;
  return s;
}

at::Tensor sorted_indices(const std::vector<at::Tensor>& parts) {
  if (parts.empty()) return torch::empty({0}, torch::kLong);
  return std::get<0>(torch::cat(parts).sort());
}

std::vector<double> anomaly_indices(const std::vector<double>& values) {
  const auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const auto m = v.size() / 2;
    return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
  };
  const double median = median_of(values);
  std::vector<double> deviations;
  for (const double v : values) deviations.push_back(std::abs(v - median));
  const double mad = 1.4826 * median_of(deviations);
  std::vector<double> out;
  for (const double v : values) {
    if (mad > 0) {
      out.push_back((v - median) / mad);
    } else {
      out.push_back(v > median ? std::numeric_limits<double>::infinity() : 0.0);
    }
  }
  return out;
}

}  // namespace bulwark::detail
