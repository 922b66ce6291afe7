// DP-SGD's cost: one private step (per-sample clipping by the autograd-graph engine, noise,
// optimizer step) against one plain step on the same batch. The plain step is the floor: a
// private step needs the same forward and backward pass, plus the per-sample norms and the
// clipped sum. The target: at most 1.5 x at batch 256 on SmallCNN.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bulwark/core/losses.h"
#include "bulwark/core/seed.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/models/tanh_cnn.h"
#include "bulwark/privacy/accountant.h"
#include "bulwark/privacy/dp_sgd.h"
#include "bench_util.h"

namespace {

bulwark::Model make_net(int64_t arch) {
  bulwark::manual_seed(0);
  if (arch == 0) return bulwark::Model(bulwark::SmallCNN(), "SmallCNN");
  return bulwark::Model(bulwark::TanhCNN(), "TanhCNN");
}

// mode 0: plain step; 1: DP-SGD, flat clipping; 2: DP-SGD, per-layer clipping.
void BM_TrainingStep(benchmark::State& state) {
  const int64_t arch = state.range(0), mode = state.range(1), batch = state.range(2);
  auto model = make_net(arch);
  const auto x = torch::rand({batch, 1, 28, 28});
  const auto y = torch::randint(0, 10, {batch}, torch::kLong);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.1));
  std::unique_ptr<bulwark::DPSGD> dp;
  if (mode > 0) {
    dp = std::make_unique<bulwark::DPSGD>(
        model, bulwark::DPSGDOptions().noise_multiplier(1.0).max_grad_norm(1.0).clipping(
                   mode == 1 ? bulwark::ClippingMode::Flat : bulwark::ClippingMode::PerLayer));
  }
  auto generator = bulwark::make_generator(0);
  const bulwark::PerSampleLossFn losses = [&](int64_t begin, int64_t end) {
    return bulwark::cross_entropy(model(x.slice(0, begin, end)), y.slice(0, begin, end),
                                  bulwark::Reduction::None);
  };
  const auto plain_step = [&] {
    optimizer.zero_grad();
    bulwark::cross_entropy(model(x), y).backward();
    optimizer.step();
  };
  // The floor, a plain step on the same model and batch, is timed between the iterations.
  const double x_plain = bulwark_bench::timed_against_floor(
      state,
      [&] {
        if (!dp) return plain_step();
        dp->gradient(batch, losses, static_cast<double>(batch), generator);
        optimizer.step();
      },
      [&] { return bulwark_bench::mean_seconds(plain_step, 3); });
  state.counters["x_plain_step"] = x_plain;
  state.SetLabel(model.name() + (mode == 0 ? " plain" : mode == 1 ? " dp-sgd flat" : " dp-sgd per-layer"));
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TrainingStep)
    ->ArgsProduct({{0, 1}, {0, 1, 2}, {256}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// The accountants on Abadi et al.'s setting: q 0.01, sigma 4, 10000 steps, delta 1e-5.
void BM_Accountant(benchmark::State& state) {
  const bool prv = state.range(0) == 1;
  double epsilon = 0;
  for (auto _ : state) {
    auto accountant = bulwark::make_accountant(prv ? "prv" : "rdp");
    accountant->step(4.0, 0.01, 10000);
    epsilon = accountant->spent(1e-5).epsilon;
  }
  state.SetLabel(prv ? "prv" : "rdp");
  state.counters["epsilon"] = epsilon;
}
BENCHMARK(BM_Accountant)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
