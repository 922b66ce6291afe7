#include "bulwark/poisoning/label_flipping.h"

#include <torch/torch.h>

#include <limits>

#include "test_util.h"

namespace bulwark {
namespace {

class LabelFlippingTest : public testing::SeededTest {};

Dataset toy(int64_t n = 200, int64_t classes = 5) {
  return Dataset(torch::rand({n, 1, 4, 4}), torch::arange(n, torch::kLong).remainder(classes),
                 classes, "toy");
}

// Every sample outside `changed` is bitwise the original; inside, exactly the label changed
// (label flipping never touches an image).
void expect_only_changed(const Dataset& before, const PoisonedDataset& after) {
  ASSERT_EQ(after.data.size(), before.size());
  const auto mask = changed_mask(after);
  EXPECT_TRUE(torch::equal(after.data.images, before.images));
  EXPECT_TRUE(torch::equal(after.data.labels.masked_select(mask.logical_not()),
                           before.labels.masked_select(mask.logical_not())));
  EXPECT_TRUE(after.data.labels.masked_select(mask).ne(before.labels.masked_select(mask)).all().item<bool>());
  EXPECT_TRUE(torch::equal(after.original_labels, before.labels.index_select(0, after.changed)));
  // Ascending and distinct.
  if (after.changed.numel() > 1) {
    EXPECT_TRUE((after.changed.slice(0, 1) > after.changed.slice(0, 0, -1)).all().item<bool>());
  }
}

TEST_F(LabelFlippingTest, UniformFlipsExactlyTheRateToOtherClassesAndRecordsThem) {
  const auto data = toy();
  const auto flipped = flip_labels_uniform(data, LabelFlipOptions().rate(0.2).seed(7));
  EXPECT_EQ(flipped.changed.numel(), 40);
  expect_only_changed(data, flipped);
  // Every other class is reached (40 flips over 4 other classes each).
  const auto offsets = (flipped.data.labels.index_select(0, flipped.changed) -
                        flipped.original_labels).remainder(5);
  for (int64_t o = 1; o < 5; ++o) EXPECT_GT(offsets.eq(o).sum().item<int64_t>(), 0) << o;
  // The same seed, the same poisoned set; another seed, another.
  const auto again = flip_labels_uniform(data, LabelFlipOptions().rate(0.2).seed(7));
  EXPECT_TRUE(torch::equal(again.changed, flipped.changed));
  EXPECT_TRUE(torch::equal(again.data.labels, flipped.data.labels));
  const auto other = flip_labels_uniform(data, LabelFlipOptions().rate(0.2).seed(8));
  EXPECT_FALSE(torch::equal(other.changed, flipped.changed));
  EXPECT_EQ(flip_labels_uniform(data, LabelFlipOptions().rate(0)).changed.numel(), 0);
  EXPECT_EQ(flip_labels_uniform(data, LabelFlipOptions().rate(1)).changed.numel(), 200);
}

TEST_F(LabelFlippingTest, TargetedFlipsOnlySourceToTarget) {
  const auto data = toy();
  const auto flipped = flip_labels_targeted(data, 2, 4, LabelFlipOptions().rate(0.5).seed(1));
  EXPECT_EQ(flipped.changed.numel(), 20);  // half of the 40 samples of class 2
  expect_only_changed(data, flipped);
  EXPECT_TRUE(flipped.original_labels.eq(2).all().item<bool>());
  EXPECT_TRUE(flipped.data.labels.index_select(0, flipped.changed).eq(4).all().item<bool>());
}

TEST_F(LabelFlippingTest, ByLossFlipsTheWorstFittedToTheirMostLikelyWrongClass) {
  // Scripted logits, looked up by the sample's index (its only pixel).
  const int64_t n = 10;
  auto logits = torch::zeros({n, 3});
  const auto labels = torch::zeros({n}, torch::kLong);
  // Sample i: true class 0 with logit 5 − i, class 1 at 0, class 2 at 1: loss grows with i and
  // the most likely wrong class is 2.
  for (int64_t i = 0; i < n; ++i) {
    logits[i][0] = 5.0 - static_cast<double>(i);
    logits[i][2] = 1.0;
  }
  const auto images = torch::arange(n, torch::kFloat).reshape({n, 1, 1, 1});
  const Dataset data(images, labels, 3, "scripted");
  auto model = Model::from_function(
      [logits](const at::Tensor& x) {
        return logits.index_select(0, x.flatten().round().to(torch::kLong));
      },
      {}, "scripted");
  const auto flipped = flip_labels_by_loss(model, data, LabelFlipOptions().rate(0.3));
  EXPECT_TRUE(torch::equal(flipped.changed, torch::tensor({7, 8, 9}, torch::kLong)));
  EXPECT_TRUE(flipped.data.labels.index_select(0, flipped.changed).eq(2).all().item<bool>());
  expect_only_changed(data, flipped);
}

TEST_F(LabelFlippingTest, BadInputIsRefused) {
  const auto data = toy();
  for (const double rate : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_BULWARK_ERROR(flip_labels_uniform(data, LabelFlipOptions().rate(rate)),
                         "rate must be in [0, 1]");
  }
  EXPECT_BULWARK_ERROR(flip_labels_targeted(data, 5, 1), "source class must be in [0, 5)");
  EXPECT_BULWARK_ERROR(flip_labels_targeted(data, 1, -1), "target class must be in [0, 5)");
  EXPECT_BULWARK_ERROR(flip_labels_targeted(data, 3, 3), "must differ");
  EXPECT_BULWARK_ERROR(flip_labels_uniform(toy(10, 1)), "at least 2 classes");
  EXPECT_BULWARK_ERROR(flip_labels_uniform(data.head(0)), "empty");
  auto two = Model::from_function([](const at::Tensor& x) { return torch::zeros({x.size(0), 2}); },
                                  {}, "two");
  EXPECT_BULWARK_ERROR(flip_labels_by_loss(two, data), "gives 2 classes", "has 5");
}

}  // namespace
}  // namespace bulwark
