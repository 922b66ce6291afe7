#pragma once
// Shared by the benchmarks: the model's own passes, timed in the same process right next to
// the work they are the floor of. On a shared machine the speed drifts by 10-40 % over minutes,
// so a ratio to a floor measured in another benchmark a while earlier can land anywhere; a
// floor timed between the iterations of the measured work drifts with it.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "bulwark/core/losses.h"
#include "bulwark/core/model.h"

namespace bulwark_bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds per call of `f`: the mean of a few timed calls after a warm-up. The mean, not the
// fastest: the work a floor is compared with is timed as a mean too, and a floor taken as the
// fastest of several calls would be optimistic by the machine's noise, inflating every ratio.
template <typename F>
double mean_seconds(F&& f, int repeats = 5) {
  f();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) f();
  return seconds_since(start) / repeats;
}

// One forward pass without gradients: the floor of a detector or a smoothed prediction.
inline double forward_seconds(bulwark::Model& model, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  return mean_seconds([&] { benchmark::DoNotOptimize(model.forward(x).data_ptr()); });
}

// One forward + backward pass to the input, as an attack takes it (model in its current mode).
inline double forward_backward_input_seconds(bulwark::Model& model, const at::Tensor& x,
                                             const at::Tensor& y) {
  return mean_seconds([&] {
    auto input = x.clone().requires_grad_(true);
    const auto loss = bulwark::cross_entropy(model.forward(input), y);
    benchmark::DoNotOptimize(torch::autograd::grad({loss}, {input})[0].data_ptr());
  });
}

// One forward + backward pass to the parameters, as a training step takes it.
inline double forward_backward_parameters_seconds(bulwark::Model& model, const at::Tensor& x,
                                                  const at::Tensor& y, int repeats = 5) {
  return mean_seconds(
      [&] {
        for (auto& p : model.parameters()) p.mutable_grad() = at::Tensor();
        bulwark::cross_entropy(model.forward(x), y).backward();
      },
      repeats);
}

// Times `work` once per benchmark iteration and `floor` (seconds) between iterations, outside
// the timed region; returns (mean work seconds) / (mean floor seconds).
template <typename Work, typename Floor>
double timed_against_floor(benchmark::State& state, Work&& work, Floor&& floor) {
  double work_total = 0, floor_total = 0;
  for (auto _ : state) {
    state.PauseTiming();
    floor_total += floor();
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    work();
    work_total += seconds_since(start);
  }
  return work_total / std::max(floor_total, 1e-12);
}

}  // namespace bulwark_bench
