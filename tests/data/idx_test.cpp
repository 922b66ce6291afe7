#include "bulwark/data/idx.h"

#include <fmt/format.h>

#include <random>

#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::idx_bytes;
using testing::TempDir;
using testing::write_bytes;
class IdxTest : public testing::SeededTest {};

TEST_F(IdxTest, ReadsPlainAndGzip) {
  TempDir dir;
  const auto bytes = idx_bytes({3, 2, 4});
  write_bytes(dir / "plain", bytes);
  write_bytes(dir / "packed.gz", bytes, true);
  for (const auto* name : {"plain", "packed.gz"}) {
    const auto t = read_idx(dir / name);
    EXPECT_EQ(t.sizes(), (std::vector<int64_t>{3, 2, 4}));
    EXPECT_EQ(t.scalar_type(), torch::kByte);
    EXPECT_EQ(t.flatten()[23].item<int>(), 23);
  }
}

TEST_F(IdxTest, ErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  EXPECT_BULWARK_ERROR(read_idx(dir / "missing"), "missing", "does not exist");

  auto bad_magic = idx_bytes({2});
  bad_magic[0] = 0x1f;
  write_bytes(dir / "magic", bad_magic);
  EXPECT_BULWARK_ERROR(read_idx(dir / "magic"), "magic", "0x00 0x00");

  auto bad_type = idx_bytes({2});
  bad_type[2] = 0x0D;
  write_bytes(dir / "type", bad_type);
  EXPECT_BULWARK_ERROR(read_idx(dir / "type"), "type code 0x0d");

  auto truncated = idx_bytes({10, 10});
  truncated.resize(truncated.size() - 7);
  write_bytes(dir / "truncated.gz", truncated, true);
  EXPECT_BULWARK_ERROR(read_idx(dir / "truncated.gz"), "truncated.gz", "truncated", "100", "93");

  auto trailing = idx_bytes({4});
  trailing.push_back(1);
  write_bytes(dir / "trailing", trailing);
  EXPECT_BULWARK_ERROR(read_idx(dir / "trailing"), "bytes after");

  // A header that claims 2^32 − 1 items in each of 4 dimensions.
  write_bytes(dir / "huge", {0, 0, 8, 4, 255, 255, 255, 255, 255, 255, 255, 255});
  EXPECT_BULWARK_ERROR(read_idx(dir / "huge"), "implausible");
}

TEST_F(IdxTest, RandomAndTruncatedBytesGiveErrorsNotCrashes) {
  TempDir dir;
  std::mt19937 rng(1234);
  const auto good = idx_bytes({5, 3, 3});
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> bytes;
    if (trial % 3 == 0) {
      bytes.resize(rng() % 64);
      for (auto& b : bytes) b = static_cast<uint8_t>(rng());
      if (bytes.size() >= 4 && trial % 2 == 0) bytes[0] = bytes[1] = 0, bytes[2] = 8;
    } else if (trial % 3 == 1) {
      bytes.assign(good.begin(), good.begin() + static_cast<int64_t>(rng() % good.size()));
    } else {
      bytes = good;
      bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    }
    const auto path = dir / fmt::format("f{}{}", trial, trial % 2 ? ".gz" : "");
    write_bytes(path, bytes, trial % 2 == 1);
    try {
      const auto t = read_idx(path);
      EXPECT_EQ(t.scalar_type(), torch::kByte);
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 150);
}

TEST_F(IdxTest, LoadsMnistFormatAndChecksCounts) {
  TempDir dir;
  write_bytes(dir / "t10k-images-idx3-ubyte.gz", idx_bytes({6, 28, 28}), true);
  write_bytes(dir / "t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 6, 0, 1, 2, 3, 9, 5});
  const auto data = load_mnist_format(dir.path(), Split::Test, "toy");
  EXPECT_EQ(data.images.sizes(), (std::vector<int64_t>{6, 1, 28, 28}));
  EXPECT_EQ(data.labels[4].item<int64_t>(), 9);
  EXPECT_LE(data.images.max().item<float>(), 1.0f);
  EXPECT_EQ(data.name, "toy-test");
  EXPECT_TRUE(data.class_names.empty());  // an unknown MNIST-format set has no names
  const auto fashion = load_fashion_mnist(Split::Test, dir.path());
  EXPECT_EQ(fashion.class_label(9), "9 (Ankle boot)");  // Xiao et al.'s label 9
  EXPECT_EQ(fashion.class_label(0), "0 (T-shirt/top)");

  write_bytes(dir / "t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 5, 0, 1, 2, 3, 9});
  EXPECT_BULWARK_ERROR(load_mnist_format(dir.path(), Split::Test), "6 images", "5 labels");
  write_bytes(dir / "t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 6, 0, 1, 2, 3, 12, 5});
  EXPECT_BULWARK_ERROR(load_mnist_format(dir.path(), Split::Test), "label 12");
  EXPECT_BULWARK_ERROR(load_mnist_format(dir.path(), Split::Train), "train-images-idx3-ubyte",
                       "neither");
  EXPECT_BULWARK_ERROR(load_mnist_format(dir / "nope", Split::Train), "does not exist");
}

TEST_F(IdxTest, WritesWhatItReadsBitwise) {
  TempDir dir;
  write_bytes(dir / "t10k-images-idx3-ubyte", idx_bytes({5, 7, 6}));
  write_bytes(dir / "t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 5, 3, 1, 4, 1, 5});
  const auto data = load_mnist_format(dir.path(), Split::Test);
  TempDir out;
  save_mnist_format(data, out.path(), Split::Train);
  // The files are the originals, byte for byte, and read back to the same tensors.
  EXPECT_EQ(testing::read_file(out / "train-images-idx3-ubyte"),
            testing::read_file(dir / "t10k-images-idx3-ubyte"));
  EXPECT_EQ(testing::read_file(out / "train-labels-idx1-ubyte"),
            testing::read_file(dir / "t10k-labels-idx1-ubyte"));
  const auto back = load_mnist_format(out.path(), Split::Train);
  EXPECT_TRUE(torch::equal(back.images, data.images));
  EXPECT_TRUE(torch::equal(back.labels, data.labels));
  // A 4-dimensional tensor round-trips too.
  const auto cube = torch::randint(0, 256, {2, 3, 1, 4}, torch::kByte);
  write_idx(out / "cube", cube);
  EXPECT_TRUE(torch::equal(read_idx(out / "cube"), cube));

  EXPECT_BULWARK_ERROR(write_idx(out / "f", torch::rand({3})), "uint8");
  EXPECT_BULWARK_ERROR(write_idx(out / "f", torch::zeros({1, 1, 1, 1, 1}, torch::kByte)),
                       "1 to 4 dimensions");
  EXPECT_BULWARK_ERROR(save_mnist_format(Dataset(torch::rand({2, 3, 4, 4}), torch::zeros({2},
                                                 torch::kLong), 10), out.path(), Split::Test),
                       "[N, 1, H, W]");
  EXPECT_BULWARK_ERROR(save_mnist_format(Dataset(torch::rand({2, 1, 4, 4}) + 1,
                                                 torch::zeros({2}, torch::kLong), 10),
                                         out.path(), Split::Test),
                       "[0, 1]");
  EXPECT_BULWARK_ERROR(save_mnist_format(data, out / "missing", Split::Test), "does not exist");
}

}  // namespace
}  // namespace bulwark
