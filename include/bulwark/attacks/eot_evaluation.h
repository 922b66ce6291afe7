#pragma once
/// @file
/// How often a physical-world perturbation (patch or sticker) fools a model over many random
/// views of held-out images: the figure the patch and sticker attacks are judged by.

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "bulwark/core/input_box.h"
#include "bulwark/data/transforms.h"

namespace bulwark {

/// Options of evaluate_patch and evaluate_sticker.
struct EOTEvaluationOptions {
  /// Random views (placements and transforms) per image (default 10).
  EOTEvaluationOptions& views(int64_t v) { views_ = v; return *this; }
  /// Where a patch may be put (stickers ignore it).
  EOTEvaluationOptions& placement(PlacementOptions v) { placement_ = v; return *this; }
  /// The random transforms of each view.
  EOTEvaluationOptions& transforms(TransformOptions v) { transforms_ = v; return *this; }
  EOTEvaluationOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  EOTEvaluationOptions& box(InputBox v) { box_ = v; return *this; }
  EOTEvaluationOptions& seed(uint64_t v) { seed_ = v; return *this; }
  int64_t views() const { return views_; }
  const PlacementOptions& placement() const { return placement_; }
  const TransformOptions& transforms() const { return transforms_; }
  int64_t batch_size() const { return batch_size_; }
  const InputBox& box() const { return box_; }
  uint64_t seed() const { return seed_; }

 private:
  int64_t views_ = 10;
  PlacementOptions placement_;
  TransformOptions transforms_;
  int64_t batch_size_ = 256;
  InputBox box_;
  uint64_t seed_ = 1;
};

/// Success over views. Targeted: the images whose label is not the target count, a view
/// succeeds when it is classified as the target. Untargeted: the images the model classifies
/// correctly count, a view succeeds when it is misclassified.
struct EOTEvaluation {
  int64_t images = 0;  ///< images that count
  int64_t views = 0;   ///< views evaluated (images × views per image)
  /// Fraction of successful views.
  double success_rate = 0;
  /// The same views with a random perturbation of the same shape and size in its place (a
  /// uniformly random patch; a sticker of random signs with the same magnitude): what
  /// occlusion or noise alone does.
  double baseline_success_rate = 0;
  /// Fraction of the counted images on which every view succeeds.
  double all_views_rate = 0;
  /// Clean accuracy over all evaluated images, without any perturbation.
  double clean_accuracy = 0;
  /// Some counted images and one successful-or-not view of each, for a picture (up to 8):
  /// clean images, views, predictions on both, labels.
  at::Tensor example_clean, example_views, example_clean_predictions, example_view_predictions,
      example_labels;
};

}  // namespace bulwark
