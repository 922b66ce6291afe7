#pragma once
/// @file
/// A learned detector: a binary classifier (clean vs adversarial) on the inputs or on the
/// activations of one of the classifier's layers (Metzen et al. 2017; Grosse et al. 2017 in
/// its input-space form), trained on adversarial examples made with Bulwark's attacks.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/arg.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/defenses/detector.h"

namespace bulwark {

/// The activations of `layer` of `classifier` for x: the classifier's module is run up to and
/// including that layer. `layer` is a dotted path of child names ("net.features" for the
/// built-in SmallCNN: its convolutional features, flattened). Containers along the path must
/// be `torch::nn::Sequential` or the built-in SmallCNN / MLP, whose children run in order.
/// An empty layer returns x. Differentiable with respect to x.
/// @throws Error when the model is not a torch::nn module (TorchScript, function) or the path
/// does not name a layer reachable this way.
at::Tensor layer_activations(const Model& classifier, const std::string& layer,
                             const at::Tensor& x);

struct LearnedDetectorOptions {
  /// "" (default): the detector reads the input images (a SmallCNN with two outputs for images
  /// of at least 16×16, else an MLP); otherwise the activations of this layer (an MLP).
  TORCH_ARG(std::string, layer) = "";
  /// Hidden widths of the MLP detector.
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{256};
  TORCH_ARG(int64_t, epochs) = 10;
  TORCH_ARG(int64_t, batch_size) = 128;
  /// Adam's learning rate.
  TORCH_ARG(double, learning_rate) = 1e-3;
  /// Seeds the detector's initial weights (through LibTorch's global generator, which
  /// make_model draws from) and the shuffling.
  TORCH_ARG(uint64_t, seed) = 0;

 public:
  /// @throws Error when epochs, batch_size or a hidden width is < 1, or the rate is not > 0.
  void validate() const;
};

/// Score: the detector's log-odds log p(adversarial) − log p(clean). The adaptive score is the
/// same, with its gradient (the detector is differentiable end to end).
class LearnedDetector : public Detector {
 public:
  /// Trains a detector on `clean` (label 0) and `adversarial` (label 1) inputs of `classifier`.
  /// @throws Error when the sets are empty, differ in shape or the options are invalid.
  static LearnedDetector train(Model classifier, const at::Tensor& clean,
                               const at::Tensor& adversarial, LearnedDetectorOptions options = {});
  /// Reads a detector written by save(); `classifier` is the model it watches.
  /// @throws Error when the file is missing, corrupt or not a detector.
  static LearnedDetector load(const std::filesystem::path& path, Model classifier,
                              c10::Device device = c10::Device(c10::kCPU));
  /// Writes the detector network, its layer and threshold atomically, as a model file.
  void save(const std::filesystem::path& path) const;

  std::string name() const override { return "learned"; }
  at::Tensor score(const at::Tensor& x) override;
  at::Tensor adaptive_score(const at::Tensor& x) override;
  const std::string& layer() const { return layer_; }
  /// The binary classifier (output 1: adversarial).
  Model& network() { return network_; }

 private:
  LearnedDetector(Model classifier, Model network, std::string layer, std::string spec_json);
  Model classifier_;
  Model network_;
  std::string layer_;
  std::string spec_json_;
};

}  // namespace bulwark
