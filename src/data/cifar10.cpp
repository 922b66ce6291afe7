#include "bulwark/data/cifar10.h"

#include <torch/torch.h>

#include "core/check.h"
#include "data/byte_reader.h"

namespace bulwark {

Dataset read_cifar10_batches(const std::vector<std::filesystem::path>& files) {
  constexpr int64_t kImageBytes = 3 * 32 * 32;
  constexpr int64_t kRecordBytes = 1 + kImageBytes;
  BULWARK_CHECK(!files.empty(), "read_cifar10_batches: no files given");
  std::vector<at::Tensor> records;
  for (const auto& file : files) {
    detail::ByteReader reader(file, "read_cifar10_batches");
    std::vector<uint8_t> bytes;
    std::array<uint8_t, 1 << 16> chunk{};
    while (const auto got = reader.read(chunk.data(), chunk.size())) {
      bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<int64_t>(got));
    }
    const auto size = static_cast<int64_t>(bytes.size());
    BULWARK_CHECK(size > 0, "read_cifar10_batches: '{}' is empty", file.string());
    BULWARK_CHECK(size % kRecordBytes == 0,
                  "read_cifar10_batches: '{}' has {} bytes, not a whole number of {}-byte "
                  "records (truncated or not CIFAR-10 binary)",
                  file.string(), size, kRecordBytes);
    auto tensor = at::empty({size / kRecordBytes, kRecordBytes}, at::kByte);
    std::memcpy(tensor.mutable_data_ptr<uint8_t>(), bytes.data(), bytes.size());
    const auto max_label = tensor.select(1, 0).max().item<int64_t>();
    BULWARK_CHECK(max_label < 10, "read_cifar10_batches: '{}' has a label {} outside [0, 10)",
                  file.string(), max_label);
    records.push_back(tensor);
  }
  const auto all = at::cat(records);
  auto labels = all.select(1, 0).to(at::kLong);
  auto images = all.slice(1, 1).reshape({-1, 3, 32, 32}).to(at::kFloat).div_(255.0f);
  Dataset data(images, labels, 10, "cifar10");
  // batches.meta.txt's label names.
  data.class_names = {"airplane", "automobile", "bird",  "cat",  "deer",
                      "dog",      "frog",       "horse", "ship", "truck"};
  return data;
}

Dataset load_cifar10(const std::filesystem::path& directory, Split split) {
  std::vector<std::filesystem::path> files;
  if (split == Split::Train) {
    for (int i = 1; i <= 5; ++i) files.push_back(directory / fmt::format("data_batch_{}.bin", i));
  } else {
    files.push_back(directory / "test_batch.bin");
  }
  auto data = read_cifar10_batches(files);
  data.name = split == Split::Train ? "cifar10-train" : "cifar10-test";
  return data;
}

}  // namespace bulwark
