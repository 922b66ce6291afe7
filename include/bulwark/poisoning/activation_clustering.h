#pragma once
/// @file
/// Activation clustering (Chen et al. 2018): the activations of poisoned samples of a class
/// form a cluster of their own. Per class, the activations are centred, reduced to a few
/// dimensions by PCA and split by 2-means; the class is judged poisoned only when the split is
/// real: the smaller cluster holds at most `size_threshold` of the class and the clustering's
/// mean silhouette is at least `silhouette_threshold`. Then the smaller cluster is flagged.
/// (ART's ActivationDefence flags a cluster in every class, issue #871.)
///
/// PCA runs in LibTorch in double precision, as spectral_signatures does; 2-means is Lloyd's
/// algorithm from seeded k-means++ starts; the silhouette is exact, in blocks of rows.

#include <torch/arg.h>

#include <cstdint>

#include "bulwark/poisoning/data_inspection.h"

namespace bulwark {

struct ActivationClusteringOptions {
  /// PCA dimensions the activations are reduced to (Chen et al.: 10).
  TORCH_ARG(int64_t, components) = 10;
  /// The smaller cluster must hold at most this fraction of its class (ART's default 0.35).
  TORCH_ARG(double, size_threshold) = 0.35;
  /// The mean silhouette of the split must be at least this.
  TORCH_ARG(double, silhouette_threshold) = 0.15;
  /// k-means restarts (the best of them by inertia is kept) and Lloyd iterations per restart.
  TORCH_ARG(int64_t, restarts) = 5;
  TORCH_ARG(int64_t, iterations) = 100;
  TORCH_ARG(uint64_t, seed) = 0;
};

/// Inspects `activations` [N, ...] (flattened per sample) labelled by `labels` [N]. Each
/// class's verdict carries the silhouette as its statistic.
/// @throws Error when they disagree in length, a label is outside [0, num_classes), an option
/// is out of range, or a class has fewer samples than 2 clusters need.
InspectionReport activation_clustering(const at::Tensor& activations, const at::Tensor& labels,
                                       int64_t num_classes,
                                       const ActivationClusteringOptions& options = {});

struct ExclusionaryReclassificationOptions {
  /// A suspect cluster is legitimate when l / p exceeds this, where l of its samples are
  /// classified as their own label and p as the most common other class (Chen et al.; ART: 1).
  TORCH_ARG(double, threshold) = 1.0;
  TORCH_ARG(int64_t, batch_size) = 500;
  TORCH_ARG(uint64_t, seed) = 0;
};

/// Exclusionary reclassification (Chen et al. 2018) confirms the clusters an inspection
/// flagged: a model trained by `train` on `data` without every flagged sample classifies them.
/// Poison that was relabelled goes back to its source class (l / p small); a legitimate
/// subpopulation keeps its label (l / p large) and its class is cleared. The report keeps
/// only the confirmed classes' samples; each class's statistic becomes l / p (+infinity when
/// p = 0, NaN for a class with nothing flagged).
/// @throws Error when a flagged index is outside the data set or the data set would be left
/// empty.
InspectionReport exclusionary_reclassification(const InspectionReport& suspects,
                                               const Dataset& data, const ModelTrainer& train,
                                               const ExclusionaryReclassificationOptions& options =
                                                   {});

}  // namespace bulwark
