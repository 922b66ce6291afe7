#pragma once
/// @file
/// Neural Cleanse (Wang et al. 2019): a backdoored model has a shortcut to its target class, a
/// trigger far smaller than what it takes to send clean images to any other class. For each
/// class, the smallest mask (and its pattern) that sends clean images there is
/// reverse-engineered by minimising cross-entropy to the class + cost · |mask|₁; a class whose
/// mask's L1 norm is an outlier on the small side, by the median-absolute-deviation anomaly
/// index (× 1.4826) above 2, is the backdoor's target.
///
/// The optimisation follows the authors' code (bolunwang/backdoor, visualizer.py): mask and
/// pattern in tanh space, x' = (1 − mask) x + mask · pattern, Adam (lr 0.1, betas 0.5 and 0.9),
/// the cost starting at 1e-3 and raised ×1.5 after `patience` checks with the attack success at
/// least 0.99, lowered ÷1.5^1.5 after `patience` checks below it, and the best mask the
/// smallest whose success reached 0.99. The mask is one channel shared by all (as the
/// authors'); IBM ART keeps one per channel and measures L2 by default. The authors run 1000
/// checks of 31 mini-batches of 32 per class; the defaults here (100 checks of 10 mini-batches)
/// cost 1/31 of that and end early once the norm stops improving.
///
/// Mitigation by unlearning (the paper's §6.3): fine-tune on clean images, 20% of them stamped
/// with the reversed trigger and keeping their true labels, for one epoch.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"
#include "bulwark/poisoning/trigger.h"

namespace bulwark {

struct NeuralCleanseOptions {
  /// Cost-schedule checks per class (the authors: 1000) and Adam steps between two checks
  /// (the authors: 31 mini-batches, an epoch of their 1000 images).
  TORCH_ARG(int64_t, checks) = 100;
  TORCH_ARG(int64_t, batches_per_check) = 10;
  TORCH_ARG(int64_t, batch_size) = 32;
  TORCH_ARG(double, learning_rate) = 0.1;
  TORCH_ARG(double, init_cost) = 1e-3;
  /// The attack success a mask must reach to count (the authors: 0.99).
  TORCH_ARG(double, success_threshold) = 0.99;
  TORCH_ARG(int64_t, patience) = 5;
  TORCH_ARG(double, cost_multiplier) = 1.5;
  /// Stop when the best norm has not improved by 1% for this many checks once the cost has
  /// gone both up and down (the authors' default: 2 × patience; their example: 5 × patience).
  TORCH_ARG(int64_t, early_stop_patience) = 10;
  /// A class is flagged when its anomaly index (below the median) exceeds this.
  TORCH_ARG(double, anomaly_threshold) = 2.0;
  TORCH_ARG(InputBox, box) = InputBox();
  /// Seeds the initial mask and pattern and the order of the clean images.
  TORCH_ARG(uint64_t, seed) = 0;

 public:
  /// @throws Error when a count is < 1, a rate or threshold is out of range.
  void validate() const;
};

/// The reversed trigger of one class.
struct ReversedTrigger {
  int64_t label = 0;
  at::Tensor mask;     ///< [1, H, W] in [0, 1]
  at::Tensor pattern;  ///< [C, H, W] in the box
  double l1_norm = 0;  ///< of the mask
  double attack_success = 0;  ///< of the best mask on the images of the last check
  bool reached = false;       ///< attack success reached the threshold
  double anomaly_index = 0;   ///< (median − norm) / (1.4826 · MAD); positive below the median
  bool flagged = false;
  int64_t steps = 0;          ///< Adam steps taken
  /// The reversed trigger, to apply to images.
  Trigger trigger() const { return Trigger::masked(mask, pattern); }
};

struct NeuralCleanseReport {
  std::vector<ReversedTrigger> classes;
  bool backdoored = false;           ///< some class was flagged
  std::vector<int64_t> flagged;      ///< the flagged classes
  double seconds = 0;
};

/// Progress: (class, classes).
using NeuralCleanseProgress = std::function<void(int64_t, int64_t)>;

/// Reverse-engineers a trigger for each of the `num_classes` classes (or only `labels` when
/// given) from the clean `images` [N, C, H, W], then flags outliers.
/// @throws Error when the images are not a non-empty batch in the box, num_classes < 2, a
/// label is out of range, or the options are invalid.
NeuralCleanseReport neural_cleanse(Model& model, const at::Tensor& images, int64_t num_classes,
                                   const NeuralCleanseOptions& options = {},
                                   const NeuralCleanseProgress& progress = {});

struct UnlearningOptions {
  /// Fraction of the clean images stamped with the reversed trigger (the paper: 20%).
  TORCH_ARG(double, stamped_fraction) = 0.2;
  TORCH_ARG(int64_t, epochs) = 1;
  TORCH_ARG(int64_t, batch_size) = 32;
  /// Adam's learning rate. Measured on a BadNets SmallCNN (Fashion-MNIST, 1000 clean images,
  /// one epoch): 1e-3 takes attack success from 96.8% to 0.5% for 1.6 points of clean accuracy;
  /// 1e-4 leaves 46% (three epochs: 7%).
  TORCH_ARG(double, learning_rate) = 1e-3;
  TORCH_ARG(uint64_t, seed) = 0;
};

/// Unlearns a backdoor: fine-tunes `model` in place on `clean` with `stamped_fraction` of its
/// images carrying `trigger` and their true labels.
/// @throws Error when the data set is empty, the fraction is outside [0, 1] or the trigger does
/// not fit the images.
void unlearn_backdoor(Model& model, const Dataset& clean, const Trigger& trigger,
                      const UnlearningOptions& options = {});

}  // namespace bulwark
