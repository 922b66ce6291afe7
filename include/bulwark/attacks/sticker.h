#pragma once
/// @file
/// Masked sticker attack: Robust Physical Perturbations (RP2, Eykholt et al., "Robust
/// Physical-World Attacks on Deep Learning Visual Classification", CVPR 2018). A perturbation
/// confined to a user-given mask (for example strips on a sign) is optimized over transformed
/// views of a set of images:
///
///     minimize  λ‖M ⊙ δ‖₂ + w · NPS + E_{x, T} J(f(clip(T(x) + T(M ⊙ δ))), y)
///
/// where T is a random alignment and photometric change, J the cross-entropy towards the
/// target (or away from the true label) and NPS the non-printability score of the printed
/// colours against a palette. Give one image (or views of one object) for RP2's per-object
/// sticker; give a class of images for a sticker that works on all of them.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "bulwark/attacks/eot_evaluation.h"
#include "bulwark/attacks/patch.h"
#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"
#include "bulwark/data/transforms.h"

namespace bulwark {

/// Options of train_sticker. Defaults: 300 Adam steps of learning rate 0.1 (RP2's optimizer),
/// λ = 0.002, batches of 32 views; views rotated up to 10°, scaled 0.9–1.1, shifted up to 5%,
/// brightness ±0.1, contrast 0.8–1.2, noise up to 0.02.
struct StickerOptions {
  /// `mask` [H, W] with values in [0, 1] (1 where the sticker may change the image).
  explicit StickerOptions(at::Tensor mask);
  StickerOptions& target(int64_t v) { target_ = v; return *this; }
  StickerOptions& steps(int64_t v) { steps_ = v; return *this; }
  StickerOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  StickerOptions& learning_rate(double v) { learning_rate_ = v; return *this; }
  /// λ, the weight of ‖M ⊙ δ‖₂.
  StickerOptions& penalty(double v) { penalty_ = v; return *this; }
  /// Printable colours [P, C] inside the box; with one, NPS is added with weight
  /// `printability_weight` (default 0.25 once a palette is set).
  StickerOptions& palette(at::Tensor v) { palette_ = std::move(v); return *this; }
  StickerOptions& printability_weight(double v) { printability_weight_ = v; return *this; }
  StickerOptions& transforms(TransformOptions v) { transforms_ = v; return *this; }
  StickerOptions& box(InputBox v) { box_ = v; return *this; }
  StickerOptions& seed(uint64_t v) { seed_ = v; return *this; }
  const at::Tensor& mask() const { return mask_; }
  int64_t target() const { return target_; }
  int64_t steps() const { return steps_; }
  int64_t batch_size() const { return batch_size_; }
  double learning_rate() const { return learning_rate_; }
  double penalty() const { return penalty_; }
  const at::Tensor& palette() const { return palette_; }
  double printability_weight() const { return printability_weight_; }
  const TransformOptions& transforms() const { return transforms_; }
  const InputBox& box() const { return box_; }
  uint64_t seed() const { return seed_; }

 private:
  at::Tensor mask_;
  int64_t target_ = -1;
  int64_t steps_ = 300;
  int64_t batch_size_ = 32;
  double learning_rate_ = 0.1;
  double penalty_ = 0.002;
  at::Tensor palette_;
  double printability_weight_ = 0.25;
  TransformOptions transforms_ = TransformOptions()
                                     .rotation(10)
                                     .scale(0.9, 1.1)
                                     .translate(0.05)
                                     .brightness(0.1)
                                     .contrast(0.8, 1.2)
                                     .noise(0.02);
  InputBox box_;
  uint64_t seed_ = 0;
};

/// A masked perturbation.
struct Sticker {
  at::Tensor perturbation;  ///< [C, H, W], zero outside the mask
  at::Tensor mask;          ///< [H, W] in [0, 1]
  int64_t target = -1;
};

/// A trained sticker and how training went.
struct StickerTraining {
  Sticker sticker;
  std::vector<double> losses;
  std::vector<double> success_rates;
  int64_t gradient_evaluations = 0;
  double seconds = 0;
};

/// Trains a sticker on `data` (see the file comment). The model is in eval mode for the
/// duration; its parameters and their gradients are left alone.
/// @throws Error when the mask's size differs from the images', the mask is empty or outside
/// [0, 1], the palette's shape or range is wrong, the target is outside the model's classes,
/// or an option is out of range.
StickerTraining train_sticker(Model& model, const Dataset& data, const StickerOptions& options,
                              const EOTCallback& callback = {});

/// The stickered images: clip(x + M ⊙ δ) inside the mask; every pixel where the mask is 0 is
/// returned bit for bit unchanged.
at::Tensor apply_sticker(const at::Tensor& images, const Sticker& sticker,
                         const InputBox& box = {});

/// Success of `sticker` on `data` over random views (the options' transforms applied to the
/// stickered images), next to a sticker of random signs with the same magnitude.
EOTEvaluation evaluate_sticker(Model& model, const Dataset& data, const Sticker& sticker,
                               const EOTEvaluationOptions& options = {});

/// RP2's non-printability score: the mean over `colors` [M, C] of the product over the
/// palette [P, C] of the Euclidean distance to each printable colour (0 for a printable
/// colour). Differentiable.
at::Tensor non_printability_score(const at::Tensor& colors, const at::Tensor& palette);

}  // namespace bulwark
