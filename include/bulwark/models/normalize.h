#pragma once
/// @file
/// Per-channel normalization as the first layer of a model, so attacks work in [0, 1] input space.

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace bulwark {

/// y = (x − mean[c]) / std[c] for each channel c of an input [N, C, ...]. The statistics are
/// buffers: saved with the model, moved with it, never trained.
class NormalizeImpl : public torch::nn::Module {
 public:
  /// @throws Error when mean and std differ in length, are empty, or std has an entry <= 0.
  NormalizeImpl(std::vector<double> mean, std::vector<double> std);
  at::Tensor forward(const at::Tensor& x);

 private:
  at::Tensor mean_, std_;
};
TORCH_MODULE(Normalize);

}  // namespace bulwark
