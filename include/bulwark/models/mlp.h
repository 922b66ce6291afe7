#pragma once
/// @file
/// A multi-layer perceptron classifier over flattened inputs.

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>

#include <vector>

namespace bulwark {

struct MLPOptions {
  MLPOptions(int64_t in_features, int64_t num_classes)
      : in_features_(in_features), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, num_classes);
  /// Widths of the hidden layers, each followed by ReLU.
  TORCH_ARG(std::vector<int64_t>, hidden) = {256, 256};
};

/// Flatten → (Linear → ReLU) per hidden layer → Linear to logits.
class MLPImpl : public torch::nn::Module {
 public:
  /// @throws Error when a size is < 1.
  explicit MLPImpl(const MLPOptions& options);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Sequential layers_{nullptr};
};
TORCH_MODULE(MLP);

}  // namespace bulwark
