// Patch attacks: training steps per second as a ratio to the floor (BM_SmallCnnForwardBackward
// Input at the same batch size: a step is one forward+backward pass over the batch's views, so
// its ideal time is one floor), and the compositing op, CPU kernel against the composite
// reference (forward, and forward+backward as training runs it).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bulwark/attacks/patch.h"
#include "bulwark/core/seed.h"
#include "bulwark/data/transforms.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/ops/patch_composite.h"
#include "bench_util.h"

namespace {

void BM_PatchTrainingStep(benchmark::State& state) {
  bulwark::manual_seed(0);
  bulwark::SmallCNN net;
  bulwark::Model model(net);
  const int64_t batch = state.range(0);
  const bulwark::Dataset data(torch::rand({1024, 1, 28, 28}),
                              torch::randint(0, 10, {1024}, torch::kLong), 10);
  constexpr int64_t kSteps = 20;
  const auto options =
      bulwark::PatchOptions().size(0.1).target(3).steps(kSteps).batch_size(batch);
  const auto x = data.images.slice(0, 0, batch);
  const auto y = data.labels.slice(0, 0, batch);
  const double x_floor = bulwark_bench::timed_against_floor(
      state,
      [&] {
        auto trained = bulwark::train_patch(model, data, options);
        benchmark::DoNotOptimize(trained.patch.pixels.data_ptr());
      },
      [&] { return bulwark_bench::forward_backward_input_seconds(model, x, y); });
  state.counters["x_floor"] = x_floor / static_cast<double>(kSteps);  // per step
  state.counters["steps_per_second"] =
      benchmark::Counter(kSteps, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["samples_per_second"] = benchmark::Counter(
      static_cast<double>(kSteps * batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PatchTrainingStep)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();

struct CompositeInputs {
  at::Tensor images, patch, mask, theta;
  explicit CompositeInputs(int64_t side) {
    bulwark::manual_seed(0);
    const int64_t channels = side == 28 ? 1 : 3;
    images = torch::rand({256, channels, side, side});
    const auto shape = bulwark::make_patch(bulwark::PatchShape::Circle, 0.1, channels, side, side);
    patch = torch::rand(shape.pixels.sizes()).requires_grad_(true);
    mask = shape.mask;
    auto generator = bulwark::make_generator(1);
    theta = bulwark::sample_placements(256, side, side, mask.size(0), mask.size(1),
                                       shape.pixel_scale, bulwark::PlacementOptions(), generator,
                                       images.options());
  }
};

template <bool kFused, bool kBackward>
void BM_PatchComposite(benchmark::State& state) {
  const CompositeInputs in(state.range(0));
  const auto composite = [&] {
    return kFused ? bulwark::ops::patch_composite(in.images, in.patch, in.mask, in.theta,
                                                  bulwark::ops::Blend::Replace)
                  : bulwark::ops::patch_composite_reference(in.images, in.patch, in.mask,
                                                            in.theta, bulwark::ops::Blend::Replace);
  };
  const auto weights = torch::randn_like(in.images);
  for (auto _ : state) {
    if constexpr (kBackward) {
      const auto out = composite();
      auto grad = torch::autograd::grad({out}, {in.patch}, {weights})[0];
      benchmark::DoNotOptimize(grad.data_ptr());
    } else {
      torch::NoGradGuard no_grad;
      auto out = composite();
      benchmark::DoNotOptimize(out.data_ptr());
    }
  }
  state.counters["samples_per_second"] =
      benchmark::Counter(256.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PatchComposite<true, false>)
    ->Name("BM_PatchComposite/forward/cpu_kernel")
    ->Arg(28)->Arg(32)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PatchComposite<false, false>)
    ->Name("BM_PatchComposite/forward/reference")
    ->Arg(28)->Arg(32)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PatchComposite<true, true>)
    ->Name("BM_PatchComposite/forward_backward/cpu_kernel")
    ->Arg(28)->Arg(32)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PatchComposite<false, true>)
    ->Name("BM_PatchComposite/forward_backward/reference")
    ->Arg(28)->Arg(32)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
