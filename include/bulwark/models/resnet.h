#pragma once
/// @file
/// The CIFAR ResNet family for 32×32 inputs (He et al. 2016, section 4.2).

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

namespace bulwark {

struct ResNetOptions {
  /// 6n + 2 layers: 20 (ResNet-20), 32, 44, 56, 110.
  TORCH_ARG(int64_t, depth) = 20;
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, num_classes) = 10;
  /// Channels of the first stage; the second and third stages double it twice (16, 32, 64).
  TORCH_ARG(int64_t, base_width) = 16;
};

/// conv3×3 → BN → ReLU → three stages of n basic blocks (strides 1, 2, 2) → global average
/// pool → FC. Uses BatchNorm, so it is not suited to DP-SGD as is.
class ResNetImpl : public torch::nn::Module {
 public:
  /// @throws Error when depth is not 6n + 2 with n >= 1, or a size is < 1.
  explicit ResNetImpl(const ResNetOptions& options = {});
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Sequential body_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace bulwark
