// The fused step-and-project op: CPU kernel against the composite reference, on a batch of
// 256 Fashion-MNIST-sized inputs (and a CIFAR-sized one).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bulwark/core/seed.h"
#include "bulwark/ops/project_step.h"

namespace {

template <bool kFused>
void BM_ProjectStep(benchmark::State& state) {
  bulwark::manual_seed(0);
  const auto norm = static_cast<bulwark::Norm>(state.range(0));
  const int64_t side = state.range(1);
  const int64_t channels = side == 28 ? 1 : 3;
  const auto x = torch::rand({256, channels, side, side});
  const auto x_adv = (x + 0.05 * torch::randn_like(x)).clamp(0, 1);
  const auto grad = torch::randn_like(x);
  const double eps = norm == bulwark::Norm::Linf ? 0.1 : 1.0;
  for (auto _ : state) {
    auto out = kFused ? bulwark::ops::project_step(x_adv, grad, x, 0.01, eps, norm, 0, 1)
                      : bulwark::ops::project_step_reference(x_adv, grad, x, 0.01, eps, norm, 0, 1);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.SetLabel(bulwark::to_string(norm));
  state.SetBytesProcessed(state.iterations() * x.numel() * 4 * 4);
  state.counters["samples_per_second"] =
      benchmark::Counter(256.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ProjectStep<true>)
    ->Name("BM_ProjectStep/cpu_kernel")
    ->ArgsProduct({{0, 1}, {28, 32}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_ProjectStep<false>)
    ->Name("BM_ProjectStep/reference")
    ->ArgsProduct({{0, 1}, {28, 32}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
