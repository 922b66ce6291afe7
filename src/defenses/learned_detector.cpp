#include "bulwark/defenses/learned_detector.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "bulwark/core/seed.h"
#include "bulwark/models/mlp.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/models/small_cnn.h"
#include "core/check.h"

namespace bulwark {
namespace {

std::vector<std::string> split_path(const std::string& layer) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= layer.size()) {
    const auto dot = layer.find('.', start);
    const auto end = dot == std::string::npos ? layer.size() : dot;
    parts.push_back(layer.substr(start, end - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

// The children of `module` in the order its forward runs them, when that order is known.
bool ordered_children(const std::shared_ptr<torch::nn::Module>& module,
                      std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>& out) {
  const bool known = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(module) ||
                     std::dynamic_pointer_cast<SmallCNNImpl>(module) ||
                     std::dynamic_pointer_cast<MLPImpl>(module);
  if (!known) return false;
  for (const auto& item : module->named_children()) out.emplace_back(item.key(), item.value());
  return true;
}

at::Tensor run_child(const std::shared_ptr<torch::nn::Module>& parent, size_t index,
                     const std::shared_ptr<torch::nn::Module>& child, const at::Tensor& x) {
  if (auto seq = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(parent)) {
    return (seq->begin() + static_cast<std::ptrdiff_t>(index))->forward(x);
  }
  // SmallCNN and MLP: every child is a Sequential.
  auto seq = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(child);
  BULWARK_CHECK(seq != nullptr, "layer_activations: cannot run child {} of '{}'", index,
                parent->name());
  return seq->forward(x);
}

at::Tensor run_until(const std::shared_ptr<torch::nn::Module>& module,
                     const std::vector<std::string>& path, size_t depth, const std::string& layer,
                     at::Tensor x) {
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> children;
  BULWARK_CHECK(ordered_children(module, children),
                "layer_activations: cannot look inside '{}' for layer '{}': only "
                "torch::nn::Sequential, SmallCNN and MLP containers are supported",
                module->name(), layer);
  for (size_t i = 0; i < children.size(); ++i) {
    if (children[i].first == path[depth]) {
      if (depth + 1 == path.size()) return run_child(module, i, children[i].second, x);
      return run_until(children[i].second, path, depth + 1, layer, x);
    }
    x = run_child(module, i, children[i].second, x);
  }
  std::vector<std::string> names;
  for (const auto& child : children) names.push_back(child.first);
  throw Error(fmt::format("layer_activations: '{}' has no child '{}' (layer '{}'); its children: {}",
                          module->name(), path[depth], layer, fmt::join(names, ", ")));
}

}  // namespace

at::Tensor layer_activations(const Model& classifier, const std::string& layer,
                             const at::Tensor& x) {
  if (layer.empty()) return x;
  const auto module = classifier.module();
  BULWARK_CHECK(module != nullptr,
                "layer_activations: '{}' is not a torch::nn module, so its layers cannot be "
                "reached; use the input (an empty layer)",
                classifier.name());
  return run_until(module, split_path(layer), 0, layer, x);
}

void LearnedDetectorOptions::validate() const {
  BULWARK_CHECK(epochs_ >= 1, "learned detector: epochs must be >= 1, got {}", epochs_);
  BULWARK_CHECK(batch_size_ >= 1, "learned detector: batch_size must be >= 1, got {}",
                batch_size_);
  BULWARK_CHECK(learning_rate_ > 0 && std::isfinite(learning_rate_),
                "learned detector: the learning rate must be finite and > 0, got {}",
                learning_rate_);
  for (const auto width : hidden_) {
    BULWARK_CHECK(width >= 1, "learned detector: hidden widths must be >= 1, got {}", width);
  }
}

LearnedDetector::LearnedDetector(Model classifier, Model network, std::string layer,
                                 std::string spec_json)
    : classifier_(std::move(classifier)),
      network_(std::move(network)),
      layer_(std::move(layer)),
      spec_json_(std::move(spec_json)) {}

LearnedDetector LearnedDetector::train(Model classifier, const at::Tensor& clean,
                                       const at::Tensor& adversarial,
                                       LearnedDetectorOptions options) {
  options.validate();
  BULWARK_CHECK(clean.defined() && adversarial.defined() && clean.dim() >= 2 &&
                    clean.size(0) > 0 && adversarial.size(0) > 0 &&
                    clean.sizes().slice(1) == adversarial.sizes().slice(1),
                "learned detector: needs non-empty clean and adversarial batches of the same "
                "input shape, got {} and {}",
                clean.defined() ? detail::shape_string(clean) : "undefined",
                adversarial.defined() ? detail::shape_string(adversarial) : "undefined");
  detail::check_finite("learned detector", "clean", clean);
  detail::check_finite("learned detector", "adversarial", adversarial);

  // Features once, with the classifier frozen in eval mode.
  at::Tensor features;
  {
    EvalModeGuard guard(classifier);
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> parts;
    const auto inputs = at::cat({clean, adversarial});
    for (int64_t start = 0; start < inputs.size(0); start += 256) {
      parts.push_back(layer_activations(classifier, options.layer(),
                                        inputs.slice(0, start, start + 256)));
    }
    features = at::cat(parts);
  }
  const auto labels =
      at::cat({at::zeros({clean.size(0)}, at::kLong), at::ones({adversarial.size(0)}, at::kLong)})
          .to(features.device());

  ModelSpec spec;
  spec.num_classes = 2;
  if (features.dim() == 4 && features.size(2) == features.size(3) && features.size(2) >= 16) {
    spec.arch = "small-cnn";
    spec.in_channels = features.size(1);
    spec.image_size = features.size(2);
  } else {
    spec.arch = "mlp";
    spec.in_channels = features[0].numel();
    spec.image_size = 1;
    spec.hidden = options.hidden();
  }
  torch::manual_seed(options.seed());
  auto network = make_model(spec);
  network.to(features.device());
  network.train();
  torch::optim::Adam optimizer(network.parameters(),
                               torch::optim::AdamOptions(options.learning_rate()));
  auto generator = make_generator(derive_seed(options.seed(), 1), c10::Device(c10::kCPU));
  const int64_t n = features.size(0);
  for (int64_t epoch = 0; epoch < options.epochs(); ++epoch) {
    const auto order = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong))
                           .to(features.device());
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t start = 0; start < n; start += options.batch_size()) {
      const auto index = order.slice(0, start, start + options.batch_size());
      auto input = features.index_select(0, index);
      if (spec.arch == "mlp") input = input.flatten(1);
      const auto target = labels.index_select(0, index);
      const auto logits = network.forward(input);
      const auto loss = torch::nn::functional::cross_entropy(logits, target);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(index.size(0));
      correct += (logits.argmax(1) == target).sum().item<int64_t>();
    }
    spdlog::debug("learned detector: epoch {}/{} loss {:.4f} accuracy {:.3f}", epoch + 1,
                  options.epochs(), loss_sum / static_cast<double>(n),
                  static_cast<double>(correct) / static_cast<double>(n));
  }
  network.eval();
  return LearnedDetector(std::move(classifier), std::move(network), options.layer(),
                         spec.to_json());
}

