#include "bulwark/eval/accuracy.h"

#include "test_util.h"

namespace bulwark {
namespace {

class AccuracyTest : public testing::SeededTest {};

// A model that predicts the class stored in the first input feature.
Model oracle(int64_t classes) {
  return Model::from_function(
      [classes](const at::Tensor& x) {
        return torch::one_hot(x.select(1, 0).to(torch::kLong), classes).to(torch::kFloat);
      },
      {});
}

TEST_F(AccuracyTest, CountsPerClassAndOverall) {
  const auto labels = torch::tensor({0, 1, 2, 2, 1, 0, 2}, torch::kLong);
  auto predicted = labels.clone();
  predicted[3] = 0;  // one class-2 sample wrong
  predicted[4] = 2;  // one class-1 sample wrong
  const Dataset data(predicted.to(torch::kFloat).unsqueeze(1), labels, 3);
  auto model = oracle(3);
  for (const int64_t batch : {1, 3, 500}) {
    const auto report = clean_accuracy(model, data, batch);
    EXPECT_EQ(report.correct, 5);
    EXPECT_EQ(report.total, 7);
    EXPECT_NEAR(report.accuracy, 5.0 / 7.0, 1e-12);
    ASSERT_EQ(report.per_class_accuracy.size(), 3u);
    EXPECT_DOUBLE_EQ(report.per_class_accuracy[0], 1.0);
    EXPECT_DOUBLE_EQ(report.per_class_accuracy[1], 0.5);
    EXPECT_NEAR(report.per_class_accuracy[2], 2.0 / 3.0, 1e-12);
  }
  EXPECT_TRUE(torch::equal(predict(model, data.images, 2), predicted));
}

TEST_F(AccuracyTest, RestoresModeAndRejectsBadInput) {
  auto model = oracle(3);
  model.train(true);
  const Dataset data(torch::zeros({2, 1}), torch::tensor({0, 0}, torch::kLong), 3);
  clean_accuracy(model, data);
  EXPECT_TRUE(model.is_training());
  EXPECT_BULWARK_ERROR(clean_accuracy(model, data.slice(0, 0)), "empty");
  EXPECT_BULWARK_ERROR(clean_accuracy(model, data, 0), "batch_size");
  auto small = oracle(2);
  const Dataset five(torch::zeros({2, 1}), torch::tensor({0, 4}, torch::kLong), 5);
  EXPECT_BULWARK_ERROR(clean_accuracy(small, five), "2 logits", "labels up to 4");
}

}  // namespace
}  // namespace bulwark
