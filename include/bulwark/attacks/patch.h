#pragma once
/// @file
/// Universal adversarial patch (Brown et al., "Adversarial Patch", 2017): one patch, trained
/// over a data set under random placement, rotation, scale and image transforms (expectation
/// over transformation), that makes a model predict a target class (or anything but the truth)
/// wherever it is put.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/attacks/eot_evaluation.h"
#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"
#include "bulwark/data/transforms.h"

namespace bulwark {

enum class PatchShape { Square, Circle };

/// "square" or "circle". @throws Error otherwise.
PatchShape parse_patch_shape(std::string_view text);
std::string to_string(PatchShape shape);

/// A patch and where it is opaque.
struct AdversarialPatch {
  at::Tensor pixels;        ///< [C, r, r] inside the input box
  at::Tensor mask;          ///< [r, r], 1 on the patch, 0 outside (corners of a circle)
  double pixel_scale = 1;   ///< image pixels per patch pixel at the nominal size
  int64_t target = -1;      ///< the target class, or −1 for an untargeted patch
  PatchShape shape = PatchShape::Square;

  /// The fraction of an H×W image the patch covers at its nominal size.
  double area_fraction(int64_t height, int64_t width) const;
};

/// A patch of `shape` covering the fraction `size` of an H×W image with C channels at its
/// nominal size, all pixels set to `fill`. Its resolution is the smallest whole number of
/// pixels that reaches the size, drawn slightly smaller (pixel_scale <= 1).
/// @throws Error unless 0 < size <= 1 and the patch fits into the image.
AdversarialPatch make_patch(PatchShape shape, double size, int64_t channels, int64_t height,
                            int64_t width, double fill = 0.5);

/// Puts `patch` into `images` [N, C, H, W] at the placements `theta` [N, 2, 3] (see
/// sample_placements), opaque where its mask is 1. Differentiable with respect to the patch.
at::Tensor apply_patch(const at::Tensor& images, const AdversarialPatch& patch,
                       const at::Tensor& theta);

/// Options of train_patch. Defaults: 500 Adam steps of learning rate 0.05 on batches of 32;
/// placements rotated up to 22.5° and scaled by 0.8–1 (IBM ART's AdversarialPatch rotates up to
/// 22.5° too); no image transforms.
struct PatchOptions {
  /// Fraction of the image the patch covers at its largest (default 0.1).
  PatchOptions& size(double v) { size_ = v; return *this; }
  PatchOptions& shape(PatchShape v) { shape_ = v; return *this; }
  /// The class the patch should make the model predict; −1 (default) for untargeted.
  PatchOptions& target(int64_t v) { target_ = v; return *this; }
  PatchOptions& steps(int64_t v) { steps_ = v; return *this; }
  PatchOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  PatchOptions& learning_rate(double v) { learning_rate_ = v; return *this; }
  PatchOptions& placement(PlacementOptions v) { placement_ = v; return *this; }
  /// Transforms of the whole patched image (light, blur, noise, camera pose) at each step.
  PatchOptions& transforms(TransformOptions v) { transforms_ = v; return *this; }
  PatchOptions& box(InputBox v) { box_ = v; return *this; }
  PatchOptions& seed(uint64_t v) { seed_ = v; return *this; }
  double size() const { return size_; }
  PatchShape shape() const { return shape_; }
  int64_t target() const { return target_; }
  int64_t steps() const { return steps_; }
  int64_t batch_size() const { return batch_size_; }
  double learning_rate() const { return learning_rate_; }
  const PlacementOptions& placement() const { return placement_; }
  const TransformOptions& transforms() const { return transforms_; }
  const InputBox& box() const { return box_; }
  uint64_t seed() const { return seed_; }

 private:
  double size_ = 0.1;
  PatchShape shape_ = PatchShape::Square;
  int64_t target_ = -1;
  int64_t steps_ = 500;
  int64_t batch_size_ = 32;
  double learning_rate_ = 0.05;
  PlacementOptions placement_;
  TransformOptions transforms_;
  InputBox box_;
  uint64_t seed_ = 0;
};

/// Progress of a patch or sticker optimization, after each step.
struct EOTStep {
  int64_t step = 0;   ///< 1-based
  int64_t steps = 0;
  double loss = 0;    ///< the objective on this step's batch
  double success_rate = 0;  ///< of this step's views
};
using EOTCallback = std::function<void(const EOTStep&)>;

/// A trained patch and how training went.
struct PatchTraining {
  AdversarialPatch patch;
  std::vector<double> losses;           ///< per step
  std::vector<double> success_rates;    ///< per step, on that step's views
  int64_t gradient_evaluations = 0;     ///< forward+backward passes over single views
  double seconds = 0;
};

/// Trains a universal patch on `data` (images inside the box; for a targeted patch the images
/// of the target class are left out). The model is put in eval mode for the duration and its
/// parameters and their gradients are left alone.
/// @throws Error on invalid options, a target outside the model's classes, an empty data set
/// (after leaving out the target class), or a patch larger than the images.
PatchTraining train_patch(Model& model, const Dataset& data, const PatchOptions& options,
                          const EOTCallback& callback = {});

/// The success of `patch` on `data` over random views (placements from the options, then
/// transforms), next to that of a random patch of the same shape.
EOTEvaluation evaluate_patch(Model& model, const Dataset& data, const AdversarialPatch& patch,
                             const EOTEvaluationOptions& options = {});

}  // namespace bulwark
