#include "bulwark/core/losses.h"

#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class LossesTest : public SeededTest {};

TEST_F(LossesTest, CrossEntropyMatchesLogSoftmax) {
  const auto logits = torch::randn({6, 4}, torch::kDouble);
  const auto labels = torch::tensor({0, 1, 2, 3, 0, 1}, torch::kLong);
  const auto expected = -torch::log_softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1);
  EXPECT_TRUE(torch::allclose(cross_entropy(logits, labels, Reduction::None), expected));
  EXPECT_TRUE(torch::allclose(cross_entropy(logits, labels), expected.mean()));
  EXPECT_TRUE(torch::allclose(cross_entropy(logits, labels, Reduction::Sum), expected.sum()));
}

TEST_F(LossesTest, CwMarginKnownValues) {
  const auto logits = torch::tensor({{3.0, 1.0, 0.0}, {0.0, 2.0, 5.0}});
  const auto labels = torch::tensor({0, 1}, torch::kLong);
  // Untargeted: Z_y − max other: 3 − 1 = 2; 2 − 5 = −3 → clamped at −κ.
  EXPECT_TRUE(torch::allclose(cw_margin(logits, labels, 0.0), torch::tensor({2.0f, 0.0f})));
  EXPECT_TRUE(torch::allclose(cw_margin(logits, labels, 5.0), torch::tensor({2.0f, -3.0f})));
  // Targeted at class 2: max other − Z_t: 3 − 0 = 3; 2 − 5 = −3.
  const auto targets = torch::tensor({2, 2}, torch::kLong);
  EXPECT_TRUE(torch::allclose(cw_margin(logits, targets, 1.0, true), torch::tensor({3.0f, -1.0f})));
  EXPECT_BULWARK_ERROR(cw_margin(logits, labels, -1.0), "kappa must be >= 0");
}

TEST_F(LossesTest, DlrIsShiftAndScaleInvariant) {
  const auto logits = torch::randn({8, 10}, torch::kDouble);
  const auto labels = torch::randint(0, 10, {8}, torch::kLong);
  const auto base = dlr_loss(logits, labels);
  EXPECT_TRUE(torch::allclose(dlr_loss(logits * 7.0 + 3.0, labels), base, 1e-6, 1e-9));
  const auto targets = (labels + 1) % 10;
  const auto targeted = dlr_loss(logits, labels, targets);
  EXPECT_TRUE(torch::allclose(dlr_loss(logits * 2.0 - 1.0, labels, targets), targeted, 1e-6, 1e-9));
}

TEST_F(LossesTest, DlrKnownValue) {
  // z = [4, 3, 1, 0], y = 0: −(4 − 3) / (4 − 1) = −1/3.
  const auto logits = torch::tensor({{4.0, 3.0, 1.0, 0.0}}, torch::kDouble);
  const auto loss = dlr_loss(logits, torch::tensor({0}, torch::kLong));
  EXPECT_NEAR(loss.item<double>(), -1.0 / 3.0, 1e-9);
}

TEST_F(LossesTest, RejectsBadLabelsAndShapes) {
  const auto logits = torch::randn({3, 4});
  EXPECT_BULWARK_ERROR(cross_entropy(logits, torch::tensor({0, 1, 4}, torch::kLong)), "labels",
                       "[0, 4)", "4]");
  EXPECT_BULWARK_ERROR(cross_entropy(logits, torch::tensor({0, 1}, torch::kLong)), "shape [3]");
  EXPECT_BULWARK_ERROR(cross_entropy(logits, torch::tensor({0.0, 1.0, 2.0})), "integer");
  EXPECT_BULWARK_ERROR(cross_entropy(torch::randn({3}), torch::tensor({0}, torch::kLong)),
                       "logits");
  EXPECT_BULWARK_ERROR(dlr_loss(torch::randn({2, 2}), torch::tensor({0, 1}, torch::kLong)),
                       "at least 3 classes");
}

}  // namespace
}  // namespace bulwark
