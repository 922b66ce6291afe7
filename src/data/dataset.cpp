#include "bulwark/data/dataset.h"

#include <torch/torch.h>

#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

Dataset::Dataset(at::Tensor images_, at::Tensor labels_, int64_t num_classes_, std::string name_)
    : images(std::move(images_)),
      labels(std::move(labels_)),
      num_classes(num_classes_),
      name(std::move(name_)) {
  BULWARK_CHECK(num_classes >= 1, "Dataset: num_classes must be >= 1, got {}", num_classes);
  detail::check_float_tensor("Dataset", "images", images, 1);
  detail::check_labels("Dataset", "labels", labels, images.size(0), num_classes);
  labels = labels.to(at::kLong);
}

std::string Dataset::class_label(int64_t label) const {
  BULWARK_CHECK(0 <= label && label < num_classes,
                "Dataset::class_label: label {} is outside [0, {}) of '{}'", label, num_classes,
                name);
  if (class_names.empty()) return std::to_string(label);
  BULWARK_CHECK(static_cast<int64_t>(class_names.size()) == num_classes,
                "Dataset::class_label: '{}' has {} class names for {} classes", name,
                class_names.size(), num_classes);
  return fmt::format("{} ({})", label, class_names[static_cast<size_t>(label)]);
}

Dataset Dataset::slice(int64_t begin, int64_t end) const {
  BULWARK_CHECK(0 <= begin && begin <= end && end <= size(),
                "Dataset::slice: need 0 <= begin <= end <= {} (the dataset size), got [{}, {})",
                size(), begin, end);
  Dataset result = *this;
  result.images = images.slice(0, begin, end);
  result.labels = labels.slice(0, begin, end);
  return result;
}

BatchLoader::BatchLoader(Dataset dataset, BatchLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  BULWARK_CHECK(options_.batch_size() >= 1, "BatchLoader: batch_size must be >= 1, got {}",
                options_.batch_size());
  BULWARK_CHECK(dataset_.size() > 0, "BatchLoader: the dataset '{}' is empty", dataset_.name);
  start_epoch(0);
}

void BatchLoader::start_epoch(int64_t epoch) {
  BULWARK_CHECK(epoch >= 0, "BatchLoader::start_epoch: epoch must be >= 0, got {}", epoch);
  if (options_.shuffle()) {
    auto generator = make_generator(derive_seed(options_.seed(), static_cast<uint64_t>(epoch)));
    order_ = at::randperm(dataset_.size(), generator, at::TensorOptions().dtype(at::kLong));
  } else {
    order_ = at::Tensor();
  }
  position_ = 0;
  batch_index_ = 0;
}

int64_t BatchLoader::batches_per_epoch() const {
  const auto n = dataset_.size();
  const auto b = options_.batch_size();
  return options_.drop_last() ? n / b : (n + b - 1) / b;
}

std::optional<Batch> BatchLoader::next() {
  const auto n = dataset_.size();
  auto end = std::min(position_ + options_.batch_size(), n);
  if (position_ >= n || (options_.drop_last() && end - position_ < options_.batch_size())) {
    return std::nullopt;
  }
  Batch batch;
  if (order_.defined()) {
    const auto index = order_.slice(0, position_, end).to(dataset_.images.device());
    batch.inputs = dataset_.images.index_select(0, index);
    batch.labels = dataset_.labels.index_select(0, index.to(dataset_.labels.device()));
  } else {
    batch.inputs = dataset_.images.slice(0, position_, end);
    batch.labels = dataset_.labels.slice(0, position_, end);
  }
  batch.index = batch_index_++;
  position_ = end;
  return batch;
}

}  // namespace bulwark
