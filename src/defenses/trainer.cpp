#include "bulwark/defenses/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include "bulwark/core/losses.h"
#include "core/check.h"

namespace bulwark {

OptimizerKind parse_optimizer(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "sgd") return OptimizerKind::SGD;
  if (lower == "adam") return OptimizerKind::Adam;
  throw Error(fmt::format("parse_optimizer: expected 'sgd' or 'adam', got '{}'", text));
}

Trainer::Trainer(Model model, TrainerOptions options)
    : model_(std::move(model)), options_(options) {
  BULWARK_CHECK(options_.epochs() >= 1, "Trainer: epochs must be >= 1, got {}", options_.epochs());
  BULWARK_CHECK(options_.batch_size() >= 1, "Trainer: batch_size must be >= 1, got {}",
                options_.batch_size());
  BULWARK_CHECK(options_.learning_rate() > 0 && std::isfinite(options_.learning_rate()),
                "Trainer: learning_rate must be finite and > 0, got {}", options_.learning_rate());
  BULWARK_CHECK(options_.momentum() >= 0, "Trainer: momentum must be >= 0, got {}",
                options_.momentum());
  BULWARK_CHECK(options_.weight_decay() >= 0, "Trainer: weight_decay must be >= 0, got {}",
                options_.weight_decay());
  const auto params = model_.parameters();
  BULWARK_CHECK(std::any_of(params.begin(), params.end(),
                            [](const at::Tensor& p) { return p.requires_grad(); }),
                "Trainer: the model '{}' has no trainable parameters", model_.name());
}

void Trainer::on_batch(std::function<void(const BatchProgress&)> callback) {
  on_batch_ = std::move(callback);
}

void Trainer::on_epoch(std::function<void(const EpochMetrics&)> callback) {
  on_epoch_ = std::move(callback);
}

std::vector<EpochMetrics> Trainer::fit(const Dataset& train) {
  BULWARK_CHECK(train.size() > 0, "Trainer::fit: the training set '{}' is empty", train.name);
  std::vector<at::Tensor> params;
  for (const auto& p : model_.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (options_.optimizer() == OptimizerKind::SGD) {
    optimizer = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(options_.learning_rate())
                    .momentum(options_.momentum())
                    .weight_decay(options_.weight_decay()));
  } else {
    optimizer = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(options_.learning_rate())
                    .weight_decay(options_.weight_decay()));
  }

  const bool was_training = model_.is_training();
  model_.train(true);
  const auto device = model_.device();
  BatchLoader loader(train, BatchLoaderOptions(options_.batch_size()).shuffle(true).seed(
                                options_.seed()));
  std::vector<EpochMetrics> history;
  try {
    for (int64_t epoch = 0; epoch < options_.epochs(); ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      loader.start_epoch(epoch);
      double loss_sum = 0;
      int64_t correct = 0, seen = 0;
      while (auto batch = loader.next()) {
        const auto inputs = batch->inputs.to(device);
        const auto labels = batch->labels.to(device);
        optimizer->zero_grad();
        const auto logits = model_.forward(inputs);
        const auto loss = cross_entropy(logits, labels);
        const double loss_value = loss.item<double>();
        BULWARK_CHECK(std::isfinite(loss_value),
                      "Trainer::fit: the loss became {} at epoch {} batch {}; lower the learning "
                      "rate (now {})",
                      loss_value, epoch, batch->index, options_.learning_rate());
        loss.backward();
        optimizer->step();
        const auto n = inputs.size(0);
        loss_sum += loss_value * static_cast<double>(n);
        correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
        seen += n;
        if (on_batch_) {
          const double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          on_batch_({epoch, options_.epochs(), batch->index, loader.batches_per_epoch(),
                     loss_value, static_cast<double>(correct) / static_cast<double>(seen),
                     static_cast<double>(seen) / std::max(seconds, 1e-9)});
        }
      }
      EpochMetrics metrics;
      metrics.epoch = epoch;
      metrics.train_loss = loss_sum / static_cast<double>(seen);
      metrics.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      metrics.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      metrics.samples_per_second = static_cast<double>(seen) / std::max(metrics.seconds, 1e-9);
      history.push_back(metrics);
      if (on_epoch_) on_epoch_(metrics);
    }
  } catch (...) {
    model_.train(was_training);
    throw;
  }
  model_.train(was_training);
  return history;
}

}  // namespace bulwark
