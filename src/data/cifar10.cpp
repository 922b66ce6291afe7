#include "bulwark/data/cifar10.h"

#include <torch/torch.h>

#include <fstream>

#include "bulwark/core/files.h"
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

void save_cifar10(const Dataset& data, const std::filesystem::path& directory, Split split) {
  BULWARK_CHECK(std::filesystem::is_directory(directory),
                "save_cifar10: directory '{}' does not exist", directory.string());
  const auto& images = data.images;
  BULWARK_CHECK(images.defined() && images.dim() == 4 && images.size(1) == 3 &&
                    images.size(2) == 32 && images.size(3) == 32,
                "save_cifar10: images must be [N, 3, 32, 32], got {}",
                images.defined() ? detail::shape_string(images) : "undefined");
  BULWARK_CHECK(images.numel() == 0 ||
                    (images.min().item<double>() >= 0 && images.max().item<double>() <= 1),
                "save_cifar10: images must lie in [0, 1]");
  BULWARK_CHECK(data.labels.numel() == 0 || (data.labels.min().item<int64_t>() >= 0 &&
                                             data.labels.max().item<int64_t>() < 10),
                "save_cifar10: labels must lie in [0, 10)");
  const int64_t files = split == Split::Train ? 5 : 1;
  const int64_t n = data.size();
  BULWARK_CHECK(n >= files, "save_cifar10: the {} split needs at least {} images (one per file), "
                "got {}", split == Split::Train ? "train" : "test", files, n);
  // One record per row: the label byte, then the image's bytes channel by channel.
  const auto records =
      at::cat({data.labels.cpu().to(at::kByte).unsqueeze(1),
               images.cpu().to(at::kFloat).mul(255.0f).round().to(at::kByte).flatten(1)},
              1)
          .contiguous();
  for (int64_t f = 0; f < files; ++f) {
    const auto part = records.slice(0, n * f / files, n * (f + 1) / files);
    const auto name = split == Split::Train ? fmt::format("data_batch_{}.bin", f + 1)
                                            : std::string("test_batch.bin");
    write_file_atomically(directory / name, [&](const std::filesystem::path& tmp) {
      std::ofstream out(tmp, std::ios::binary);
      BULWARK_CHECK(out.good(), "save_cifar10: cannot open '{}' for writing", tmp.string());
      out.write(reinterpret_cast<const char*>(part.const_data_ptr<uint8_t>()),
                static_cast<std::streamsize>(part.numel()));
      out.flush();
      BULWARK_CHECK(out.good(), "save_cifar10: writing '{}' failed", (directory / name).string());
    });
  }
}

}  // namespace bulwark
