// Label sanitization: k nearest neighbours (Paudice et al. 2018) and confident learning
// (Northcutt et al. 2021).
#include "bulwark/poisoning/label_sanitization.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "bulwark/core/seed.h"
#include "bulwark/eval/accuracy.h"
#include "core/check.h"

namespace bulwark {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

LabelSanitization finish(std::string method, const at::Tensor& flagged_mask,
                         const at::Tensor& proposals, const at::Tensor& labels) {
  LabelSanitization out;
  out.method = std::move(method);
  out.flagged = flagged_mask.nonzero().squeeze(1).to(torch::kLong);
  out.proposed_labels = proposals.index_select(0, out.flagged);
  out.sanitized_labels = labels.clone();
  out.sanitized_labels.index_copy_(0, out.flagged, out.proposed_labels);
  return out;
}

void check_labels(const at::Tensor& labels, int64_t n, int64_t num_classes, const char* what) {
  BULWARK_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == n,
                "{}: labels must be [N] with N = {}, got {}", what, n,
                labels.defined() ? detail::shape_string(labels) : "undefined");
  BULWARK_CHECK(!labels.is_floating_point(), "{}: labels must be integers", what);
  BULWARK_CHECK(n == 0 || (labels.min().item<int64_t>() >= 0 &&
                           labels.max().item<int64_t>() < num_classes),
                "{}: labels must lie in [0, {})", what, num_classes);
}

}  // namespace

LabelSanitization knn_label_sanitization(const at::Tensor& representations,
                                         const at::Tensor& labels, int64_t num_classes,
                                         const KnnSanitizationOptions& options) {
  constexpr const char* what = "knn_label_sanitization";
  const auto start = std::chrono::steady_clock::now();
  BULWARK_CHECK(representations.defined() && representations.dim() >= 2,
                "{}: representations must be [N, ...], got {}", what,
                representations.defined() ? detail::shape_string(representations) : "undefined");
  const int64_t n = representations.size(0);
  BULWARK_CHECK(num_classes >= 2, "{}: num_classes must be >= 2, got {}", what, num_classes);
  check_labels(labels, n, num_classes, what);
  BULWARK_CHECK(options.k() >= 1 && options.k() < n, "{}: k must be in [1, N) = [1, {}), got {}",
                what, n, options.k());
  BULWARK_CHECK(options.agreement() > 0 && options.agreement() <= 1,
                "{}: agreement must be in (0, 1], got {}", what, options.agreement());
  BULWARK_CHECK(options.block_size() >= 1, "{}: block_size must be >= 1, got {}", what,
                options.block_size());
  torch::NoGradGuard no_grad;
  const auto x = representations.detach().flatten(1).to(torch::kFloat).contiguous();
  BULWARK_CHECK(x.isfinite().all().item<bool>(), "{}: the representations are not finite", what);
  const auto y = labels.to(x.device()).to(torch::kLong);
  const auto squared = x.square().sum(1);
  auto majority = torch::empty({n}, y.options());
  auto share = torch::empty({n}, x.options());
  for (int64_t begin = 0; begin < n; begin += options.block_size()) {
    const int64_t end = std::min(n, begin + options.block_size());
    auto distances = squared.slice(0, begin, end).unsqueeze(1) + squared.unsqueeze(0) -
                     2 * x.slice(0, begin, end).matmul(x.t());
    // A sample is not its own neighbour.
    const auto rows = torch::arange(end - begin, y.options());
    distances.index_put_({rows, rows + begin}, std::numeric_limits<float>::infinity());
    const auto neighbours = std::get<1>(distances.topk(options.k(), 1, /*largest=*/false));
    const auto votes =
        torch::one_hot(y.index_select(0, neighbours.flatten()), num_classes)
            .view({end - begin, options.k(), num_classes})
            .sum(1);
    const auto [count, label] = votes.max(1);  // the first maximum: ties go to the smaller label
    majority.slice(0, begin, end).copy_(label);
    share.slice(0, begin, end).copy_(count.to(torch::kFloat) / static_cast<float>(options.k()));
  }
  const auto flagged = majority.ne(y) & share.ge(options.agreement() - 1e-6);
  auto out = finish("knn", flagged.cpu(), majority.cpu(), labels.cpu().to(torch::kLong));
  out.seconds = seconds_since(start);
  return out;
}

