// Attack throughput on SmallCNN, batch 256, as a ratio to the floor (BM_SmallCnnForwardBackward
// Input in floor_bench.cpp): PGD-k does k forward+backward passes, so its ideal time is k × floor.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "bulwark/attacks/apgd.h"
#include "bulwark/attacks/carlini_wagner.h"
#include "bulwark/attacks/pgd.h"
#include "bulwark/attacks/square.h"
#include "bulwark/core/seed.h"
#include "bulwark/data/idx.h"
#include "bulwark/defenses/trainer.h"
#include "bulwark/models/model_zoo.h"
#include "bench_util.h"

namespace {

// The demo model: SmallCNN trained by scripts/demo for one epoch on Fashion-MNIST (about 84%
// accurate), loaded from $BULWARK_HOME/models when the demo has run, trained the same way
// otherwise; and 256 test images. Early stopping only pays off on a model that classifies well.
struct Trained {
  bulwark::Model model = bulwark::make_model(bulwark::ModelSpec());
  at::Tensor x, y;
  Trained() {
    const char* home = std::getenv("BULWARK_HOME");
    const std::filesystem::path cached =
        (home != nullptr ? std::filesystem::path(home)
                         : std::filesystem::path(std::getenv("HOME")) / ".cache" / "bulwark") /
        "models" / "smallcnn-fashion-mnist-1epoch.pt";
    if (std::filesystem::exists(cached)) {
      model = bulwark::load_model(cached).model;
    } else {
      bulwark::manual_seed(0);
      bulwark::Trainer(model, bulwark::TrainerOptions().epochs(1).batch_size(64))
          .fit(bulwark::load_fashion_mnist(bulwark::Split::Train));
    }
    const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test).head(256);
    x = test.images;
    y = test.labels;
  }
};

Trained& trained() {
  static Trained instance;
  return instance;
}

// The floor of an attack that takes gradients to the input: one forward + backward pass of the
// 256 images, in eval mode.
double input_gradient_floor(Trained& t) {
  bulwark::EvalModeGuard eval_mode(t.model);
  return bulwark_bench::forward_backward_input_seconds(t.model, t.x, t.y);
}

void BM_PGD20(benchmark::State& state) {
  auto& t = trained();
  const bool early_stop = state.range(0) != 0;
  bulwark::PGD pgd(bulwark::PGDOptions(0.1).steps(20).early_stop(early_stop));
  double robust = 0;
  int64_t gradient_evaluations = 0;
  const double x_floor = bulwark_bench::timed_against_floor(
      state,
      [&] {
        const auto r = pgd.run(t.model, t.x, t.y);
        robust = 1.0 - r.success.to(torch::kDouble).mean().item<double>();
        gradient_evaluations = r.gradient_evaluations;
      },
      [&] { return input_gradient_floor(t); });
  state.SetLabel(early_stop ? "early stop" : "full");
  state.counters["samples_per_second"] =
      benchmark::Counter(256.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["not_fooled"] = robust;
  state.counters["gradient_evaluations"] = static_cast<double>(gradient_evaluations);
  // Against 20 floors (what full PGD-20 must spend), and against the passes it made.
  state.counters["x_20_floors"] = x_floor / 20.0;
  state.counters["x_own_passes"] = x_floor / (static_cast<double>(gradient_evaluations) / 256.0);
}
BENCHMARK(BM_PGD20)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// APGD-CE, AutoAttack's first component: 100 steps on the whole batch (no early stop), against
// its floor of 100 forward+backward passes to the input timed between the iterations.
void BM_APGDCE100(benchmark::State& state) {
  auto& t = trained();
  bulwark::APGD apgd(bulwark::APGDOptions(0.1).steps(100).early_stop(false));
  int64_t gradient_evaluations = 0, forward_evaluations = 0;
  const double x_floor = bulwark_bench::timed_against_floor(
      state,
      [&] {
        const auto r = apgd.run(t.model, t.x, t.y);
        gradient_evaluations = r.gradient_evaluations;
        forward_evaluations = r.forward_evaluations;
      },
      [&] { return input_gradient_floor(t); });
  state.SetLabel("L-inf eps 0.1, batch 256, no early stop");
  state.counters["samples_per_second"] =
      benchmark::Counter(256.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["gradient_evaluations"] = static_cast<double>(gradient_evaluations);
  state.counters["forward_evaluations"] = static_cast<double>(forward_evaluations);
  state.counters["x_100_floors"] = x_floor / 100.0;
  // Only clean-correct images are attacked: against the passes it made.
  state.counters["x_own_passes"] = x_floor / (static_cast<double>(gradient_evaluations) / 256.0);
}
BENCHMARK(BM_APGDCE100)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// Square's cost per query against one forward pass of the same batch (no gradients). eps is
// small enough that no image is fooled, so every query runs on all 256 images.
void BM_SquareQuery(benchmark::State& state) {
  auto& t = trained();
  constexpr int64_t kQueries = 200;
  bulwark::Square square(bulwark::SquareOptions(0.002).queries(kQueries));
  int64_t forward_evaluations = 0;
  double fooled = 0;
  const double x_floor = bulwark_bench::timed_against_floor(
      state,
      [&] {
        const auto r = square.run(t.model, t.x, t.y);
        forward_evaluations = r.forward_evaluations;
        fooled = r.success.to(torch::kDouble).sum().item<double>();
      },
      [&] {
        bulwark::EvalModeGuard eval_mode(t.model);
        return bulwark_bench::forward_seconds(t.model, t.x);
      });
  state.SetLabel("L-inf, 200 queries, batch 256");
  state.counters["forward_evaluations"] = static_cast<double>(forward_evaluations);
  state.counters["fooled"] = fooled;
  // Per query of the whole batch (forward_evaluations counts per image, the first pass included).
  state.counters["x_forward_per_query"] =
      x_floor / (static_cast<double>(forward_evaluations) / 256.0);
}
BENCHMARK(BM_SquareQuery)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_CarliniWagnerDefault(benchmark::State& state) {
  auto& t = trained();
  bulwark::CarliniWagner cw;  // the documented defaults: 9 searches × up to 100 steps
  const auto x = t.x.slice(0, 0, 64);
  const auto y = t.y.slice(0, 0, 64);
  double success = 0;
  for (auto _ : state) {
    success = cw.run(t.model, x, y).success.to(torch::kDouble).mean().item<double>();
  }
  state.counters["samples_per_second"] =
      benchmark::Counter(64.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["success_rate"] = success;
}
BENCHMARK(BM_CarliniWagnerDefault)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