void LearnedDetector::save(const std::filesystem::path& path) const {
  const nlohmann::json metadata = {
      {"detector", "learned"}, {"layer", layer_}, {"threshold", threshold()}};
  save_model(network_, ModelSpec::from_json(spec_json_), path, metadata.dump());
}

LearnedDetector LearnedDetector::load(const std::filesystem::path& path, Model classifier,
                                      c10::Device device) {
  auto loaded = load_model(path, device);
  BULWARK_CHECK(loaded.spec.has_value() && !loaded.metadata.empty(),
                "LearnedDetector::load: '{}' is a model, not a detector written by "
                "LearnedDetector::save",
                path.string());
  nlohmann::json metadata;
  try {
    metadata = nlohmann::json::parse(loaded.metadata);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("LearnedDetector::load: '{}' has malformed metadata: {}",
                            path.string(), e.what()));
  }
  BULWARK_CHECK(metadata.value("detector", "") == "learned" && metadata.contains("layer") &&
                    metadata["layer"].is_string(),
                "LearnedDetector::load: '{}' is not a learned detector", path.string());
  LearnedDetector detector(std::move(classifier), loaded.model, metadata["layer"].get<std::string>(),
                           loaded.spec->to_json());
  // JSON has no infinity: an uncalibrated threshold was written as null.
  if (metadata.contains("threshold") && metadata["threshold"].is_number()) {
    detector.set_threshold(metadata["threshold"].get<double>());
  }
  detector.network_.eval();
  return detector;
}

at::Tensor LearnedDetector::adaptive_score(const at::Tensor& x) {
  auto features = layer_activations(classifier_, layer_, x);
  if (features.dim() != 4) features = features.flatten(1);
  const auto logits = network_.forward(features);
  return logits.select(1, 1) - logits.select(1, 0);
}

at::Tensor LearnedDetector::score(const at::Tensor& x) {
  BULWARK_CHECK(x.defined() && x.dim() >= 2, "learned detector: x must be a batch [N, ...]");
  detail::check_finite("learned detector", "x", x);
  EvalModeGuard guard(classifier_);
  EvalModeGuard network_guard(network_);
  torch::NoGradGuard no_grad;
  return adaptive_score(x).to(at::kDouble).cpu();
}

}  // namespace bulwark
