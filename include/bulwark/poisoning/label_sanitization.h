#pragma once
/// @file
/// Label sanitization against label flipping: find the samples whose label disagrees with what
/// the rest of the data says, and relabel (or remove) them.
///
/// - k nearest neighbours (Paudice et al. 2018): in a representation space, a sample whose k
///   nearest neighbours mostly (a fraction >= `agreement`) carry another label is relabelled
///   to theirs. Distances are computed in blocks of rows with LibTorch's matrix product (the
///   N × N problem is one dense product per block, on the representations' device).
/// - Confident learning (Northcutt et al. 2021): from out-of-sample predicted probabilities
///   (cross-validated: a model must not have seen the sample it scores), the confident joint
///   of given and true labels estimates how many samples of each class were flipped to each
///   other class; that many of them, those with the largest margin p(j) − p(given), are
///   flagged ("prune by noise rate", cleanlab's default), and relabelled to their most
///   probable class.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "bulwark/poisoning/data_inspection.h"

namespace bulwark {

/// Which samples a sanitization relabels, and to what.
struct LabelSanitization {
  std::string method;
  /// Indices (int64, ascending) of the samples judged mislabelled.
  at::Tensor flagged;
  /// The labels it proposes for them, in the order of `flagged`.
  at::Tensor proposed_labels;
  /// The whole label vector with the proposals applied (int64 [N]).
  at::Tensor sanitized_labels;
  double seconds = 0;
};

struct KnnSanitizationOptions {
  /// Neighbours consulted (Paudice et al.: 10).
  TORCH_ARG(int64_t, k) = 10;
  /// The fraction of the neighbours that must share the majority label (Paudice et al.'s
  /// threshold eta: 0.5).
  TORCH_ARG(double, agreement) = 0.5;
  /// Rows of the distance matrix computed at once (memory: rows × N floats).
  TORCH_ARG(int64_t, block_size) = 1024;
};

/// kNN label sanitization of `representations` [N, ...] (flattened per sample) with `labels`
/// [N]. A sample is relabelled when its neighbours' majority label differs from its own and
/// holds at least `agreement` of them; ties between majority labels go to the smaller label.
/// @throws Error when lengths disagree, a label is outside [0, num_classes), k is not in
/// [1, N), agreement is outside (0, 1], or the representations are not finite.
LabelSanitization knn_label_sanitization(const at::Tensor& representations,
                                         const at::Tensor& labels, int64_t num_classes,
                                         const KnnSanitizationOptions& options = {});

/// Confident learning on out-of-sample `probabilities` [N, K] (rows sum to 1) with `labels`
/// [N].
/// @throws Error when the shapes disagree, a label is outside [0, K), or a row is not a
/// probability distribution.
LabelSanitization confident_learning(const at::Tensor& probabilities, const at::Tensor& labels);

/// Out-of-sample probabilities [N, K] (double, CPU) for confident learning: the samples are
/// dealt into `folds` seeded random folds of equal size (±1); for each fold, a model trained by
/// `train` on the other folds predicts it.
/// @throws Error when folds is not in [2, N] or the data set is empty.
at::Tensor cross_validated_probabilities(const Dataset& data, int64_t folds,
                                         const ModelTrainer& train, uint64_t seed = 0,
                                         int64_t batch_size = 500);

}  // namespace bulwark
