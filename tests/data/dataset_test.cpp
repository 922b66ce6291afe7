#include "bulwark/data/dataset.h"

#include "test_util.h"

namespace bulwark {
namespace {

class DatasetTest : public testing::SeededTest {};

Dataset toy(int64_t n) {
  return Dataset(torch::arange(n, torch::kFloat).reshape({n, 1}), torch::arange(n) % 3, 3, "toy");
}

TEST_F(DatasetTest, ValidatesConstruction) {
  EXPECT_BULWARK_ERROR(Dataset(torch::rand({4, 2}), torch::tensor({0, 1, 2}), 3), "shape [4]");
  EXPECT_BULWARK_ERROR(Dataset(torch::rand({2, 2}), torch::tensor({0, 3}), 3), "[0, 3)");
  EXPECT_BULWARK_ERROR(Dataset(torch::rand({2, 2}), torch::tensor({0, 1}), 0), "num_classes");
  EXPECT_EQ(toy(5).slice(1, 3).size(), 2);
  EXPECT_BULWARK_ERROR(toy(5).slice(2, 9), "[2, 9)");
  EXPECT_EQ(toy(5).head(100).size(), 5);
}

TEST_F(DatasetTest, ClassLabelsUseNamesWhenTheDataSetHasThem) {
  auto data = toy(6);
  EXPECT_EQ(data.class_label(2), "2");
  data.class_names = {"cat", "dog", "bird"};
  EXPECT_EQ(data.class_label(1), "1 (dog)");
  EXPECT_EQ(data.slice(0, 2).class_label(2), "2 (bird)");  // slices keep the names
  EXPECT_BULWARK_ERROR(data.class_label(3), "label 3", "[0, 3)");
  data.class_names.pop_back();
  EXPECT_BULWARK_ERROR(data.class_label(0), "2 class names for 3 classes");
}

TEST_F(DatasetTest, UnshuffledBatchesCoverInOrder) {
  BatchLoader loader(toy(10), BatchLoaderOptions(4));
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  std::vector<int64_t> seen;
  while (auto batch = loader.next()) {
    for (int64_t i = 0; i < batch->inputs.size(0); ++i) {
      seen.push_back(static_cast<int64_t>(batch->inputs[i][0].item<float>()));
    }
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(DatasetTest, ShuffleIsAPermutationDeterminedBySeedAndEpoch) {
  auto epoch_order = [](uint64_t seed, int64_t epoch) {
    BatchLoader loader(toy(50), BatchLoaderOptions(8).shuffle(true).seed(seed));
    loader.start_epoch(epoch);
    std::vector<at::Tensor> parts;
    while (auto batch = loader.next()) {
      EXPECT_TRUE(torch::equal(batch->labels, batch->inputs.squeeze(1).to(torch::kLong) % 3));
      parts.push_back(batch->inputs.squeeze(1));
    }
    return torch::cat(parts);
  };
  const auto a = epoch_order(1, 0);
  EXPECT_TRUE(torch::equal(std::get<0>(a.sort()), torch::arange(50, torch::kFloat)));
  EXPECT_TRUE(torch::equal(a, epoch_order(1, 0)));
  EXPECT_FALSE(torch::equal(a, epoch_order(1, 1)));
  EXPECT_FALSE(torch::equal(a, epoch_order(2, 0)));
}

TEST_F(DatasetTest, DropLastAndBadOptions) {
  BatchLoader loader(toy(10), BatchLoaderOptions(4).drop_last(true));
  EXPECT_EQ(loader.batches_per_epoch(), 2);
  int count = 0;
  while (loader.next()) ++count;
  EXPECT_EQ(count, 2);
  EXPECT_BULWARK_ERROR(BatchLoader(toy(10), BatchLoaderOptions(0)), "batch_size");
  EXPECT_BULWARK_ERROR(BatchLoader(toy(3).slice(0, 0), BatchLoaderOptions(2)), "empty");
}

}  // namespace
}  // namespace bulwark
