// Runtime defenses: each detector's cost per input as a multiple of one forward pass of the
// model (the `x_forward` counter; the forward pass is timed in the same process just before),
// CERTIFY's noise draws per second for n = 1000 against the batched forward floor, and the
// median filter, CPU kernel against the composite reference.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>

#include "bulwark/core/seed.h"
#include "bulwark/defenses/consistency.h"
#include "bulwark/defenses/feature_squeezing.h"
#include "bulwark/defenses/learned_detector.h"
#include "bulwark/defenses/randomized_smoothing.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/ops/median_filter.h"
#include "bench_util.h"

namespace {

using bulwark_bench::forward_seconds;

constexpr int64_t kBatch = 256;

bulwark::Model small_cnn() {
  bulwark::manual_seed(0);
  bulwark::SmallCNN net;
  bulwark::Model model(net);
  model.eval();
  return model;
}


void report_ratio(benchmark::State& state, double floor_seconds, double per_iteration_seconds) {
  state.counters["x_forward"] = per_iteration_seconds / floor_seconds;
  state.counters["inputs_per_second"] =
      benchmark::Counter(static_cast<double>(kBatch), benchmark::Counter::kIsIterationInvariantRate);
}

template <typename MakeDetector>
void run_detector(benchmark::State& state, MakeDetector make) {
  auto model = small_cnn();
  const auto x = torch::rand({kBatch, 1, 28, 28});
  const double floor = forward_seconds(model, x);
  auto detector = make(model);
  double total = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(detector->score(x).data_ptr());
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  report_ratio(state, floor, total / static_cast<double>(state.iterations()));
}

void BM_DetectorFeatureSqueezing(benchmark::State& state) {
  run_detector(state, [](bulwark::Model& m) { return std::make_unique<bulwark::FeatureSqueezing>(m); });
}
BENCHMARK(BM_DetectorFeatureSqueezing)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DetectorConsistency32(benchmark::State& state) {
  run_detector(state, [](bulwark::Model& m) {
    return std::make_unique<bulwark::ConsistencyCheck>(m, bulwark::ConsistencyOptions().samples(32));
  });
}
BENCHMARK(BM_DetectorConsistency32)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DetectorLearnedOnInput(benchmark::State& state) {
  run_detector(state, [](bulwark::Model& m) {
    const auto clean = torch::rand({64, 1, 28, 28});
    return std::make_unique<bulwark::LearnedDetector>(bulwark::LearnedDetector::train(
        m, clean, (clean + 0.1).clamp(0, 1), bulwark::LearnedDetectorOptions().epochs(1)));
  });
}
BENCHMARK(BM_DetectorLearnedOnInput)->Unit(benchmark::kMillisecond)->UseRealTime();

// CERTIFY with n0 = 100 and n = 1000 draws on one image, batches of 1000 noisy copies: the
// floor is the same number of images through the model in batches of 1000.
void BM_Certify1000(benchmark::State& state) {
  auto model = small_cnn();
  const auto batch = torch::rand({1000, 1, 28, 28});
  const double floor_per_draw = forward_seconds(model, batch) / 1000.0;
  bulwark::SmoothedClassifier smoothed(model, bulwark::SmoothingOptions().n0(100).n(1000));
  const auto x = torch::rand({1, 28, 28});
  double total = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(smoothed.certify(x).radius);
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double per_draw = total / static_cast<double>(state.iterations()) / 1100.0;
  state.counters["x_forward"] = per_draw / floor_per_draw;
  state.counters["draws_per_second"] =
      benchmark::Counter(1100.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Certify1000)->Unit(benchmark::kMillisecond)->UseRealTime();

template <bool kKernel>
void BM_MedianFilter(benchmark::State& state) {
  const int64_t side = state.range(0);
  const int64_t window = state.range(1);
  const auto x = torch::rand({kBatch, side == 28 ? 1 : 3, side, side});
  for (auto _ : state) {
    const auto out = kKernel ? bulwark::ops::median_filter(x, window)
                             : bulwark::ops::median_filter_reference(x, window);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.counters["images_per_second"] =
      benchmark::Counter(static_cast<double>(kBatch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_MedianFilter<true>)->Name("BM_MedianFilterKernel")->Args({28, 2})->Args({28, 3})->Args({32, 3})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MedianFilter<false>)->Name("BM_MedianFilterReference")->Args({28, 2})->Args({28, 3})->Args({32, 3})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
