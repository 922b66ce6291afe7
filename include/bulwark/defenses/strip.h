#pragma once
/// @file
/// STRIP (Gao et al. 2019): a backdoor trigger dominates whatever it is stamped on, so an input
/// carrying one keeps its (target) prediction when held-out clean images are superimposed on
/// it, while a clean input's prediction scatters. STRIP superimposes `overlays` clean images on
/// each input, averages the Shannon entropy (bits) of the model's prediction over them, and
/// flags inputs whose entropy is abnormally low.
///
/// The score is the entropy deficit log2(K) − H̄ (K classes), so that, as for every `Detector`,
/// higher means more suspicious; a threshold calibrated for a false-positive rate r is the
/// false-rejection rate r of the paper. The paper fits a normal distribution to the clean
/// entropies and takes its r-quantile; `calibrate` takes the empirical quantile instead (no
/// assumption on the shape of the distribution).
///
/// Superimposition follows Gao et al.'s code, cv2.addWeighted(x, 1, overlay, 1, 0) on 8-bit
/// images, which saturates: the sum clamped into the input box (`saturate`); `input_weight`
/// and `overlay_weight` are those two weights (IBM ART averages, 0.5 and 0.5, unclamped).
/// ART's entropy differs from the paper's (it normalises each class's probabilities across
/// the overlays); this is the paper's, per overlay over classes.
#include <ATen/core/Tensor.h>
#include <ATen/core/Generator.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/defenses/detector.h"

namespace bulwark {

struct StripOptions {
  /// Clean images superimposed on each input (Gao et al.: 100; ART: 20).
  TORCH_ARG(int64_t, overlays) = 100;
  /// Overlays per input the adaptive score averages over (fresh draws at each call).
  TORCH_ARG(int64_t, adaptive_overlays) = 16;
  /// x' = input_weight · x + overlay_weight · overlay (Gao et al.: 1 and 1).
  TORCH_ARG(double, input_weight) = 1.0;
  TORCH_ARG(double, overlay_weight) = 1.0;
  /// Clamp each superimposition into `box`, as the authors' sum saturates on their 8-bit
  /// images (cv2.addWeighted on uint8). On the BadNets reference model this flags 98.2% of
  /// the triggered inputs at 1% false rejection, the unclipped float sum 75.4%.
  TORCH_ARG(bool, saturate) = true;
  TORCH_ARG(InputBox, box) = InputBox();
  /// Superimposed images per forward pass. Larger passes are not faster: at 1024 SmallCNN's
  /// activations pass 32 MB per layer, glibc maps and unmaps them on every pass, and STRIP ran
  /// at 1.7x its floor of `overlays` forward passes.
  TORCH_ARG(int64_t, batch_size) = 256;
  /// Seed of the overlay draws; each call continues the same stream.
  TORCH_ARG(uint64_t, seed) = 0;

 public:
  /// @throws Error when overlays, adaptive_overlays or batch_size < 1, or a weight is not
  /// finite or both are zero.
  void validate() const;
};

class Strip : public Detector {
 public:
  /// `held_out` [M, ...]: clean images the defender trusts (not from the training set an
  /// attacker could touch), of the model's input shape; each input draws its overlays from
  /// them, uniformly with replacement.
  /// @throws Error when the options are invalid or held_out is empty, not floating point or
  /// not finite.
  Strip(Model model, at::Tensor held_out, StripOptions options = {});
  std::string name() const override { return "strip"; }
  /// log2(K) − mean entropy over `overlays` superimpositions, [N] double on the CPU.
  /// @throws Error when x is not a batch of the held-out images' shape, or not finite.
  at::Tensor score(const at::Tensor& x) override;
  /// The same with `adaptive_overlays` fresh draws, differentiable in x.
  at::Tensor adaptive_score(const at::Tensor& x) override;
  /// Mean prediction entropy in bits over `overlays` superimpositions, [N] double on the CPU.
  at::Tensor entropy(const at::Tensor& x);
  const StripOptions& options() const { return options_; }

 private:
  // Mean entropy (bits) over `overlays` superimpositions, in x's dtype, with gradients when
  // the caller allows them.
  at::Tensor mean_entropy(const at::Tensor& x, int64_t overlays);
  void check_batch(const at::Tensor& x) const;
  Model model_;
  at::Tensor held_out_;
  StripOptions options_;
  at::Generator generator_;
  int64_t classes_ = 0;  // the model's output width, read at each forward pass
};

}  // namespace bulwark
