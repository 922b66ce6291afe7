#pragma once
/// @file
/// The training loop. Adversarial strategies plug in as the way a batch becomes a loss.

#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark {

enum class OptimizerKind { SGD, Adam };
/// "sgd" or "adam". @throws Error for anything else.
OptimizerKind parse_optimizer(const std::string& text);

struct TrainerOptions {
  TORCH_ARG(int64_t, epochs) = 1;
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(OptimizerKind, optimizer) = OptimizerKind::Adam;
  /// 1e-3 is Adam's default (Kingma & Ba 2015); for SGD with momentum 0.9, 0.01–0.1 is usual.
  TORCH_ARG(double, learning_rate) = 1e-3;
  TORCH_ARG(double, momentum) = 0.9;  ///< SGD only
  TORCH_ARG(double, weight_decay) = 0.0;
  /// Seeds the batch order; epoch e's order depends only on (seed, e).
  TORCH_ARG(uint64_t, seed) = 0;
};

/// Reported after each batch.
struct BatchProgress {
  int64_t epoch = 0, epochs = 0;    ///< epoch is 0-based
  int64_t batch = 0, batches = 0;   ///< batch is 0-based
  double loss = 0.0;                ///< this batch's mean loss
  double running_accuracy = 0.0;    ///< training accuracy so far this epoch
  double samples_per_second = 0.0;
};

/// Reported after each epoch.
struct EpochMetrics {
  int64_t epoch = 0;  ///< 0-based
  double train_loss = 0.0;
  double train_accuracy = 0.0;
  double seconds = 0.0;
  double samples_per_second = 0.0;
};

/// Trains a model with standard (empirical-risk) training, batch by batch, and reports through
/// callbacks. The model is left in the mode it had before fit().
class Trainer {
 public:
  /// @throws Error when epochs < 1, batch_size < 1, learning_rate <= 0, momentum or
  /// weight_decay < 0, or the model has no trainable parameters.
  Trainer(Model model, TrainerOptions options);

  void on_batch(std::function<void(const BatchProgress&)> callback);
  void on_epoch(std::function<void(const EpochMetrics&)> callback);

  /// Runs all epochs over `train`. @throws Error when train is empty or the loss is not finite.
  std::vector<EpochMetrics> fit(const Dataset& train);

 private:
  Model model_;
  TrainerOptions options_;
  std::function<void(const BatchProgress&)> on_batch_;
  std::function<void(const EpochMetrics&)> on_epoch_;
};

}  // namespace bulwark
