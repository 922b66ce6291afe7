// Spectral signatures with a per-class outlier test.
#include "bulwark/poisoning/spectral_signatures.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "poisoning/class_statistics.h"

namespace bulwark {

InspectionReport spectral_signatures(const at::Tensor& representations, const at::Tensor& labels,
                                     int64_t num_classes, const SpectralSignatureOptions& options) {
  constexpr const char* what = "spectral_signatures";
  const auto start = std::chrono::steady_clock::now();
  BULWARK_CHECK(options.expected_poison_rate() > 0 && options.expected_poison_rate() < 1,
                "{}: expected_poison_rate must be in (0, 1), got {}", what,
                options.expected_poison_rate());
  const auto classes = detail::split_by_class(representations, labels, num_classes, what);
  InspectionReport report;
  report.method = "spectral-signatures";
  std::vector<detail::ClassSpectrum> spectra;
  std::vector<double> ratios;
  for (const auto& c : classes) {
    spectra.push_back(detail::spectrum(c.features, 2));
    const auto& values = spectra.back().eigenvalues;
    const double top = values[0], second = values.size() > 1 ? values[1] : 0.0;
    ratios.push_back(top / std::max(second, 1e-12 * std::max(top, 1e-300)));
  }
  const auto anomaly = detail::anomaly_indices(ratios);
  std::vector<at::Tensor> flagged;
  for (size_t i = 0; i < classes.size(); ++i) {
    const auto& c = classes[i];
    ClassVerdict v;
    v.label = c.label;
    v.samples = c.indices.size(0);
    v.statistic = anomaly[i];
    v.poisoned = options.every_class() || anomaly[i] > options.anomaly_threshold();
    if (v.poisoned) {
      // Squared projections of the centred representations on the top direction.
      const auto scores = spectra[i].centred.matmul(spectra[i].eigenvectors.select(1, 0)).square();
      const auto remove = std::min<int64_t>(
          v.samples, static_cast<int64_t>(std::llround(1.5 * options.expected_poison_rate() *
                                                        static_cast<double>(v.samples))));
      const auto top = std::get<1>(scores.topk(remove));
      flagged.push_back(c.indices.index_select(0, top.cpu()));
      v.flagged = remove;
    }
    report.classes.push_back(v);
  }
  report.flagged = detail::sorted_indices(flagged);
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace bulwark
