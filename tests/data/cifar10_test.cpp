#include "bulwark/data/cifar10.h"

#include <fmt/format.h>

#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::TempDir;
using testing::write_bytes;
class Cifar10Test : public testing::SeededTest {};

std::vector<uint8_t> records(int n, uint8_t first_label = 0) {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < n; ++i) {
    bytes.push_back(static_cast<uint8_t>((first_label + i) % 10));
    for (int j = 0; j < 3072; ++j) bytes.push_back(static_cast<uint8_t>((i + j) % 256));
  }
  return bytes;
}

TEST_F(Cifar10Test, ReadsRecords) {
  TempDir dir;
  write_bytes(dir / "test_batch.bin", records(4, 7));
  const auto data = load_cifar10(dir.path(), Split::Test);
  EXPECT_EQ(data.images.sizes(), (std::vector<int64_t>{4, 3, 32, 32}));
  EXPECT_TRUE(torch::equal(data.labels, torch::tensor({7, 8, 9, 0}, torch::kLong)));
  // Channel-major layout: pixel (c=0, 0, 1) of record 1 is byte 1 + 1.
  EXPECT_FLOAT_EQ(data.images[1][0][0][1].item<float>(), 2.0f / 255.0f);
  EXPECT_EQ(data.class_label(3), "3 (cat)");
}

TEST_F(Cifar10Test, SavesWhatItReadsBitwise) {
  TempDir root;  // one per test: the original, the copy and the refused writes apart
  const auto in = root / "in", out = root / "out", bad = root / "bad";
  for (const auto& d : {in, out, bad}) std::filesystem::create_directories(d);
  write_bytes(in / "test_batch.bin", records(7, 3));
  const auto test = load_cifar10(in, Split::Test);
  save_cifar10(test, out, Split::Test);
  EXPECT_EQ(testing::read_file(out / "test_batch.bin"), testing::read_file(in / "test_batch.bin"));
  // The train split: five files of near-equal size that load back to the same data set.
  save_cifar10(test, out, Split::Train);
  for (int f = 1; f <= 5; ++f) {
    const auto size = std::filesystem::file_size(out / fmt::format("data_batch_{}.bin", f));
    EXPECT_TRUE(size == 3073 || size == 2 * 3073) << f << ": " << size;
  }
  const auto train = load_cifar10(out, Split::Train);
  EXPECT_TRUE(torch::equal(train.images, test.images));
  EXPECT_TRUE(torch::equal(train.labels, test.labels));
  // Bad input, and nothing written for it.
  EXPECT_BULWARK_ERROR(save_cifar10(test.head(4), bad, Split::Train), "at least 5");
  auto bright = test;
  bright.images = bright.images + 1;
  EXPECT_BULWARK_ERROR(save_cifar10(bright, bad, Split::Test), "[0, 1]");
  const Dataset grey(torch::rand({5, 1, 32, 32}), torch::zeros({5}, torch::kLong), 10);
  EXPECT_BULWARK_ERROR(save_cifar10(grey, bad, Split::Test), "[N, 3, 32, 32]");
  EXPECT_BULWARK_ERROR(save_cifar10(test, bad / "missing", Split::Test), "does not exist");
  EXPECT_TRUE(std::filesystem::is_empty(bad));
}

TEST_F(Cifar10Test, Errors) {
  TempDir dir;
  EXPECT_BULWARK_ERROR(load_cifar10(dir.path(), Split::Train), "data_batch_1.bin",
                       "does not exist");
  auto bytes = records(2);
  bytes.pop_back();
  write_bytes(dir / "short.bin", bytes);
  EXPECT_BULWARK_ERROR(read_cifar10_batches({dir / "short.bin"}), "short.bin", "whole number");
  write_bytes(dir / "empty.bin", {});
  EXPECT_BULWARK_ERROR(read_cifar10_batches({dir / "empty.bin"}), "empty");
  bytes = records(1);
  bytes[0] = 10;
  write_bytes(dir / "label.bin", bytes);
  EXPECT_BULWARK_ERROR(read_cifar10_batches({dir / "label.bin"}), "label 10");
}

}  // namespace
}  // namespace bulwark
