#pragma once
/// @file
/// Learning-rate schedules, as a function of the training step: stateless, so that a resumed
/// run follows the same schedule as an uninterrupted one.

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark {

enum class ScheduleKind {
  Constant,
  /// Cosine annealing from the base rate to 0 over all steps (Loshchilov & Hutter 2017).
  Cosine,
  /// The base rate times gamma at each milestone epoch (Madry et al.; Rice et al. 2020 decay at
  /// 50% and 75% of training).
  MultiStep,
  /// Linear from 0 up to the base rate at `peak` of training, then down to 0 (the cyclic
  /// schedule of fast AT, Wong et al. 2020).
  OneCycle,
};

/// "constant", "cosine", "multistep" or "one-cycle". @throws Error otherwise.
ScheduleKind parse_schedule(std::string_view text);
std::string to_string(ScheduleKind kind);

struct ScheduleOptions {
  explicit ScheduleOptions(ScheduleKind kind = ScheduleKind::Constant) : kind_(kind) {}
  TORCH_ARG(ScheduleKind, kind);
  /// MultiStep: epochs (0-based) from which the rate is multiplied by gamma once more; empty
  /// means 50% and 75% of the epochs.
  TORCH_ARG(std::vector<int64_t>, milestones) = {};
  TORCH_ARG(double, gamma) = 0.1;
  /// OneCycle: where the peak is, as a fraction of training (Wong et al.: 2/5).
  TORCH_ARG(double, peak) = 0.4;

 public:
  /// @throws Error on gamma outside (0, 1], peak outside (0, 1), negative milestones.
  void validate() const;
};

/// The rate for step `step` (0-based) of `total_steps`, with `steps_per_epoch` steps per epoch.
double scheduled_learning_rate(const ScheduleOptions& options, double base, int64_t step,
                               int64_t total_steps, int64_t steps_per_epoch);

}  // namespace bulwark
