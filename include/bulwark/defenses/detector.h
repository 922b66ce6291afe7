#pragma once
/// @file
/// `Detector`: flags inputs that look adversarial, by a score and a threshold calibrated for a
/// target false-positive rate on clean held-out data.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <string>

namespace bulwark {

/// A runtime detector of adversarial inputs. Higher scores mean more suspicious; an input is
/// flagged when its score is above the threshold.
///
/// Every detector also offers a differentiable `adaptive_score`, a surrogate of its score that
/// an adaptive attack can follow (BPDA through non-differentiable steps, an expectation over
/// the randomness of randomized ones); see `defenses/adaptive_attack.h`.
class Detector {
 public:
  virtual ~Detector() = default;

  /// A short name for reports ("feature-squeezing", ...).
  virtual std::string name() const = 0;

  /// Scores [N] (double, on the CPU) of a batch x [N, ...], without gradients. Detectors put
  /// the models they use in eval mode for the call.
  virtual at::Tensor score(const at::Tensor& x) = 0;

  /// A differentiable surrogate of `score`, [N] in x's dtype and device, that has a gradient
  /// with respect to x. The caller puts the models in eval mode.
  virtual at::Tensor adaptive_score(const at::Tensor& x) = 0;

  /// Sets the threshold so that at most a fraction `fpr` of `clean_scores` lies above it: the
  /// ⌊fpr·n⌋-th largest clean score. Returns the threshold.
  /// @throws Error when fpr is outside [0, 1) or the scores are empty or not finite.
  double calibrate(const at::Tensor& clean_scores, double fpr);

  /// The threshold (+infinity until calibrated or set: nothing is flagged).
  double threshold() const { return threshold_; }
  void set_threshold(double threshold);

  /// Which inputs of x are flagged: score > threshold, bool [N] on the CPU.
  at::Tensor flag(const at::Tensor& x);

 private:
  double threshold_ = std::numeric_limits<double>::infinity();
};

/// `detector.score` over x in batches of `batch_size`, concatenated.
/// @throws Error when batch_size < 1.
at::Tensor score_in_batches(Detector& detector, const at::Tensor& x, int64_t batch_size = 256);

/// The threshold `Detector::calibrate` would set for these scores.
double threshold_for_fpr(const at::Tensor& clean_scores, double fpr);

}  // namespace bulwark
