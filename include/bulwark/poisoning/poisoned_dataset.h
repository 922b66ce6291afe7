#pragma once
/// @file
/// What a poisoning attack returns: the poisoned copy of a data set and exactly which samples it
/// changed (the ground truth a defense is scored against).

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "bulwark/data/dataset.h"

namespace bulwark {

struct PoisonedDataset {
  /// The poisoned copy: every sample not in `changed` is bitwise the original.
  Dataset data;
  /// Indices (int64, ascending) of the samples whose image or label was changed.
  at::Tensor changed;
  /// Their labels before poisoning, in the order of `changed`.
  at::Tensor original_labels;
};

/// A [N] bool mask, true at the indices of `changed`: the ground truth of a detection.
/// @throws Error when an index of `changed` is outside [0, N).
at::Tensor changed_mask(const PoisonedDataset& poisoned);

}  // namespace bulwark
