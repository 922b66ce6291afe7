#pragma once
/// @file
/// The small tanh CNN of Papernot et al. 2021 ("Tempered sigmoid activations for deep learning
/// with differential privacy") for 28×28 inputs, the network of their DP-SGD MNIST and
/// Fashion-MNIST results (and of Opacus' MNIST example, with ReLU there).

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>

namespace bulwark {

struct TanhCNNOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, num_classes) = 10;
  /// Height and width of the (square) input; 28 for MNIST and Fashion-MNIST.
  TORCH_ARG(int64_t, image_size) = 28;
};

/// conv8×8(16, stride 2, pad 3) → tanh → maxpool2 (stride 1) → conv4×4(32, stride 2) → tanh →
/// maxpool2 (stride 1) → FC(32) → tanh → FC(num_classes): 26 000 parameters for 28×28, no
/// layer that mixes samples. Bounded activations keep the gradient norms from exploding,
/// which is what clipping needs (Papernot et al.).
class TanhCNNImpl : public torch::nn::Module {
 public:
  /// @throws Error when a size is < 1 or image_size < 16.
  explicit TanhCNNImpl(const TanhCNNOptions& options = {});
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Sequential layers_{nullptr};
  TanhCNNOptions options_;
};
TORCH_MODULE(TanhCNN);

}  // namespace bulwark
