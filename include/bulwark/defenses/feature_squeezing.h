#pragma once
/// @file
/// Feature squeezing (Xu, Evans and Qi, NDSS 2018): an input whose prediction moves a lot when
/// it is squeezed (fewer bits per pixel, a median filter) is flagged as adversarial.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/defenses/detector.h"

namespace bulwark {

/// Rounds x to 2^bits evenly spaced levels of the box: with v = (x − lower) / (upper − lower),
/// round(v · (2^bits − 1)) / (2^bits − 1), mapped back to the box. Idempotent.
/// @throws Error when bits is not in [1, 24] or x is not floating point.
at::Tensor reduce_bit_depth(const at::Tensor& x, int64_t bits, const InputBox& box = {});

/// One squeezer: bit-depth reduction or a k×k median filter (`ops::median_filter`).
struct Squeezer {
  enum class Kind { BitDepth, Median };
  Kind kind = Kind::BitDepth;
  int64_t value = 1;  ///< bits, or the median window

  static Squeezer bit_depth(int64_t bits) { return {Kind::BitDepth, bits}; }
  static Squeezer median(int64_t window) { return {Kind::Median, window}; }
  /// "bits:1" or "median:2". @throws Error otherwise.
  static Squeezer parse(std::string_view text);
  /// "bits:1", "median:2".
  std::string to_string() const;
  /// The squeezed x [N, C, H, W] (median: per plane). Not differentiable.
  at::Tensor apply(const at::Tensor& x, const InputBox& box) const;
  /// @throws Error when bits is not in [1, 24] or the window is not in [1, 11].
  void validate() const;
};

struct FeatureSqueezingOptions {
  /// Xu et al.'s joint detector for MNIST: 1-bit depth and a 2×2 median filter. (For CIFAR-10
  /// they used 5 bits and a 2×2 median.)
  TORCH_ARG(std::vector<Squeezer>, squeezers) =
      std::vector<Squeezer>{Squeezer::bit_depth(1), Squeezer::median(2)};
  TORCH_ARG(InputBox, box) = InputBox();
};

/// Score: the largest L1 distance between the model's softmax on the input and on each
/// squeezed version (in [0, 2]). The adaptive score replaces each squeezer by the identity on
/// the backward pass (BPDA, Athalye et al. 2018), so an attack can drive all the versions to
/// the same wrong class.
class FeatureSqueezing : public Detector {
 public:
  /// @throws Error when there is no squeezer or one is invalid.
  FeatureSqueezing(Model model, FeatureSqueezingOptions options = {});
  std::string name() const override { return "feature-squeezing"; }
  at::Tensor score(const at::Tensor& x) override;
  at::Tensor adaptive_score(const at::Tensor& x) override;
  const FeatureSqueezingOptions& options() const { return options_; }

 private:
  at::Tensor distance(const at::Tensor& x, bool bpda);
  Model model_;
  FeatureSqueezingOptions options_;
};

}  // namespace bulwark
