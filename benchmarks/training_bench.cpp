// Adversarial training's cost: one epoch of PGD-AT with k attack steps against one epoch of
// standard training on the same data. Each PGD-AT batch makes k forward+backward passes to the
// input and one to the parameters, so the ideal ratio is k + 1; Bulwark aims at 1.05 (k + 1).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bulwark/core/seed.h"
#include "bulwark/defenses/trainer.h"
#include "bulwark/models/small_cnn.h"
#include "bench_util.h"

namespace {

void BM_TrainingEpoch(benchmark::State& state) {
  const auto kind = static_cast<bulwark::StrategyKind>(state.range(0));
  const int64_t steps = state.range(1);
  bulwark::manual_seed(0);
  const bulwark::Dataset data(torch::rand({2048, 1, 28, 28}),
                              torch::randint(0, 10, {2048}, torch::kLong), 10);
  const auto x = data.images.slice(0, 0, 128);
  const auto y = data.labels.slice(0, 0, 128);
  double work = 0, floor = 0;
  for (auto _ : state) {
    state.PauseTiming();
    bulwark::manual_seed(0);
    bulwark::SmallCNN net;
    bulwark::Model model(net);
    bulwark::Trainer trainer(model, bulwark::TrainerOptions().epochs(1).batch_size(128).strategy(
                                        bulwark::StrategyOptions(kind, 0.1).steps(steps)));
    // The floor: the epoch's 16 batches of forward + backward to the parameters, timed here.
    floor += 16 * bulwark_bench::forward_backward_parameters_seconds(model, x, y);
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    trainer.fit(data);
    work += bulwark_bench::seconds_since(start);
  }
  state.counters["x_floor"] = work / floor;
  state.SetLabel(bulwark::to_string(kind) + (kind == bulwark::StrategyKind::Standard
                                                 ? std::string()
                                                 : " k=" + std::to_string(steps)));
  state.counters["samples_per_second"] =
      benchmark::Counter(2048.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TrainingEpoch)
    ->Args({static_cast<int64_t>(bulwark::StrategyKind::Standard), 1})
    ->Args({static_cast<int64_t>(bulwark::StrategyKind::FastAT), 1})
    ->Args({static_cast<int64_t>(bulwark::StrategyKind::PGDAT), 3})
    ->Args({static_cast<int64_t>(bulwark::StrategyKind::PGDAT), 7})
    ->Args({static_cast<int64_t>(bulwark::StrategyKind::TRADES), 7})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
