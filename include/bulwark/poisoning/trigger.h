#pragma once
/// @file
/// Backdoor triggers: a patch stamped at a fixed place (BadNets, Gu et al. 2017) or a full-image
/// pattern mixed in at a ratio (the blended trigger of Chen et al. 2017).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace bulwark {

class Trigger {
 public:
  /// A patch `pattern` [C, h, w] (or [h, w] for one channel) whose top-left corner goes to
  /// (row, col); row = col = −1 puts it in the bottom-right corner, one pixel from the edges.
  /// @throws Error when the pattern is empty or not finite.
  static Trigger patch(at::Tensor pattern, int64_t row = -1, int64_t col = -1);
  /// A checkerboard patch of side `size` (values 0 and 1, 1 in the top-left corner): BadNets'
  /// usual trigger.
  static Trigger checkerboard(int64_t size, int64_t channels = 1, int64_t row = -1,
                              int64_t col = -1);
  /// x ← (1 − alpha) x + alpha · pattern, with `pattern` [C, H, W] the size of the images.
  /// @throws Error when alpha is outside (0, 1] or the pattern is empty or not finite.
  static Trigger blend(at::Tensor pattern, double alpha);

  /// The images [N, C, H, W] with the trigger applied (a new tensor; the input is unchanged).
  /// @throws Error when the images are not [N, C, H, W], or the trigger does not fit them
  /// (patch larger than the image or off its edge, blend pattern of another shape or channel
  /// count).
  at::Tensor apply(const at::Tensor& images) const;

  /// "patch 3x3 at (24, 24)" or "blend alpha 0.1".
  std::string describe() const;

  bool is_patch() const { return alpha_ == 0; }
  const at::Tensor& pattern() const { return pattern_; }
  double alpha() const { return alpha_; }

 private:
  Trigger(at::Tensor pattern, int64_t row, int64_t col, double alpha);
  at::Tensor pattern_;  // [C, h, w]
  int64_t row_ = -1, col_ = -1;
  double alpha_ = 0;  // 0: a patch
};

}  // namespace bulwark
