#pragma once
/// @file
/// An in-memory labelled dataset and seeded, shuffled batching over it.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bulwark {

/// Images [N, C, H, W] (float, in the input box) and labels [N] (int64 in [0, num_classes)).
struct Dataset {
  at::Tensor images;
  at::Tensor labels;
  int64_t num_classes = 0;
  std::string name;
  /// The classes' names by label, for reports, where the data set has them (Fashion-MNIST and
  /// CIFAR-10 loaders fill them in); empty otherwise.
  std::vector<std::string> class_names;

  Dataset() = default;
  /// @throws Error when images and labels disagree in length, labels are not integer or lie
  /// outside [0, num_classes), or num_classes < 1.
  Dataset(at::Tensor images, at::Tensor labels, int64_t num_classes, std::string name = "");

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  /// Samples [begin, end) as a view. @throws Error when the range is not inside [0, size()].
  Dataset slice(int64_t begin, int64_t end) const;
  /// The first `n` samples (all when n >= size()).
  Dataset head(int64_t n) const { return slice(0, n < size() ? n : size()); }
  /// "8 (Bag)" when the classes have names, "8" otherwise.
  /// @throws Error when label is outside [0, num_classes) or class_names has another length.
  std::string class_label(int64_t label) const;
};

/// One batch of inputs and labels.
struct Batch {
  at::Tensor inputs;
  at::Tensor labels;
  int64_t index = 0;  ///< position of this batch within its epoch
};

/// Options of BatchLoader.
struct BatchLoaderOptions {
  explicit BatchLoaderOptions(int64_t batch_size) : batch_size_(batch_size) {}
  BatchLoaderOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  BatchLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  BatchLoaderOptions& seed(uint64_t v) { seed_ = v; return *this; }
  BatchLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  int64_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  uint64_t seed() const { return seed_; }
  bool drop_last() const { return drop_last_; }

 private:
  int64_t batch_size_;
  bool shuffle_ = false;
  uint64_t seed_ = 0;
  bool drop_last_ = false;
};

/// Batches over a Dataset. With shuffling, epoch e uses a permutation drawn from a generator
/// seeded by (seed, e): the order depends only on the seed and the epoch number, so a resumed
/// run sees the same batches as an uninterrupted one.
class BatchLoader {
 public:
  /// @throws Error when batch_size < 1 or the dataset is empty.
  BatchLoader(Dataset dataset, BatchLoaderOptions options);

  /// Starts epoch `epoch` (0-based); next() then yields its batches.
  void start_epoch(int64_t epoch);
  /// The next batch of the current epoch, or nothing at its end.
  std::optional<Batch> next();
  /// Batches per epoch.
  int64_t batches_per_epoch() const;
  const Dataset& dataset() const { return dataset_; }

 private:
  Dataset dataset_;
  BatchLoaderOptions options_;
  at::Tensor order_;
  int64_t position_ = 0;
  int64_t batch_index_ = 0;
};

}  // namespace bulwark