LabelSanitization confident_learning(const at::Tensor& probabilities, const at::Tensor& labels) {
  constexpr const char* what = "confident_learning";
  const auto start = std::chrono::steady_clock::now();
  BULWARK_CHECK(probabilities.defined() && probabilities.dim() == 2 && probabilities.size(1) >= 2,
                "{}: probabilities must be [N, K] with K >= 2, got {}", what,
                probabilities.defined() ? detail::shape_string(probabilities) : "undefined");
  const int64_t n = probabilities.size(0), classes = probabilities.size(1);
  check_labels(labels, n, classes, what);
  const auto p = probabilities.detach().to(torch::kDouble).cpu();
  BULWARK_CHECK(p.isfinite().all().item<bool>() && p.ge(0).all().item<bool>() &&
                    (p.sum(1) - 1).abs().max().item<double>() < 1e-3,
                "{}: every row of probabilities must be a distribution (>= 0, summing to 1)",
                what);
  const auto y = labels.cpu().to(torch::kLong);
  const auto given = torch::one_hot(y, classes).to(torch::kBool);
  const auto per_class = given.sum(0).to(torch::kDouble);
  // Per-class thresholds: the mean self-confidence of the samples given that class. A class
  // nobody was given can never be confidently predicted.
  const auto thresholds = torch::where(per_class > 0,
                                       (p * given).sum(0) / per_class.clamp_min(1),
                                       torch::full_like(per_class, 2.0));
  const auto above = p.ge(thresholds.unsqueeze(0));
  const auto confident = above.any(1);
  const auto guessed = torch::where(above, p, torch::full_like(p, -1.0)).argmax(1);
  // The confident joint C[given][guessed], calibrated so each row sums to its class's count.
  auto joint = torch::zeros({classes * classes}, torch::kDouble);
  joint.index_add_(0, (y * classes + guessed).masked_select(confident),
                   torch::ones({confident.sum().item<int64_t>()}, torch::kDouble));
  joint = joint.view({classes, classes});
  const auto row_sums = joint.sum(1, /*keepdim=*/true);
  joint = torch::where(row_sums > 0, joint / row_sums.clamp_min(1) * per_class.unsqueeze(1),
                       joint);
  // Prune by noise rate: for each off-diagonal cell, the round(C[i][j]) samples given i with
  // the largest margin p(j) − p(i).
  auto flagged = torch::zeros({n}, torch::kBool);
  for (int64_t i = 0; i < classes; ++i) {
    const auto members = y.eq(i).nonzero().squeeze(1);
    if (members.numel() == 0) continue;
    const auto rows = p.index_select(0, members);
    for (int64_t j = 0; j < classes; ++j) {
      if (j == i) continue;
      // At least one sample of each class stays.
      const int64_t count = std::min<int64_t>(std::llround(joint[i][j].item<double>()),
                                              members.numel() - 1);
      if (count <= 0) continue;
      const auto margin = rows.select(1, j) - rows.select(1, i);
      flagged.index_fill_(0, members.index_select(0, std::get<1>(margin.topk(count))), true);
    }
  }
  // A sample the model itself assigns to its given label is not an issue (as cleanlab does).
  const auto predicted = p.argmax(1);
  flagged &= predicted.ne(y);
  auto out = finish("confident-learning", flagged, predicted, y);
  out.seconds = seconds_since(start);
  return out;
}

at::Tensor cross_validated_probabilities(const Dataset& data, int64_t folds,
                                         const ModelTrainer& train, uint64_t seed,
                                         int64_t batch_size) {
  const int64_t n = data.size();
  BULWARK_CHECK(n >= 2, "cross_validated_probabilities: the data set needs at least 2 samples, "
                        "got {}", n);
  BULWARK_CHECK(folds >= 2 && folds <= n,
                "cross_validated_probabilities: folds must be in [2, {}], got {}", n, folds);
  BULWARK_CHECK(train != nullptr, "cross_validated_probabilities: no trainer given");
  auto generator = make_generator(seed);
  const auto order = torch::randperm(n, generator, torch::kLong);
  at::Tensor out;
  for (int64_t f = 0; f < folds; ++f) {
    const auto held = order.slice(0, f * n / folds, (f + 1) * n / folds);
    auto keep = torch::ones({n}, torch::kBool);
    keep.index_fill_(0, held, false);
    const auto rest = keep.nonzero().squeeze(1);
    const auto device = data.images.device();
    const Dataset fold_train(data.images.index_select(0, rest.to(device)),
                             data.labels.index_select(0, rest.to(data.labels.device())),
                             data.num_classes, data.name);
    auto model = train(fold_train, seed + 1 + static_cast<uint64_t>(f));
    const auto p =
        predict_logits(model, data.images.index_select(0, held.to(device)), batch_size)
            .to(torch::kDouble)
            .softmax(1)
            .cpu();
    if (!out.defined()) out = torch::zeros({n, p.size(1)}, torch::kDouble);
    out.index_copy_(0, held, p);
  }
  return out;
}

}  // namespace bulwark
