// Activation clustering: per class PCA, 2-means and a decision on whether the split is real.
#include "bulwark/poisoning/activation_clustering.h"

#include <torch/torch.h>

#include <chrono>
#include <limits>

#include "bulwark/core/seed.h"
#include "bulwark/eval/accuracy.h"
#include "core/check.h"
#include "poisoning/class_statistics.h"

namespace bulwark {

namespace {

struct Clustering {
  at::Tensor assignment;  // int64 [n] in {0, 1}
  double inertia = std::numeric_limits<double>::infinity();
};

// Lloyd's 2-means from a k-means++ start.
Clustering two_means(const at::Tensor& x, int64_t iterations, at::Generator& generator) {
  const auto n = x.size(0);
  const auto first = torch::randint(n, {1}, generator, torch::kLong).item<int64_t>();
  auto centres = x.slice(0, first, first + 1).clone();
  const auto d2 = (x - centres).square().sum(1);
  // The second centre drawn with probability proportional to the squared distance.
  const auto total = d2.sum().item<double>();
  int64_t second = first;
  if (total > 0) {
    second = torch::multinomial((d2 / total).to(torch::kFloat).cpu(), 1, false, generator)
                 .item<int64_t>();
  }
  centres = torch::cat({centres, x.slice(0, second, second + 1)});
  at::Tensor assignment;
  for (int64_t it = 0; it < iterations; ++it) {
    const auto next = torch::cdist(x, centres).argmin(1);
    if (assignment.defined() && torch::equal(next, assignment)) break;
    assignment = next;
    for (int64_t c = 0; c < 2; ++c) {
      const auto members = assignment.eq(c);
      if (members.any().item<bool>()) centres[c] = x.index({members}).mean(0);
    }
  }
  Clustering out;
  out.assignment = assignment;
  out.inertia = (x - centres.index_select(0, assignment)).square().sum().item<double>();
  return out;
}

// The mean silhouette of a 2-cluster assignment: for each point, (b − a) / max(a, b) with a the
// mean distance to its own cluster and b to the other; 0 for a point alone in its cluster.
double mean_silhouette(const at::Tensor& x, const at::Tensor& assignment) {
  const auto n = x.size(0);
  const auto in_one = assignment.eq(1).to(x.dtype());
  const auto size_one = in_one.sum().item<double>();
  const auto size_zero = static_cast<double>(n) - size_one;
  if (size_one == 0 || size_zero == 0) return 0;
  double total = 0;
  constexpr int64_t kBlock = 1024;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const auto rows = x.slice(0, begin, std::min(n, begin + kBlock));
    const auto dist = torch::cdist(rows, x);
    const auto to_one = dist.matmul(in_one);
    const auto to_zero = dist.sum(1) - to_one;
    const auto own = assignment.slice(0, begin, begin + rows.size(0)).eq(1);
    const auto own_size = torch::where(own, torch::full_like(to_one, size_one),
                                       torch::full_like(to_one, size_zero));
    const auto a = torch::where(own, to_one, to_zero) / (own_size - 1).clamp_min(1);
    const auto b = torch::where(own, to_zero / size_zero, to_one / size_one);
    const auto s = torch::where(own_size.gt(1), (b - a) / torch::max(a, b).clamp_min(1e-300),
                                torch::zeros_like(a));
    total += s.sum().item<double>();
  }
  return total / static_cast<double>(n);
}

}  // namespace

