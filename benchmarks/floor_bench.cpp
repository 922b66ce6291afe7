// The physical floor every attack and defense benchmark divides by: the model's own forward +
// backward pass (gradient with respect to the input, as attacks take it, and with respect to
// the parameters, as training takes it).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bulwark/core/losses.h"
#include "bulwark/core/seed.h"
#include "bulwark/models/small_cnn.h"

namespace {

void BM_SmallCnnForwardBackwardInput(benchmark::State& state) {
  bulwark::manual_seed(0);
  bulwark::SmallCNN net;
  net->eval();
  const int64_t batch = state.range(0);
  const auto x = torch::rand({batch, 1, 28, 28});
  const auto y = torch::randint(0, 10, {batch}, torch::kLong);
  for (auto _ : state) {
    auto input = x.clone().requires_grad_(true);
    const auto loss = bulwark::cross_entropy(net->forward(input), y);
    auto grad = torch::autograd::grad({loss}, {input});
    benchmark::DoNotOptimize(grad[0].data_ptr());
  }
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SmallCnnForwardBackwardInput)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SmallCnnForwardBackwardParameters(benchmark::State& state) {
  bulwark::manual_seed(0);
  bulwark::SmallCNN net;
  const int64_t batch = state.range(0);
  const auto x = torch::rand({batch, 1, 28, 28});
  const auto y = torch::randint(0, 10, {batch}, torch::kLong);
  for (auto _ : state) {
    net->zero_grad();
    const auto loss = bulwark::cross_entropy(net->forward(x), y);
    loss.backward();
    benchmark::DoNotOptimize(loss.data_ptr());
  }
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SmallCnnForwardBackwardParameters)
    ->Arg(256)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
