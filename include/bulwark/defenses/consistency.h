#pragma once
/// @file
/// Output-consistency check: an input whose prediction is unstable under small Gaussian noise
/// is flagged (the prediction-stability test of Hu et al. 2019 and of "the odds are odd",
/// Roth et al. 2019, in its simplest form).
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/defenses/detector.h"

namespace bulwark {

struct ConsistencyOptions {
  /// Standard deviation of the noise, in input units.
  TORCH_ARG(double, sigma) = 0.1;
  /// Noisy copies per input.
  TORCH_ARG(int64_t, samples) = 32;
  /// Noisy copies per input that the adaptive score averages over (EOT).
  TORCH_ARG(int64_t, adaptive_samples) = 8;
  /// Clamp the noisy copies into the box.
  TORCH_ARG(bool, clamp) = true;
  TORCH_ARG(InputBox, box) = InputBox();
  /// Seed of the noise; each call to `score` continues the same stream.
  TORCH_ARG(uint64_t, seed) = 0;

 public:
  /// @throws Error when sigma <= 0 or not finite, or samples or adaptive_samples < 1.
  void validate() const;
};

/// Score: 1 − agreement, where agreement is the fraction of the noisy copies classified as
/// the input itself is (in [0, 1]; a threshold at 0.5 flags inputs with agreement under one
/// half). The adaptive score (EOT over the noise) is the mean half-L1 distance between the
/// softmax on the input and on each of `adaptive_samples` fresh noisy copies.
class ConsistencyCheck : public Detector {
 public:
  /// @throws Error when the options are invalid.
  ConsistencyCheck(Model model, ConsistencyOptions options = {});
  std::string name() const override { return "consistency"; }
  at::Tensor score(const at::Tensor& x) override;
  at::Tensor adaptive_score(const at::Tensor& x) override;
  /// Agreement [N] (double, CPU): the fraction of noisy copies with the input's prediction.
  at::Tensor agreement(const at::Tensor& x);
  const ConsistencyOptions& options() const { return options_; }

 private:
  at::Tensor noisy(const at::Tensor& x, int64_t copies);
  Model model_;
  ConsistencyOptions options_;
  at::Generator generator_;
};

}  // namespace bulwark
