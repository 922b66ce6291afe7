#include "bulwark/eval/accuracy.h"

#include <torch/torch.h>

#include <chrono>
#include <limits>

#include "core/check.h"

namespace bulwark {

at::Tensor predict_logits(Model& model, const at::Tensor& inputs, int64_t batch_size) {
  BULWARK_CHECK(batch_size >= 1, "predict: batch_size must be >= 1, got {}", batch_size);
  detail::check_float_tensor("predict", "inputs", inputs);
  EvalModeGuard eval_mode(model);
  torch::NoGradGuard no_grad;
  const auto device = model.device();
  std::vector<at::Tensor> logits;
  for (int64_t begin = 0; begin < inputs.size(0); begin += batch_size) {
    const auto batch = inputs.slice(0, begin, begin + batch_size).to(device);
    logits.push_back(model.forward(batch).cpu());
  }
  if (logits.empty()) return at::empty({0, 0});
  return at::cat(logits);
}

at::Tensor predict(Model& model, const at::Tensor& inputs, int64_t batch_size) {
  const auto logits = predict_logits(model, inputs, batch_size);
  if (logits.size(0) == 0) return at::empty({0}, at::kLong);
  return logits.argmax(1);
}

AccuracyReport clean_accuracy(Model& model, const Dataset& data, int64_t batch_size) {
  BULWARK_CHECK(data.size() > 0, "clean_accuracy: the dataset '{}' is empty", data.name);
  BULWARK_CHECK(batch_size >= 1, "clean_accuracy: batch_size must be >= 1, got {}", batch_size);
  const auto start = std::chrono::steady_clock::now();
  EvalModeGuard eval_mode(model);
  torch::NoGradGuard no_grad;
  const auto device = model.device();
  const auto max_label = data.labels.max().item<int64_t>();
  auto correct_per_class = at::zeros({data.num_classes}, at::kLong);
  auto total_per_class = at::zeros({data.num_classes}, at::kLong);
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const auto inputs = data.images.slice(0, begin, begin + batch_size).to(device);
    const auto labels = data.labels.slice(0, begin, begin + batch_size).cpu();
    const auto logits = model.forward(inputs);
    BULWARK_CHECK(logits.size(1) > max_label,
                  "clean_accuracy: the model gives {} logits but '{}' has labels up to {}",
                  logits.size(1), data.name, max_label);
    const auto hit = logits.argmax(1).cpu().eq(labels).to(at::kLong);
    total_per_class.index_add_(0, labels, at::ones_like(labels));
    correct_per_class.index_add_(0, labels, hit);
  }
  AccuracyReport report;
  report.correct = correct_per_class.sum().item<int64_t>();
  report.total = data.size();
  report.accuracy = static_cast<double>(report.correct) / static_cast<double>(report.total);
  for (int64_t c = 0; c < data.num_classes; ++c) {
    const auto total = total_per_class[c].item<int64_t>();
    report.per_class_accuracy.push_back(
        total == 0 ? std::numeric_limits<double>::quiet_NaN()
                   : static_cast<double>(correct_per_class[c].item<int64_t>()) /
                         static_cast<double>(total));
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.samples_per_second = static_cast<double>(report.total) / std::max(report.seconds, 1e-9);
  return report;
}

}  // namespace bulwark
