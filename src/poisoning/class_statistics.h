#pragma once
// Private to the poisoning area: per-class pieces shared by the training-set inspections.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace bulwark::detail {

/// The samples of one class: their indices in the data set and their flattened features.
struct ClassSamples {
  int64_t label = 0;
  at::Tensor indices;   // int64 [n_c], CPU
  at::Tensor features;  // [n_c, d], double, on the features' device
};

/// Splits [N, ...] features by label; classes without samples are left out.
/// @throws Error naming `what` when lengths disagree, a label is out of range, or a class has
/// exactly one sample.
std::vector<ClassSamples> split_by_class(const at::Tensor& features, const at::Tensor& labels,
                                         int64_t num_classes, const char* what);

/// The centred features and the top `k` eigenpairs of their covariance (descending).
struct ClassSpectrum {
  at::Tensor centred;                // [n, d]
  std::vector<double> eigenvalues;   // k values
  at::Tensor eigenvectors;           // [d, k]
};
ClassSpectrum spectrum(const at::Tensor& features, int64_t k);

/// The int64 indices of all the parts, ascending (empty when there are none).
at::Tensor sorted_indices(const std::vector<at::Tensor>& parts);

/// (x − median) / (1.4826 · MAD) for each value; 0 for all when MAD is 0 and x equals the
/// median, +∞ above it.
std::vector<double> anomaly_indices(const std::vector<double>& values);

}  // namespace bulwark::detail
