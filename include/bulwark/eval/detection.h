#pragma once
/// @file
/// Detector evaluation: ROC curves, AUC and TPR at fixed false-positive rates against attacks
/// that ignore the detector and against the adaptive attack that targets it.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/attacks/attack.h"
#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"
#include "bulwark/defenses/adaptive_attack.h"
#include "bulwark/defenses/detector.h"

namespace bulwark {

/// ROC of scores where higher means "adversarial". Point i flags every score >= thresholds[i];
/// the points run from (0, 0) to (1, 1).
struct RocCurve {
  std::vector<double> fpr, tpr, thresholds;
  /// Area under the curve: the probability that a random positive scores above a random
  /// negative, ties counting one half.
  double auc = 0.5;
};

/// @throws Error when either set is empty or holds NaN.
RocCurve roc_curve(const at::Tensor& negative_scores, const at::Tensor& positive_scores);

/// The highest true-positive rate at a false-positive rate of at most `fpr`.
/// @throws Error when fpr is outside [0, 1] or the curve is empty or ragged.
double tpr_at_fpr(const RocCurve& curve, double fpr);

struct DetectionEvaluationOptions {
  /// False-positive rate the threshold is calibrated for.
  TORCH_ARG(double, target_fpr) = 0.05;
  /// Fraction of the data held out (the first images) to calibrate the threshold; the rest
  /// is the test set.
  TORCH_ARG(double, calibration_fraction) = 0.5;
  TORCH_ARG(int64_t, batch_size) = 256;
  /// Run the adaptive attack (with these options) after the listed attacks.
  TORCH_ARG(std::optional<AdaptiveAttackOptions>, adaptive) = AdaptiveAttackOptions(0.1);

 public:
  /// @throws Error when target_fpr is not in [0, 1), the fraction not in (0, 1), batch_size < 1.
  void validate() const;
};

/// One attack against the detector.
struct DetectionResult {
  std::string attack;
  bool adaptive = false;
  double eps = 0;
  int64_t attacked = 0;  ///< clean-correct test images attacked
  int64_t fooled = 0;    ///< of them, misclassified after the attack (the positives)
  double auc = 0.5;
  double tpr_at_1 = 0, tpr_at_5 = 0;
  /// Fraction of the positives flagged at the calibrated threshold.
  double detection_rate = 0;
  /// Fraction of the attacked images that end misclassified and not flagged: the attack's
  /// success against the defended system.
  double undetected_success = 0;
  RocCurve roc;
};

struct DetectionReport {
  std::string model;
  std::string detector;
  std::string data;
  double target_fpr = 0;
  double threshold = 0;
  int64_t calibration_samples = 0;
  int64_t test_samples = 0;
  /// Fraction of clean test images flagged at the threshold (should be near target_fpr).
  double test_fpr = 0;
  double clean_accuracy = 0;  ///< of the model on the test images
  std::vector<DetectionResult> results;
  double seconds = 0;
  /// Detector time per input as a multiple of one forward pass of the model.
  double overhead_vs_forward = 0;
};

/// Progress: (stage, done, total).
using DetectionProgress = std::function<void(const std::string&, int64_t, int64_t)>;

/// Calibrates `detector` on the first part of `data` (clean), then attacks the clean-correct
/// images of the rest with each attack and, when asked, with the adaptive attack, and scores
/// clean and adversarial images. The detector keeps the calibrated threshold.
/// @throws Error when the data is too small to split or the options are invalid.
DetectionReport evaluate_detector(Model& model, Detector& detector, const Dataset& data,
                                  const std::vector<std::shared_ptr<Attack>>& attacks,
                                  const DetectionEvaluationOptions& options = {},
                                  const DetectionProgress& progress = {});

std::string to_json(const DetectionReport& report);
std::string to_markdown(const DetectionReport& report);

}  // namespace bulwark
