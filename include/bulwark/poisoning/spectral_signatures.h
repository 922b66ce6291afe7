#pragma once
/// @file
/// Spectral signatures (Tran et al. 2018): poison that plants a backdoor leaves a trace along
/// the top principal direction of its class's representations. Per class, the representations
/// are centred (ART's implementation does not centre them, issue #1188, and then flags about
/// half of every class), each sample scores its squared projection on the top singular vector,
/// and the highest-scoring 1.5 × the expected poison rate are removed.
///
/// Unlike the paper, a class is first tested for a spectral outlier at all: its statistic is the
/// ratio of the top two eigenvalues of its covariance (one direction that stands out), and a
/// class is flagged only when that ratio is an outlier among the classes: its anomaly index
/// (x − median) / (1.4826 · MAD) exceeds `anomaly_threshold` (the median-absolute-deviation rule
/// Neural Cleanse uses too). Clean classes are then left alone.
///
/// The linear algebra runs in LibTorch (the d × d covariance and its eigendecomposition, in
/// double precision, on the representations' device): the data is already a tensor, d is a few
/// hundred to a few thousand, and the same code serves a GPU; Eigen would add a copy for no gain.

#include <torch/arg.h>

#include "bulwark/data/dataset.h"
#include "bulwark/poisoning/data_inspection.h"

namespace bulwark {

struct SpectralSignatureOptions {
  /// The fraction of a poisoned class expected to be poison: 1.5 × this of the class is removed.
  TORCH_ARG(double, expected_poison_rate) = 0.1;
  /// A class is judged poisoned when the anomaly index of its eigenvalue ratio exceeds this.
  TORCH_ARG(double, anomaly_threshold) = 2.0;
  /// Skip the per-class test and remove from every class (the paper's procedure).
  TORCH_ARG(bool, every_class) = false;
};

/// Inspects `representations` [N, ...] (flattened per sample) labelled by `labels` [N].
/// @throws Error when they disagree in length, a label is outside [0, num_classes), the rate is
/// outside (0, 1), or a class has fewer than 2 samples.
InspectionReport spectral_signatures(const at::Tensor& representations, const at::Tensor& labels,
                                     int64_t num_classes,
                                     const SpectralSignatureOptions& options = {});

}  // namespace bulwark
