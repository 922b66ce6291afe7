// Neural Cleanse on linear models whose backdoor is known: the trigger is recovered, its class
// flagged and no other; unlearning removes the backdoor and keeps clean accuracy.
#include "bulwark/poisoning/neural_cleanse.h"

#include "attacks/attack_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::LinearModel;
class NeuralCleanseTest : public testing::SeededTest {};

constexpr int64_t kClasses = 6;

// Class k has a dense ±1 template over the 6×6 image except pixel (0, 0); a clean image of
// class y is 0.5 + 0.3·T_y, so its own logit is 20·0.3·35/36 ≈ 5.8 and the others' are near 0.
// With `backdoor`, class 0 also reads pixel (0, 0): 20·(x₀₀ − 0.5) is 0 on clean images and 10
// when that pixel is 1, a trigger of L1 norm under 1 where every other class needs a dense
// change.
struct Toy {
  at::Tensor templates;  // [K, 36]
  LinearModel linear;
};

Toy toy_model(bool backdoor) {
  auto templates = torch::randint(0, 2, {kClasses, 36}, torch::kLong).to(torch::kFloat) * 2 - 1;
  templates.select(1, 0).zero_();
  auto w = templates * (20.0f / 36.0f);
  auto b = -(w * 0.5f).sum(1);
  if (backdoor) {
    w[0][0] = 20.0f;
    b[0] -= 10.0f;
  }
  return {templates, LinearModel(w.clone(), b.clone())};
}

at::Tensor clean_images(const at::Tensor& templates, int64_t n, at::Tensor* labels = nullptr) {
  const auto y = torch::arange(n, torch::kLong).remainder(kClasses);
  if (labels != nullptr) *labels = y;
  return (0.5 + 0.3 * templates.index_select(0, y)).view({n, 1, 6, 6});
}

NeuralCleanseOptions quick() {
  return NeuralCleanseOptions().checks(40).batches_per_check(5).batch_size(24).seed(1);
}

TEST_F(NeuralCleanseTest, RecoversAKnownTriggerAndFlagsOnlyItsClass) {
  auto toy = toy_model(true);
  const auto images = clean_images(toy.templates, 120);
  const auto report = neural_cleanse(toy.linear.model, images, kClasses, quick());
  ASSERT_EQ(report.classes.size(), static_cast<size_t>(kClasses));
  EXPECT_TRUE(report.backdoored);
  EXPECT_EQ(report.flagged, std::vector<int64_t>{0});
  const auto& target = report.classes[0];
  EXPECT_TRUE(target.reached);
  EXPECT_GT(target.anomaly_index, 2.0);
  // The mask sits on pixel (0, 0) and the pattern there is bright.
  EXPECT_GT(target.mask[0][0][0].item<double>(), 0.5 * target.l1_norm);
  EXPECT_LT(target.l1_norm, 1.5);
  EXPECT_GT(target.pattern[0][0][0].item<double>(), 0.8);
  for (int64_t k = 1; k < kClasses; ++k) {
    EXPECT_GT(report.classes[k].l1_norm, 3 * target.l1_norm) << "class " << k;
    EXPECT_FALSE(report.classes[k].flagged);
  }
  // The reversed trigger works on fresh clean images, and the model's gradients were not
  // touched.
  EXPECT_FALSE(toy.linear.weight.grad().defined());
  torch::NoGradGuard no_grad;
  const auto stamped = target.trigger().apply(clean_images(toy.templates, 60));
  EXPECT_GT(toy.linear.model.forward(stamped).argmax(1).eq(0).to(torch::kDouble).mean().item<double>(),
            0.95);
}

TEST_F(NeuralCleanseTest, FlagsNothingOnACleanModelAndIsSeeded) {
  auto toy = toy_model(false);
  const auto images = clean_images(toy.templates, 120);
  const auto report = neural_cleanse(toy.linear.model, images, kClasses, quick());
  EXPECT_FALSE(report.backdoored);
  for (const auto& c : report.classes) EXPECT_LT(c.anomaly_index, 2.0) << "class " << c.label;
  const auto again = neural_cleanse(toy.linear.model, images, kClasses, quick());
  for (int64_t k = 0; k < kClasses; ++k) {
    EXPECT_TRUE(torch::equal(again.classes[k].mask, report.classes[k].mask));
  }
}

TEST_F(NeuralCleanseTest, UnlearningRemovesTheBackdoorAndKeepsCleanAccuracy) {
  auto toy = toy_model(true);
  at::Tensor labels;
  const auto images = clean_images(toy.templates, 600, &labels);
  const auto trigger = Trigger::patch(torch::ones({1, 1}), 0, 0);
  const auto success = [&] {
    torch::NoGradGuard no_grad;
    const auto predicted = toy.linear.model.forward(trigger.apply(images)).argmax(1);
    return predicted.eq(0).logical_and(labels.ne(0)).to(torch::kDouble).sum().item<double>() /
           labels.ne(0).sum().item<double>();
  };
  const auto accuracy = [&] {
    torch::NoGradGuard no_grad;
    return toy.linear.model.forward(images).argmax(1).eq(labels).to(torch::kDouble).mean().item<double>();
  };
  ASSERT_EQ(success(), 1.0);
  unlearn_backdoor(toy.linear.model, Dataset(images, labels, kClasses, "toy"), trigger,
                   UnlearningOptions().epochs(5).learning_rate(0.1).seed(2));
  EXPECT_LT(success(), 0.05);
  EXPECT_GT(accuracy(), 0.95);
}

TEST_F(NeuralCleanseTest, RejectsBadInput) {
  auto toy = toy_model(true);
  const auto images = clean_images(toy.templates, 12);
  EXPECT_BULWARK_ERROR(neural_cleanse(toy.linear.model, images, 1, quick()), "num_classes");
  EXPECT_BULWARK_ERROR(neural_cleanse(toy.linear.model, images + 1, kClasses, quick()), "box");
  EXPECT_BULWARK_ERROR(neural_cleanse(toy.linear.model, images.flatten(1), kClasses, quick()),
                       "images");
  EXPECT_BULWARK_ERROR(neural_cleanse(toy.linear.model, images, kClasses, quick().checks(0)),
                       "checks");
  EXPECT_BULWARK_ERROR(
      neural_cleanse(toy.linear.model, images, kClasses, quick().cost_multiplier(1)),
      "cost_multiplier");
  EXPECT_BULWARK_ERROR(unlearn_backdoor(toy.linear.model, Dataset(images, torch::zeros({12},
                                        torch::kLong), kClasses), Trigger::checkerboard(7),
                                        UnlearningOptions()),
                       "larger than");
  EXPECT_BULWARK_ERROR(Trigger::masked(torch::full({6, 6}, 2.0), torch::rand({1, 6, 6})),
                       "[0, 1]");
  EXPECT_BULWARK_ERROR(Trigger::masked(torch::rand({6, 6}), torch::rand({1, 5, 6})), "6x6",
                       "5x6");
}

}  // namespace
}  // namespace bulwark
