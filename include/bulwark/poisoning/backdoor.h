#pragma once
/// @file
/// Backdoor poisoning: a trigger stamped on a fraction of the training images, relabelled to the
/// attacker's class (all-to-one) or each to the next class (all-to-all), and the measurement of
/// what it bought: clean accuracy, attack success rate and accuracy per class.

#include <torch/arg.h>

#include <cstdint>
#include <vector>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/poisoning/poisoned_dataset.h"
#include "bulwark/poisoning/trigger.h"

namespace bulwark {

enum class BackdoorMode {
  AllToOne,  ///< triggered images of every other class go to `target`
  AllToAll,  ///< a triggered image of class y goes to (y + 1) mod K
};

struct BackdoorOptions {
  /// Fraction of the whole training set that is poisoned: round(rate × N) images, drawn from
  /// those not already of the target class (all-to-one) or from all (all-to-all).
  TORCH_ARG(double, rate) = 0.05;
  TORCH_ARG(int64_t, target) = 0;
  TORCH_ARG(BackdoorMode, mode) = BackdoorMode::AllToOne;
  TORCH_ARG(uint64_t, seed) = 0;
};

/// The label a triggered image of class `label` should receive.
/// @throws Error when num_classes < 2, or the label or (all-to-one) the target is out of range.
int64_t backdoor_label(int64_t label, int64_t num_classes, const BackdoorOptions& options);

/// BadNets / blended poisoning of `data`.
/// @throws Error when rate is outside [0, 1], the target is out of range, there are fewer
/// candidates than the rate asks for, or the trigger does not fit the images.
PoisonedDataset plant_backdoor(const Dataset& data, const Trigger& trigger,
                               const BackdoorOptions& options = {});

struct CleanLabelOptions {
  /// Fraction of the target class's images that are poisoned (their labels stay).
  TORCH_ARG(double, rate) = 0.5;
  TORCH_ARG(int64_t, target) = 0;
  /// L∞ budget and steps of the PGD perturbation on the proxy model (Turner et al.: 8/255 and
  /// 16/255 on CIFAR-10 images in [0, 1]; the step is 2.5 · eps / steps).
  TORCH_ARG(double, eps) = 16.0 / 255.0;
  TORCH_ARG(int64_t, steps) = 10;
  TORCH_ARG(int64_t, batch_size) = 256;
  TORCH_ARG(InputBox, box) = InputBox();
  TORCH_ARG(uint64_t, seed) = 0;

 public:
  /// @throws Error when rate is outside [0, 1], eps is negative or steps < 1.
  void validate() const;
};

/// The clean-label backdoor (Turner et al. 2019): a fraction of the target class's own images,
/// labels unchanged, are first pushed away from their class by PGD on `proxy` (a model trained
/// on clean data) and then stamped with the trigger. Nothing is mislabelled, so label
/// inspection finds nothing; the model learns the trigger because the perturbed images' content
/// no longer explains their label.
/// @throws Error as plant_backdoor, or when the options are invalid.
PoisonedDataset plant_clean_label_backdoor(Model& proxy, const Dataset& data,
                                           const Trigger& trigger,
                                           const CleanLabelOptions& options = {});

struct BackdoorEvaluation {
  double clean_accuracy = 0;  ///< on the clean test images
  /// Of the triggered test images whose true class differs from their backdoor label, the
  /// fraction classified as that label.
  double attack_success_rate = 0;
  int64_t triggered = 0;  ///< how many test images the success rate is over
  std::vector<double> per_class_accuracy;  ///< clean, NaN for a class with no samples
};

/// Measures a (possibly) backdoored model on clean test data and on the same data triggered
/// (options.rate is not used).
/// @throws Error when the data set is empty or has fewer than 2 classes, the target is out of
/// range, or the trigger does not fit the images.
BackdoorEvaluation evaluate_backdoor(Model& model, const Dataset& test, const Trigger& trigger,
                                     const BackdoorOptions& options = {});

}  // namespace bulwark
