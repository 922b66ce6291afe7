#pragma once
/// @file
/// DP-SGD (Abadi et al. 2016): the private gradient of a logical batch — per-sample gradients
/// clipped to norm C, summed, Gaussian noise of standard deviation σC added once, divided by
/// the expected batch size — and Poisson sampling of the batches, as Opacus does it.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/privacy/per_sample_gradients.h"

namespace bulwark {

struct DPSGDOptions {
  /// σ: the noise on the clipped sum has standard deviation σ · max_grad_norm. Ignored by the
  /// Trainer when target_epsilon > 0 (it calibrates σ then).
  TORCH_ARG(double, noise_multiplier) = 1.0;
  /// C: every sample's gradient is clipped to this L2 norm (1.0, Opacus' examples' value).
  TORCH_ARG(double, max_grad_norm) = 1.0;
  TORCH_ARG(ClippingMode, clipping) = ClippingMode::Flat;
  /// Rows per forward/backward pass; a logical batch is split into passes of at most this
  /// many rows (0: the whole logical batch in one pass). Changes memory, not the result.
  TORCH_ARG(int64_t, physical_batch_size) = 0;
  /// Draw the noise from the operating system's cryptographic source (getrandom) instead of a
  /// seeded generator: required for a real privacy guarantee (a seeded, reproducible noise
  /// stream can be replayed), off by default so that runs are reproducible.
  TORCH_ARG(bool, secure_rng) = false;
  /// Trainer: calibrate σ so that the whole run spends this ε at `delta` (0: use σ as given).
  TORCH_ARG(double, target_epsilon) = 0.0;
  /// δ of the reported ε; well below 1/N (1e-5 for 60000 samples, as Abadi et al.).
  TORCH_ARG(double, delta) = 1e-5;
  /// Trainer: stop before the step that would spend more than this ε (0: no budget).
  TORCH_ARG(double, epsilon_budget) = 0.0;
  /// "rdp" (default, as Opacus) or "prv".
  TORCH_ARG(std::string, accountant) = "rdp";

 public:
  /// @throws Error on σ < 0 or not finite, C <= 0, physical_batch_size < 0, target_epsilon or
  /// epsilon_budget < 0, δ outside (0, 1), or an unknown accountant.
  void validate() const;
};

/// One private step's figures.
struct PrivateGradient {
  int64_t batch_size = 0;          ///< rows in this logical batch (Poisson: varies, may be 0)
  double mean_loss = 0.0;          ///< mean per-sample loss (0 for an empty batch)
  double clipped_fraction = 0.0;   ///< fraction of samples whose norm exceeded C
  at::Tensor losses;               ///< [batch_size], detached
  at::Tensor norms;                ///< per-sample gradient norms before clipping [batch_size]
};

/// Computes private gradients for a model's trainable parameters.
class DPSGD {
 public:
  /// @throws Error when the options are invalid, or the model has no trainable parameters or
  /// holds BatchNorm.
  DPSGD(Model model, DPSGDOptions options);
  ~DPSGD();
  DPSGD(const DPSGD&) = delete;
  DPSGD& operator=(const DPSGD&) = delete;

  /// Sets every trainable parameter's `.grad()` to (Σᵢ clip(gᵢ) + N(0, σ²C² I)) /
  /// expected_batch_size for the `n` rows `losses` describes (n = 0: noise only, as a Poisson
  /// batch may be empty). The noise comes from `generator` (CPU), or the secure source.
  /// @throws Error when n < 0, expected_batch_size <= 0, or as PerSampleGradients.
  PrivateGradient gradient(int64_t n, const PerSampleLossFn& losses, double expected_batch_size,
                           at::Generator& generator);

  /// How the last gradient() handled each parameter.
  std::string summary() const;
  const DPSGDOptions& options() const { return options_; }
  /// Changes σ (the Trainer's calibration). @throws Error when σ < 0 or not finite.
  void set_noise_multiplier(double sigma);

 private:
  Model model_;
  DPSGDOptions options_;
  std::unique_ptr<PerSampleGradients> engine_;
};

/// `count` standard normal draws from the operating system's cryptographic random source
/// (getrandom, Box–Muller), as a double tensor on the CPU.
at::Tensor secure_standard_normal(int64_t count);

/// Poisson sampling (Abadi et al., as Opacus' DPDataLoader): each step includes every sample
/// independently with probability q, so batch sizes vary and can be 0; round(1/q) steps make
/// an epoch. This is the sampling the accountants assume.
class PoissonSampler {
 public:
  /// @throws Error when dataset_size < 1 or q outside (0, 1].
  PoissonSampler(int64_t dataset_size, double sample_rate, uint64_t seed = 0);
  int64_t steps_per_epoch() const;
  /// The index tensors [batch size] (int64) of every step of `epoch`; they depend only on
  /// (seed, epoch).
  std::vector<at::Tensor> epoch(int64_t epoch) const;
  double sample_rate() const { return rate_; }

 private:
  int64_t size_;
  double rate_;
  uint64_t seed_;
};

}  // namespace bulwark
