// Poisoning defenses: STRIP's cost per input against one forward pass (its N superimpositions
// are its floor), the training-set inspections of 60,000 Fashion-MNIST-sized images against one
// forward pass over them plus their linear algebra, and Neural Cleanse per class and per Adam
// step against a forward + backward pass to the input. Images are random: the cost does not
// depend on their values.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>

#include "bulwark/core/seed.h"
#include "bulwark/defenses/learned_detector.h"
#include "bulwark/defenses/strip.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/poisoning/activation_clustering.h"
#include "bulwark/poisoning/neural_cleanse.h"
#include "bulwark/poisoning/spectral_signatures.h"
#include "bench_util.h"

namespace {

using bulwark_bench::forward_seconds;
using bulwark_bench::seconds_since;

bulwark::Model small_cnn() {
  bulwark::manual_seed(0);
  bulwark::SmallCNN net;
  bulwark::Model model(net);
  model.eval();
  return model;
}

// STRIP with Gao et al.'s 100 overlays on a batch of 256: `x_forward` is the time per batch as
// a multiple of one forward pass of the batch (its floor is 100).
void BM_DetectorStrip100(benchmark::State& state) {
  auto model = small_cnn();
  const auto x = torch::rand({256, 1, 28, 28});
  bulwark::Strip strip(model, torch::rand({1000, 1, 28, 28}),
                       bulwark::StripOptions().overlays(100));
  const double floor = forward_seconds(model, x);
  double total = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(strip.score(x).data_ptr());
    total += seconds_since(start);
  }
  state.counters["x_forward"] = total / static_cast<double>(state.iterations()) / floor;
}
BENCHMARK(BM_DetectorStrip100)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

constexpr int64_t kImages = 60000;
constexpr int64_t kBatch = 1000;

// One forward pass over the images to the logits, in batches of kBatch, and the activations of
// `layer` over them.
double full_forward_seconds(bulwark::Model& model, const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < images.size(0); s += kBatch) {
    benchmark::DoNotOptimize(model.forward(images.slice(0, s, s + kBatch)).data_ptr());
  }
  return seconds_since(start);
}

at::Tensor activations(bulwark::Model& model, const at::Tensor& images, const std::string& layer) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < images.size(0); s += kBatch) {
    parts.push_back(bulwark::layer_activations(model, layer, images.slice(0, s, s + kBatch)));
  }
  return at::cat(parts);
}

// Inspection of all 60,000 images at the penultimate layer: counters `forward_s` (one forward
// pass over them), `activations_s`, `algebra_s` (the inspection on the activations) and
// `x_floor` = (activations + algebra) / (forward + algebra).
template <typename Inspect>
void inspect(benchmark::State& state, Inspect&& run) {
  auto model = small_cnn();
  const auto images = torch::rand({kImages, 1, 28, 28});
  const auto labels = torch::arange(kImages, torch::kLong).remainder(10);
  double forward = 0, features = 0, algebra = 0;
  for (auto _ : state) {
    state.PauseTiming();
    forward += full_forward_seconds(model, images);
    state.ResumeTiming();
    auto start = std::chrono::steady_clock::now();
    const auto a = activations(model, images, "classifier.3");
    features += seconds_since(start);
    start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(run(a, labels).flagged.data_ptr());
    algebra += seconds_since(start);
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["forward_s"] = forward / n;
  state.counters["activations_s"] = features / n;
  state.counters["algebra_s"] = algebra / n;
  state.counters["x_floor"] = (features + algebra) / (forward + algebra);
}

void BM_InspectSpectral60000(benchmark::State& state) {
  inspect(state, [](const at::Tensor& a, const at::Tensor& y) {
    return bulwark::spectral_signatures(a, y, 10);
  });
}
BENCHMARK(BM_InspectSpectral60000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_InspectClustering60000(benchmark::State& state) {
  inspect(state, [](const at::Tensor& a, const at::Tensor& y) {
    return bulwark::activation_clustering(a, y, 10);
  });
}
BENCHMARK(BM_InspectClustering60000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// Neural Cleanse on 500 images at the end-to-end test's budget (30 checks of 5 Adam steps of
// 32 images per class): counters `per_class_s` and `x_step`, an Adam step as a multiple of one
// forward + backward pass to the input of 32 images.
void BM_NeuralCleanse(benchmark::State& state) {
  auto model = small_cnn();
  const auto images = torch::rand({500, 1, 28, 28});
  const auto x = images.slice(0, 0, 32);
  const auto y = torch::zeros({32}, torch::kLong);
  const double floor = bulwark_bench::forward_backward_input_seconds(model, x, y);
  double total = 0;
  int64_t steps = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const auto report = bulwark::neural_cleanse(
        model, images, 10, bulwark::NeuralCleanseOptions().checks(30).batches_per_check(5));
    total += seconds_since(start);
    for (const auto& c : report.classes) steps += c.steps;
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["per_class_s"] = total / n / 10;
  state.counters["x_step"] = total / static_cast<double>(steps) / floor;
}
BENCHMARK(BM_NeuralCleanse)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
