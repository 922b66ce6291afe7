#pragma once
/// @file
/// What a training-set inspection returns (spectral signatures, activation clustering): the
/// samples it flags, a verdict per class, and precision and recall against the poisoning's
/// ground truth when that is known.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark {

/// One class's verdict.
struct ClassVerdict {
  int64_t label = 0;
  int64_t samples = 0;
  bool poisoned = false;  ///< the class was judged to hold poison; only then are samples flagged
  double statistic = 0;   ///< what the judgement rests on (see each method)
  int64_t flagged = 0;
};

struct InspectionReport {
  std::string method;
  /// Indices (int64, ascending) of the flagged samples.
  at::Tensor flagged;
  std::vector<ClassVerdict> classes;
  double seconds = 0;
};

/// Trains a model on `train` by the caller's recipe, seeded by `seed` (for the inspections
/// that need a model trained without the suspects: exclusionary reclassification,
/// cross-validated confident learning).
using ModelTrainer = std::function<Model(const Dataset& train, uint64_t seed)>;

/// The activations of `layer` (see layer_activations) for every image of `images`,
/// `batch_size` at a time on the model's device, in eval mode and without gradients: [N, D],
/// flattened per sample, on the CPU. `progress`, when given, is called with the images done.
/// @throws Error when batch_size < 1, the images are not a non-empty batch, or the layer is not
/// reachable.
at::Tensor collect_activations(Model& model, const std::string& layer, const at::Tensor& images,
                               int64_t batch_size = 500,
                               const std::function<void(int64_t)>& progress = {});

/// `data` without the samples at `indices` (int64, any order, repeats allowed; an inspection's
/// `flagged`), the others in their order.
/// @throws Error when an index lies outside [0, data.size()) or no sample would be left.
Dataset remove_samples(const Dataset& data, const at::Tensor& indices);

/// Precision and recall of `flagged` against the indices that were really poisoned.
struct DetectionScore {
  int64_t true_positives = 0;
  int64_t flagged = 0;
  int64_t poisoned = 0;
  double precision = 0;  ///< 1 when nothing was flagged
  double recall = 0;     ///< 1 when nothing was poisoned
};

/// @throws Error when an index is negative.
DetectionScore score_detection(const at::Tensor& flagged, const at::Tensor& poisoned);

}  // namespace bulwark
