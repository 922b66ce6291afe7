#pragma once
/// @file
/// Randomized smoothing (Cohen, Rosenfeld and Kolter, ICML 2019): the smoothed classifier
/// g(x) = argmax_c P(f(x + N(0, σ²I)) = c), its Monte Carlo PREDICT and CERTIFY, and the
/// certified accuracy of a model against L2 radius.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark {

/// Defaults are Cohen et al.'s (their code's `certify.py`).
struct SmoothingOptions {
  /// Noise level σ (input units); the certified radii scale with it.
  TORCH_ARG(double, sigma) = 0.25;
  /// Noise draws that choose the top class (CERTIFY's selection step).
  TORCH_ARG(int64_t, n0) = 100;
  /// Noise draws that estimate its probability (CERTIFY) or vote (PREDICT).
  TORCH_ARG(int64_t, n) = 100000;
  /// Failure probability: CERTIFY's bound and PREDICT's test hold with probability 1 − alpha.
  TORCH_ARG(double, alpha) = 0.001;
  /// Noisy copies per forward pass.
  TORCH_ARG(int64_t, batch_size) = 1000;
  TORCH_ARG(uint64_t, seed) = 0;

 public:
  /// @throws Error when sigma <= 0, n0 or n < 1, alpha outside (0, 1) or batch_size < 1.
  void validate() const;
};

/// What CERTIFY says about one input.
struct Certificate {
  int64_t label = -1;     ///< the certified class, −1 when abstaining
  double radius = 0;      ///< certified L2 radius σ·Φ⁻¹(p_A lower), 0 when abstaining
  double pa_lower = 0;    ///< one-sided Clopper-Pearson lower bound of p_A at level 1 − alpha
  int64_t count = 0;      ///< of the n draws, how many the base model gave the selected class
};

/// The one-sided (1 − alpha) Clopper-Pearson lower confidence bound of a binomial proportion
/// after `successes` of `trials`: the alpha quantile of Beta(successes, trials − successes + 1),
/// 0 when successes = 0. @throws Error on counts out of range or alpha outside (0, 1).
double clopper_pearson_lower(int64_t successes, int64_t trials, double alpha);

/// The two-sided p-value of the binomial test of `successes` in `trials` against p = 1/2.
double binomial_test_half(int64_t successes, int64_t trials);

/// The smoothed version of a base classifier.
class SmoothedClassifier {
 public:
  /// @throws Error when the options are invalid.
  SmoothedClassifier(Model base, SmoothingOptions options = {});

  /// Counts [K] (int64, CPU) of the base model's predictions on `draws` noisy copies of one
  /// input x [C, H, W] (or any shape the model takes with a batch dimension in front).
  at::Tensor sample_counts(const at::Tensor& x, int64_t draws);

  /// Cohen et al.'s PREDICT: the top class of n draws, or −1 (abstain) when the binomial test
  /// of the top two counts does not reject a tie at level alpha.
  int64_t predict(const at::Tensor& x);

  /// Cohen et al.'s CERTIFY: select the top class with n0 draws, bound its probability with n
  /// fresh draws; abstain when the lower bound is below 1/2.
  Certificate certify(const at::Tensor& x);

  const SmoothingOptions& options() const { return options_; }
  Model& base() { return base_; }

 private:
  Model base_;
  SmoothingOptions options_;
  at::Generator generator_;
};

struct CertificationReport {
  std::string model;
  std::string data;
  SmoothingOptions options;
  std::vector<Certificate> certificates;
  std::vector<int64_t> labels;
  /// (radius, certified accuracy): the fraction of inputs certified correct at L2 radius >= r.
  std::vector<std::pair<double, double>> curve;
  double abstain_rate = 0;
  double clean_accuracy_of_base = 0;  ///< the base model on the noiseless inputs
  /// (radius, accuracy of PREDICT under the EOT attack), when asked for.
  std::vector<std::pair<double, double>> empirical;
  double seconds = 0;
  double draws_per_second = 0;  ///< noisy forward passes per second
};

/// The soft smoothed classifier as a differentiable model: log of the mean softmax of `base`
/// over `draws` noisy copies x + N(0, σ²I), fresh noise at every call. Attacks on it are the
/// EOT attacks on randomized smoothing (Salman et al. 2019's SmoothAdv).
/// @throws Error when sigma <= 0 or draws < 1.
Model smoothed_soft_model(Model base, double sigma, int64_t draws, uint64_t seed = 0);

/// The smoothed classifier's accuracy (PREDICT; abstaining counts as wrong) under an L2 PGD
/// attack with EOT on `smoothed_soft_model`, per radius: (radius, accuracy). The certified
/// accuracy at a radius is a lower bound of it up to the failure probability alpha, so the
/// two side by side check each other.
/// @throws Error on invalid options, an empty dataset or a negative radius.
std::vector<std::pair<double, double>> smoothed_accuracy_under_attack(
    Model& model, const Dataset& data, const SmoothingOptions& options,
    const std::vector<double>& radii, int64_t steps = 20, int64_t eot_draws = 8);

/// Called after each input: (done, total).
using CertifyProgress = std::function<void(int64_t, int64_t)>;

/// CERTIFY on every image of `data`, and the certified accuracy at each radius of `radii`.
/// @throws Error when data is empty, the options are invalid or a radius is negative.
CertificationReport certify_dataset(Model& model, const Dataset& data,
                                    const SmoothingOptions& options,
                                    const std::vector<double>& radii,
                                    const CertifyProgress& progress = {});

std::string to_json(const CertificationReport& report);
std::string to_markdown(const CertificationReport& report);

}  // namespace bulwark
