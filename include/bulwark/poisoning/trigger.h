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
  /// A trigger from its command-line spelling: "checkerboard:<size>" or "square:<size>" (a
  /// white square), each optionally followed by "@<row>,<col>" (default: the bottom-right
  /// corner). One channel, applied to every channel of the images.
  /// @throws Error naming the accepted forms when the spec is not one of them.
  static Trigger parse(const std::string& spec);
  /// x ← (1 − alpha) x + alpha · pattern, with `pattern` [C, H, W] the size of the images.
  /// @throws Error when alpha is outside (0, 1] or the pattern is empty or not finite.
  static Trigger blend(at::Tensor pattern, double alpha);

  /// x ← (1 − mask) · x + mask · pattern, with `mask` [H, W] (or [1, H, W]) in [0, 1] and
  /// `pattern` [C, H, W] the size of the images: the trigger Neural Cleanse reverse-engineers.
  /// @throws Error when either is empty or not finite, the mask leaves [0, 1], or their
  /// sizes differ.
  static Trigger masked(at::Tensor mask, at::Tensor pattern);
  /// The images [N, C, H, W] with the trigger applied (a new tensor; the input is unchanged).
  /// @throws Error when the images are not [N, C, H, W], or the trigger does not fit them
  /// (patch larger than the image or off its edge, blend pattern of another shape or channel
  /// count).
  at::Tensor apply(const at::Tensor& images) const;

  /// "patch 3x3 at (24, 24)", "blend alpha 0.1" or "mask of L1 norm 9.2".
  std::string describe() const;

  bool is_patch() const { return alpha_ == 0 && !mask_.defined(); }
  bool is_masked() const { return mask_.defined(); }
  /// The mask of a masked trigger ([1, H, W]; undefined otherwise).
  const at::Tensor& mask() const { return mask_; }
  const at::Tensor& pattern() const { return pattern_; }
  double alpha() const { return alpha_; }

 private:
  Trigger(at::Tensor pattern, int64_t row, int64_t col, double alpha);
  at::Tensor pattern_;  // [C, h, w]
  int64_t row_ = -1, col_ = -1;
  double alpha_ = 0;  // 0: a patch (or a masked trigger when mask_ is defined)
  at::Tensor mask_;   // [1, H, W]: a masked trigger
};

}  // namespace bulwark
