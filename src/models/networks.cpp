// The built-in networks: Normalize, MLP, SmallCNN, ResNet.
#include <torch/torch.h>

#include "bulwark/models/mlp.h"
#include "bulwark/models/normalize.h"
#include "bulwark/models/resnet.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/models/tanh_cnn.h"
#include "core/check.h"

namespace bulwark {
namespace nn = torch::nn;

NormalizeImpl::NormalizeImpl(std::vector<double> mean, std::vector<double> std) {
  BULWARK_CHECK(!mean.empty() && mean.size() == std.size(),
                "Normalize: mean and std need one entry per channel, got {} and {}", mean.size(),
                std.size());
  for (size_t c = 0; c < std.size(); ++c) {
    BULWARK_CHECK(std[c] > 0, "Normalize: std[{}] must be > 0, got {}", c, std[c]);
  }
  const auto channels = static_cast<int64_t>(mean.size());
  auto options = at::TensorOptions().dtype(at::kFloat);
  mean_ = register_buffer("mean", torch::tensor(mean, options).reshape({1, channels, 1, 1}));
  std_ = register_buffer("std", torch::tensor(std, options).reshape({1, channels, 1, 1}));
}

at::Tensor NormalizeImpl::forward(const at::Tensor& x) {
  BULWARK_CHECK(x.dim() == 4 && x.size(1) == mean_.size(1),
                "Normalize: input must be [N, {}, H, W], got {}", mean_.size(1),
                detail::shape_string(x));
  return (x - mean_.to(x.dtype())) / std_.to(x.dtype());
}

MLPImpl::MLPImpl(const MLPOptions& options) {
  BULWARK_CHECK(options.in_features() >= 1 && options.num_classes() >= 1,
                "MLP: in_features and num_classes must be >= 1, got {} and {}",
                options.in_features(), options.num_classes());
  layers_ = nn::Sequential(nn::Flatten());
  int64_t width = options.in_features();
  for (const auto hidden : options.hidden()) {
    BULWARK_CHECK(hidden >= 1, "MLP: hidden widths must be >= 1, got {}", hidden);
    layers_->push_back(nn::Linear(width, hidden));
    layers_->push_back(nn::ReLU());
    width = hidden;
  }
  layers_->push_back(nn::Linear(width, options.num_classes()));
  register_module("layers", layers_);
}

at::Tensor MLPImpl::forward(const at::Tensor& x) { return layers_->forward(x); }

SmallCNNImpl::SmallCNNImpl(const SmallCNNOptions& options) : options_(options) {
  BULWARK_CHECK(options.in_channels() >= 1 && options.num_classes() >= 1,
                "SmallCNN: in_channels and num_classes must be >= 1, got {} and {}",
                options.in_channels(), options.num_classes());
  BULWARK_CHECK(options.image_size() >= 16, "SmallCNN: image_size must be >= 16, got {}",
                options.image_size());
  features_ = nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(options.in_channels(), 32, 3)), nn::ReLU(),
      nn::Conv2d(nn::Conv2dOptions(32, 32, 3)), nn::ReLU(), nn::MaxPool2d(2),
      nn::Conv2d(nn::Conv2dOptions(32, 64, 3)), nn::ReLU(),
      nn::Conv2d(nn::Conv2dOptions(64, 64, 3)), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten());
  const int64_t side = ((options.image_size() - 4) / 2 - 4) / 2;
  classifier_ = nn::Sequential(nn::Linear(64 * side * side, 200), nn::ReLU(),
                               nn::Linear(200, 200), nn::ReLU(),
                               nn::Linear(200, options.num_classes()));
  register_module("features", features_);
  register_module("classifier", classifier_);
}

at::Tensor SmallCNNImpl::forward(const at::Tensor& x) {
  BULWARK_CHECK(x.dim() == 4 && x.size(1) == options_.in_channels() &&
                    x.size(2) == options_.image_size() && x.size(3) == options_.image_size(),
                "SmallCNN: input must be [N, {}, {}, {}], got {}", options_.in_channels(),
                options_.image_size(), options_.image_size(), detail::shape_string(x));
  return classifier_->forward(features_->forward(x));
}

