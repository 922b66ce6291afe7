#pragma once
// Private: what the training loop, its checkpoints and its DP-SGD accounting share: the
// Trainer's state and the model's state tensors.

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bulwark/defenses/trainer.h"

namespace bulwark {
namespace detail {

// The tensors that make up a model's state, named: parameters, then buffers.
std::vector<std::pair<std::string, at::Tensor>> named_state(const Model& model);
/// Detached copies of the model's state tensors, in the order of named_state().
std::vector<at::Tensor> copy_state(const Model& model);
/// Copies `tensors` (from copy_state() or a checkpoint) into the model's state.
void load_state(const Model& model, const std::vector<at::Tensor>& tensors);

}  // namespace detail

struct Trainer::State {
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<TrainingStrategy> strategy;
  int64_t next_epoch = 0;
  std::vector<at::Tensor> best;
  double best_score = -std::numeric_limits<double>::infinity();
  // DP-SGD.
  std::unique_ptr<DPSGD> dp;
  std::unique_ptr<Accountant> accountant;
  double sample_rate = 0.0;
  bool calibrated = false;
  bool stopped = false;

  /// DP-SGD: sets the sampling rate batch_size / N for a training set of `train_size` samples.
  /// @throws Error when training so far used another rate.
  void set_sample_rate(int64_t train_size, int64_t batch_size);
  /// DP-SGD: the noise multiplier that spends the target epsilon over `total_steps`, when the
  /// options give one; calibrated once.
  void calibrate(const DPSGDOptions& privacy, int64_t total_steps);
  /// DP-SGD: how many of the `remaining` steps the epsilon budget allows, −1 when it allows all.
  int64_t steps_within_budget(const DPSGDOptions& privacy, int64_t remaining) const;
};

}  // namespace bulwark