InspectionReport activation_clustering(const at::Tensor& activations, const at::Tensor& labels,
                                       int64_t num_classes,
                                       const ActivationClusteringOptions& options) {
  constexpr const char* what = "activation_clustering";
  const auto start = std::chrono::steady_clock::now();
  BULWARK_CHECK(options.components() >= 1, "{}: components must be >= 1, got {}", what,
                options.components());
  BULWARK_CHECK(options.size_threshold() > 0 && options.size_threshold() <= 0.5,
                "{}: size_threshold must be in (0, 0.5], got {}", what, options.size_threshold());
  BULWARK_CHECK(options.silhouette_threshold() >= -1 && options.silhouette_threshold() <= 1,
                "{}: silhouette_threshold must be in [-1, 1], got {}", what,
                options.silhouette_threshold());
  BULWARK_CHECK(options.restarts() >= 1 && options.iterations() >= 1,
                "{}: restarts and iterations must be >= 1, got {} and {}", what,
                options.restarts(), options.iterations());
  const auto classes = detail::split_by_class(activations, labels, num_classes, what);
  auto generator = make_generator(options.seed());
  InspectionReport report;
  report.method = "activation-clustering";
  std::vector<at::Tensor> flagged;
  for (const auto& c : classes) {
    const auto spectrum = detail::spectrum(c.features, options.components());
    const auto reduced = spectrum.centred.matmul(spectrum.eigenvectors);
    Clustering best;
    for (int64_t r = 0; r < options.restarts(); ++r) {
      auto candidate = two_means(reduced, options.iterations(), generator);
      if (candidate.inertia < best.inertia) best = std::move(candidate);
    }
    ClassVerdict v;
    v.label = c.label;
    v.samples = c.indices.size(0);
    const auto ones = best.assignment.eq(1).sum().item<int64_t>();
    const int64_t smaller = ones <= v.samples - ones ? 1 : 0;
    const auto smaller_size = smaller == 1 ? ones : v.samples - ones;
    v.statistic = mean_silhouette(reduced, best.assignment);
    v.poisoned = smaller_size > 0 &&
                 static_cast<double>(smaller_size) <=
                     options.size_threshold() * static_cast<double>(v.samples) &&
                 v.statistic >= options.silhouette_threshold();
    if (v.poisoned) {
      const auto members = best.assignment.eq(smaller).nonzero().squeeze(1).cpu();
      flagged.push_back(c.indices.index_select(0, members));
      v.flagged = members.size(0);
    }
    report.classes.push_back(v);
  }
  report.flagged = detail::sorted_indices(flagged);
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

InspectionReport exclusionary_reclassification(const InspectionReport& suspects,
                                               const Dataset& data, const ModelTrainer& train,
                                               const ExclusionaryReclassificationOptions& options) {
  constexpr const char* what = "exclusionary_reclassification";
  const auto start = std::chrono::steady_clock::now();
  BULWARK_CHECK(train != nullptr, "{}: no trainer given", what);
  BULWARK_CHECK(options.batch_size() >= 1, "{}: batch_size must be >= 1", what);
  const int64_t n = data.size();
  const auto flagged = suspects.flagged.defined() ? suspects.flagged.cpu().to(torch::kLong)
                                                  : torch::empty({0}, torch::kLong);
  BULWARK_CHECK(flagged.numel() == 0 || (flagged.min().item<int64_t>() >= 0 &&
                                         flagged.max().item<int64_t>() < n),
                "{}: flagged indices must lie in [0, {})", what, n);
  InspectionReport out = suspects;
  out.method = suspects.method + "+exclusionary-reclassification";
  out.flagged = flagged;
  if (flagged.numel() == 0) return out;
  BULWARK_CHECK(std::get<0>(at::_unique(flagged)).numel() < n,
                "{}: every sample is flagged; nothing is left to train on", what);
  auto without = remove_samples(data, flagged);
  without.name = data.name + " without suspects";
  auto model = train(without, options.seed());
  const auto on = [](const at::Tensor& index, const at::Tensor& t) {
    return t.index_select(0, index.to(t.device()));
  };
  const auto predicted = predict(model, on(flagged, data.images), options.batch_size()).cpu();
  const auto labels = on(flagged, data.labels).cpu().to(torch::kLong);
  std::vector<at::Tensor> confirmed;
  for (auto& verdict : out.classes) {
    const auto mine = labels.eq(verdict.label);
    verdict.flagged = mine.sum().item<int64_t>();
    if (verdict.flagged == 0) {
      verdict.statistic = std::numeric_limits<double>::quiet_NaN();
      verdict.poisoned = false;
      continue;
    }
    const auto counts = torch::bincount(predicted.masked_select(mine), {}, data.num_classes);
    const double own = counts[verdict.label].item<double>();
    auto others = counts.clone();
    others[verdict.label] = 0;
    const double other = others.max().item<double>();
    verdict.statistic = other == 0 ? std::numeric_limits<double>::infinity() : own / other;
    verdict.poisoned = verdict.statistic <= options.threshold();
    if (verdict.poisoned) {
      confirmed.push_back(flagged.masked_select(mine));
    } else {
      verdict.flagged = 0;
    }
  }
  out.flagged = detail::sorted_indices(confirmed);
  out.seconds = suspects.seconds +
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace bulwark