TanhCNNImpl::TanhCNNImpl(const TanhCNNOptions& options) : options_(options) {
  BULWARK_CHECK(options.in_channels() >= 1 && options.num_classes() >= 1,
                "TanhCNN: in_channels and num_classes must be >= 1, got {} and {}",
                options.in_channels(), options.num_classes());
  BULWARK_CHECK(options.image_size() >= 16, "TanhCNN: image_size must be >= 16, got {}",
                options.image_size());
  const int64_t first = (options.image_size() + 2 * 3 - 8) / 2 + 1 - 1;  // conv, then pool
  const int64_t second = (first - 4) / 2 + 1 - 1;
  layers_ = nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(options.in_channels(), 16, 8).stride(2).padding(3)),
      nn::Tanh(), nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(1)),
      nn::Conv2d(nn::Conv2dOptions(16, 32, 4).stride(2)), nn::Tanh(),
      nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(1)), nn::Flatten(),
      nn::Linear(32 * second * second, 32), nn::Tanh(), nn::Linear(32, options.num_classes()));
  register_module("layers", layers_);
}

at::Tensor TanhCNNImpl::forward(const at::Tensor& x) {
  BULWARK_CHECK(x.dim() == 4 && x.size(1) == options_.in_channels() &&
                    x.size(2) == options_.image_size() && x.size(3) == options_.image_size(),
                "TanhCNN: input must be [N, {}, {}, {}], got {}", options_.in_channels(),
                options_.image_size(), options_.image_size(), detail::shape_string(x));
  return layers_->forward(x);
}

namespace {

// Basic residual block (He et al. 2016): two 3×3 convolutions with BN, identity or 1×1
// projection shortcut.
class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    conv1_ = register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    bn1_ = register_module("bn1", nn::BatchNorm2d(out));
    conv2_ = register_module(
        "conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    bn2_ = register_module("bn2", nn::BatchNorm2d(out));
    if (stride != 1 || in != out) {
      shortcut_ = register_module(
          "shortcut",
          nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                         nn::BatchNorm2d(out)));
    }
  }
  at::Tensor forward(const at::Tensor& x) {
    auto y = torch::relu(bn1_->forward(conv1_->forward(x)));
    y = bn2_->forward(conv2_->forward(y));
    return torch::relu(y + (shortcut_ ? shortcut_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

}  // namespace

ResNetImpl::ResNetImpl(const ResNetOptions& options) {
  BULWARK_CHECK(options.depth() >= 8 && (options.depth() - 2) % 6 == 0,
                "ResNet: depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {}",
                options.depth());
  BULWARK_CHECK(options.in_channels() >= 1 && options.num_classes() >= 1 &&
                    options.base_width() >= 1,
                "ResNet: in_channels, num_classes and base_width must be >= 1");
  const int64_t blocks = (options.depth() - 2) / 6;
  const int64_t w = options.base_width();
  body_ = nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(options.in_channels(), w, 3).padding(1).bias(false)),
      nn::BatchNorm2d(w), nn::ReLU());
  int64_t in = w;
  for (int64_t stage = 0; stage < 3; ++stage) {
    const int64_t out = w << stage;
    for (int64_t b = 0; b < blocks; ++b) {
      body_->push_back(BasicBlock(in, out, (stage > 0 && b == 0) ? 2 : 1));
      in = out;
    }
  }
  body_->push_back(nn::AdaptiveAvgPool2d(1));
  body_->push_back(nn::Flatten());
  head_ = nn::Linear(in, options.num_classes());
  register_module("body", body_);
  register_module("head", head_);
}

at::Tensor ResNetImpl::forward(const at::Tensor& x) {
  BULWARK_CHECK(x.dim() == 4, "ResNet: input must be [N, C, H, W], got {}",
                detail::shape_string(x));
  return head_->forward(body_->forward(x));
}

}  // namespace bulwark
