// Label flipping: uniform, targeted (source to target) and by loss under a clean model.
#include "bulwark/poisoning/label_flipping.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <limits>

#include "bulwark/eval/accuracy.h"
#include "core/check.h"
#include "poisoning/poisoning_detail.h"

namespace bulwark {

namespace {

void check_data(const Dataset& data, const char* what) {
  BULWARK_CHECK(data.size() > 0, "{}: the data set is empty", what);
  BULWARK_CHECK(data.num_classes >= 2, "{}: flipping labels needs at least 2 classes, got {}",
                what, data.num_classes);
}

}  // namespace

PoisonedDataset flip_labels_uniform(const Dataset& data, const LabelFlipOptions& options) {
  constexpr const char* what = "flip_labels_uniform";
  detail::check_rate(options.rate(), what);
  check_data(data, what);
  auto generator = make_generator(options.seed());
  const auto labels = data.labels.cpu();
  const auto chosen = detail::choose(torch::arange(data.size(), torch::kLong),
                                     detail::count_for(options.rate(), data.size()), generator);
  // An offset in [1, K) added modulo K: every other class equally likely, never the same one.
  const auto offsets = torch::randint(1, data.num_classes, {chosen.size(0)}, generator,
                                      torch::TensorOptions().dtype(torch::kLong));
  const auto flipped = (labels.index_select(0, chosen) + offsets).remainder(data.num_classes);
  return detail::assemble(data, chosen, flipped, {}, fmt::format("flip-uniform-{}", options.rate()));
}

PoisonedDataset flip_labels_targeted(const Dataset& data, int64_t source, int64_t target,
                                     const LabelFlipOptions& options) {
  constexpr const char* what = "flip_labels_targeted";
  detail::check_rate(options.rate(), what);
  check_data(data, what);
  for (const auto& [name, c] : {std::pair{"source", source}, std::pair{"target", target}}) {
    BULWARK_CHECK(c >= 0 && c < data.num_classes, "{}: {} class must be in [0, {}), got {}", what,
                  name, data.num_classes, c);
  }
  BULWARK_CHECK(source != target, "{}: source and target must differ, both are {}", what, source);
  auto generator = make_generator(options.seed());
  const auto candidates = data.labels.cpu().eq(source).nonzero().squeeze(1);
  const auto chosen = detail::choose(
      candidates, detail::count_for(options.rate(), candidates.size(0)), generator);
  return detail::assemble(data, chosen, torch::full({chosen.size(0)}, target, torch::kLong), {},
                          fmt::format("flip-{}-to-{}-{}", source, target, options.rate()));
}

PoisonedDataset flip_labels_by_loss(Model& clean_model, const Dataset& data,
                                    const LabelFlipOptions& options) {
  constexpr const char* what = "flip_labels_by_loss";
  detail::check_rate(options.rate(), what);
  check_data(data, what);
  const auto logits = predict_logits(clean_model, data.images).to(torch::kFloat);
  BULWARK_CHECK(logits.size(1) == data.num_classes,
                "{}: the model gives {} classes, the data set has {}", what, logits.size(1),
                data.num_classes);
  BULWARK_CHECK(logits.isfinite().all().item<bool>(), "{}: the model's logits are not finite",
                what);
  const auto labels = data.labels.cpu();
  const auto loss = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  // Highest loss first; the stable sort keeps ties in index order.
  const auto order = std::get<1>(loss.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  const auto k = detail::count_for(options.rate(), data.size());
  const auto chosen = std::get<0>(order.slice(0, 0, k).sort());
  auto wrong = logits.index_select(0, chosen).clone();
  wrong.scatter_(1, labels.index_select(0, chosen).unsqueeze(1),
                 -std::numeric_limits<float>::infinity());
  return detail::assemble(data, chosen, wrong.argmax(1), {},
                          fmt::format("flip-by-loss-{}", options.rate()));
}

}  // namespace bulwark
