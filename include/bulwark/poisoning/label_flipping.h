#pragma once
/// @file
/// Label flipping: the attacker relabels a fraction of the training set to degrade the model.
/// Three ways of choosing what to flip, from weakest to most harmful for a given rate: uniform
/// (random samples to a random other class), targeted (a fraction of one source class to one
/// target class) and by loss (the samples a clean model fits least, each to the wrong class
/// that model finds most likely, so the flips look plausible).

#include <torch/arg.h>

#include <cstdint>

#include "bulwark/core/model.h"
#include "bulwark/poisoning/poisoned_dataset.h"

namespace bulwark {

struct LabelFlipOptions {
  /// Fraction flipped: of the whole set (uniform, by loss) or of the source class (targeted).
  /// The count is round(rate × N).
  TORCH_ARG(double, rate) = 0.1;
  TORCH_ARG(uint64_t, seed) = 0;
};

/// Uniform flips: round(rate × N) samples drawn without replacement, each relabelled to a class
/// drawn uniformly from the other num_classes − 1.
/// @throws Error when rate is outside [0, 1], the data set is empty or has fewer than 2 classes.
PoisonedDataset flip_labels_uniform(const Dataset& data, const LabelFlipOptions& options = {});

/// Targeted flips: round(rate × |source|) samples of class `source`, relabelled to `target`.
/// @throws Error when rate is outside [0, 1], a class is out of range or source == target.
PoisonedDataset flip_labels_targeted(const Dataset& data, int64_t source, int64_t target,
                                     const LabelFlipOptions& options = {});

/// Flips where they hurt most: the round(rate × N) samples of highest cross-entropy under
/// `clean_model` (ties broken by index), each to the wrong class with the largest logit.
/// Deterministic given the model; the seed is not used.
/// @throws Error as flip_labels_uniform, or when the model's classes differ from the data's.
PoisonedDataset flip_labels_by_loss(Model& clean_model, const Dataset& data,
                                    const LabelFlipOptions& options = {});

}  // namespace bulwark
