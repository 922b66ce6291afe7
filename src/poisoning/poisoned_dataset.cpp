// The poisoned copy of a data set and its ground truth.
#include "bulwark/poisoning/poisoned_dataset.h"

#include <torch/torch.h>

#include <cmath>

#include "core/check.h"
#include "poisoning/poisoning_detail.h"

namespace bulwark {

at::Tensor changed_mask(const PoisonedDataset& poisoned) {
  const auto n = poisoned.data.size();
  auto mask = torch::zeros({n}, torch::kBool);
  if (poisoned.changed.defined() && poisoned.changed.numel() > 0) {
    const auto changed = poisoned.changed.cpu().to(torch::kLong).flatten();
    BULWARK_CHECK(changed.min().item<int64_t>() >= 0 && changed.max().item<int64_t>() < n,
                  "changed_mask: changed indices must be in [0, {}), got [{}, {}]", n,
                  changed.min().item<int64_t>(), changed.max().item<int64_t>());
    mask.index_fill_(0, changed, true);
  }
  return mask;
}

namespace detail {

void check_rate(double rate, const char* what) {
  BULWARK_CHECK(std::isfinite(rate) && rate >= 0 && rate <= 1, "{}: rate must be in [0, 1], got {}",
                what, rate);
}

int64_t count_for(double rate, int64_t n) {
  return static_cast<int64_t>(std::llround(rate * static_cast<double>(n)));
}

at::Tensor choose(const at::Tensor& candidates, int64_t count, at::Generator& generator) {
  const auto order = torch::randperm(candidates.size(0), generator,
                                     torch::TensorOptions().dtype(torch::kLong));
  return std::get<0>(candidates.index_select(0, order.slice(0, 0, count)).sort());
}

PoisonedDataset assemble(const Dataset& data, const at::Tensor& chosen, const at::Tensor& labels,
                         const at::Tensor& images, const std::string& how) {
  PoisonedDataset out;
  auto new_labels = data.labels.cpu().clone();
  auto new_images = data.images.clone();
  out.original_labels = new_labels.index_select(0, chosen);
  new_labels.index_copy_(0, chosen, labels.to(torch::kLong));
  if (images.defined()) {
    new_images.index_copy_(0, chosen.to(new_images.device()), images.to(new_images.options()));
  }
  out.data = Dataset(new_images, new_labels.to(data.labels.device()), data.num_classes,
                     data.name.empty() ? how : data.name + "+" + how);
  out.data.class_names = data.class_names;
  out.changed = chosen;
  return out;
}

}  // namespace detail
}  // namespace bulwark
