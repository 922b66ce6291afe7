#pragma once
/// @file
/// The small CNN used for MNIST-sized inputs in the adversarial-robustness literature.

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>

namespace bulwark {

struct SmallCNNOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, num_classes) = 10;
  /// Height and width of the (square) input; 28 for MNIST and Fashion-MNIST.
  TORCH_ARG(int64_t, image_size) = 28;
};

/// The SmallCNN of TRADES (Zhang et al. 2019) for 28×28 inputs, without its dropout:
/// conv3×3(32) → ReLU → conv3×3(32) → ReLU → maxpool2 → conv3×3(64) → ReLU → conv3×3(64) →
/// ReLU → maxpool2 → FC(200) → ReLU → FC(200) → ReLU → FC(num_classes). No layer mixes samples,
/// so it also serves per-sample-gradient (DP-SGD) training.
class SmallCNNImpl : public torch::nn::Module {
 public:
  /// @throws Error when a size is < 1 or image_size < 16 (too small for the two poolings).
  explicit SmallCNNImpl(const SmallCNNOptions& options = {});
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Sequential features_{nullptr};
  torch::nn::Sequential classifier_{nullptr};
  SmallCNNOptions options_;
};
TORCH_MODULE(SmallCNN);

}  // namespace bulwark
