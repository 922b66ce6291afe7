// What inspections share: activations over a data set, removing flagged samples, scoring a
// detection against the ground truth.
#include "bulwark/poisoning/data_inspection.h"

#include <torch/torch.h>

#include <algorithm>

#include "bulwark/defenses/learned_detector.h"
#include "core/check.h"

namespace bulwark {

at::Tensor collect_activations(Model& model, const std::string& layer, const at::Tensor& images,
                               int64_t batch_size, const std::function<void(int64_t)>& progress) {
  BULWARK_CHECK(batch_size >= 1, "collect_activations: batch_size must be >= 1, got {}",
                batch_size);
  BULWARK_CHECK(images.defined() && images.dim() >= 2 && images.size(0) >= 1,
                "collect_activations: expected a non-empty batch of images [N, ...]");
  EvalModeGuard guard(model);
  torch::NoGradGuard no_grad;
  const int64_t n = images.size(0);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    parts.push_back(layer_activations(model, layer, images.slice(0, start, end).to(model.device()))
                        .flatten(1)
                        .cpu());
    if (progress) progress(end);
  }
  return at::cat(parts);
}

Dataset remove_samples(const Dataset& data, const at::Tensor& indices) {
  const int64_t n = data.size();
  const auto removed = indices.defined() ? indices.cpu().to(torch::kLong).flatten()
                                         : torch::empty({0}, torch::kLong);
  BULWARK_CHECK(removed.numel() == 0 || (removed.min().item<int64_t>() >= 0 &&
                                         removed.max().item<int64_t>() < n),
                "remove_samples: indices must lie in [0, {})", n);
  auto keep = torch::ones({n}, torch::kBool);
  keep.index_fill_(0, removed, false);
  const auto kept = keep.nonzero().squeeze(1);
  BULWARK_CHECK(kept.numel() > 0, "remove_samples: every one of the {} samples is removed", n);
  const auto on = [&kept](const at::Tensor& t) { return t.index_select(0, kept.to(t.device())); };
  Dataset kept_data(on(data.images), on(data.labels), data.num_classes, data.name);
  kept_data.class_names = data.class_names;
  return kept_data;
}

DetectionScore score_detection(const at::Tensor& flagged, const at::Tensor& poisoned) {
  const auto f = flagged.defined() ? flagged.cpu().to(torch::kLong).flatten()
                                   : torch::empty({0}, torch::kLong);
  const auto p = poisoned.defined() ? poisoned.cpu().to(torch::kLong).flatten()
                                    : torch::empty({0}, torch::kLong);
  BULWARK_CHECK((f.numel() == 0 || f.min().item<int64_t>() >= 0) &&
                    (p.numel() == 0 || p.min().item<int64_t>() >= 0),
                "score_detection: indices must be >= 0");
  const auto distinct_flagged = std::get<0>(at::_unique(f));
  DetectionScore s;
  s.flagged = distinct_flagged.numel();
  s.poisoned = std::get<0>(at::_unique(p)).numel();
  s.true_positives = at::isin(distinct_flagged, p).sum().item<int64_t>();
  s.precision = s.flagged == 0 ? 1.0 : static_cast<double>(s.true_positives) / s.flagged;
  s.recall = s.poisoned == 0 ? 1.0 : static_cast<double>(s.true_positives) / s.poisoned;
  return s;
}

}  // namespace bulwark
