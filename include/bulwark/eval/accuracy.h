#pragma once
/// @file
/// Clean (unattacked) accuracy of a model on a dataset.

#include <cstdint>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark {

struct AccuracyReport {
  int64_t correct = 0;
  int64_t total = 0;
  double accuracy = 0.0;                    ///< correct / total, in [0, 1]
  std::vector<double> per_class_accuracy;   ///< NaN for a class with no samples
  double seconds = 0.0;
  double samples_per_second = 0.0;
};

/// Logits [N, K] (on the CPU) for `inputs` [N, ...], in eval mode, without gradients, batch by
/// batch on the model's device.
at::Tensor predict_logits(Model& model, const at::Tensor& inputs, int64_t batch_size = 500);

/// Predicted classes [N] for `inputs` [N, ...], as predict_logits() does it.
at::Tensor predict(Model& model, const at::Tensor& inputs, int64_t batch_size = 500);

/// Accuracy of `model` on `data` in eval mode (its mode is restored afterwards).
/// @throws Error when data is empty, batch_size < 1, or a label is not below the model's number
/// of logits.
AccuracyReport clean_accuracy(Model& model, const Dataset& data, int64_t batch_size = 500);

}  // namespace bulwark
