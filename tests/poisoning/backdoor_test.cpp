#include "bulwark/poisoning/backdoor.h"

#include <torch/torch.h>

#include <cmath>

#include "attacks/attack_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

class BackdoorTest : public testing::SeededTest {};

Dataset toy(int64_t n = 100, int64_t classes = 4) {
  return Dataset(0.5 * torch::rand({n, 1, 8, 8}), torch::arange(n, torch::kLong).remainder(classes),
                 classes, "toy");
}

TEST_F(BackdoorTest, PatchIsStampedWhereAskedAndNowhereElse) {
  const auto images = 0.5 * torch::rand({3, 2, 8, 8});
  const auto trigger = Trigger::checkerboard(3, 1);  // bottom-right: rows and columns 4..6
  const auto out = trigger.apply(images);
  const auto region = out.slice(2, 4, 7).slice(3, 4, 7);
  const auto board = torch::tensor({{1, 0, 1}, {0, 1, 0}, {1, 0, 1}}, torch::kFloat);
  for (int64_t c = 0; c < 2; ++c) EXPECT_TRUE(torch::equal(region[0][c], board));
  auto outside = torch::ones({8, 8}, torch::kBool);
  outside.slice(0, 4, 7).slice(1, 4, 7).fill_(false);
  EXPECT_TRUE(torch::equal(out.masked_select(outside), images.masked_select(outside)));
  const auto placed = Trigger::patch(torch::ones({2, 2}), 0, 1).apply(images);
  EXPECT_TRUE(placed.slice(2, 0, 2).slice(3, 1, 3).eq(1).all().item<bool>());
  EXPECT_EQ(trigger.describe(), "patch 3x3 in the bottom-right corner");
}

TEST_F(BackdoorTest, TriggersParseFromTheirCommandLineSpelling) {
  const auto images = 0.5 * torch::rand({2, 1, 8, 8});
  EXPECT_TRUE(torch::equal(Trigger::parse("checkerboard:3").apply(images),
                           Trigger::checkerboard(3).apply(images)));
  EXPECT_TRUE(torch::equal(Trigger::parse("checkerboard:2@0,5").apply(images),
                           Trigger::checkerboard(2, 1, 0, 5).apply(images)));
  const auto square = Trigger::parse("square:2@1,1").apply(images);
  EXPECT_TRUE(square.slice(2, 1, 3).slice(3, 1, 3).eq(1).all().item<bool>());
  EXPECT_EQ(Trigger::parse("square:4").describe(), "patch 4x4 in the bottom-right corner");
  for (const char* bad : {"checkerboard", "checkerboard:", "checkerboard:0", "checkerboard:-3",
                          "circle:3", "square:3@1", "square:3@1,2,3", "square:3x", "square:3@-1,2"}) {
    EXPECT_BULWARK_ERROR(Trigger::parse(bad), "trigger", bad);
  }
}

TEST_F(BackdoorTest, BlendMixesThePatternAtItsRatio) {
  const auto images = torch::rand({2, 1, 4, 4});
  const auto pattern = torch::rand({1, 4, 4});
  const auto out = Trigger::blend(pattern, 0.25).apply(images);
  EXPECT_TRUE(torch::allclose(out, 0.75 * images + 0.25 * pattern.unsqueeze(0)));
}

TEST_F(BackdoorTest, PlantingChangesExactlyTheChosenSamplesAndIsSeeded) {
  const auto data = toy();
  const auto trigger = Trigger::checkerboard(3);
  const auto options = BackdoorOptions().rate(0.1).target(2).seed(5);
  const auto poisoned = plant_backdoor(data, trigger, options);
  EXPECT_EQ(poisoned.changed.numel(), 10);
  const auto mask = changed_mask(poisoned);
  const auto kept = mask.logical_not();
  // Unselected samples bitwise unchanged.
  EXPECT_TRUE(torch::equal(poisoned.data.images.index_select(0, kept.nonzero().squeeze(1)),
                           data.images.index_select(0, kept.nonzero().squeeze(1))));
  EXPECT_TRUE(torch::equal(poisoned.data.labels.masked_select(kept), data.labels.masked_select(kept)));
  // Selected: triggered, relabelled to the target, never of the target class before.
  EXPECT_TRUE(torch::equal(poisoned.data.images.index_select(0, poisoned.changed),
                           trigger.apply(data.images.index_select(0, poisoned.changed))));
  EXPECT_TRUE(poisoned.data.labels.masked_select(mask).eq(2).all().item<bool>());
  EXPECT_TRUE(poisoned.original_labels.ne(2).all().item<bool>());
  // The same seed gives the same set.
  const auto again = plant_backdoor(data, trigger, options);
  EXPECT_TRUE(torch::equal(again.changed, poisoned.changed));
  EXPECT_TRUE(torch::equal(again.data.images, poisoned.data.images));
  EXPECT_FALSE(torch::equal(plant_backdoor(data, trigger, BackdoorOptions(options).seed(6)).changed,
                            poisoned.changed));
  // All-to-all: y goes to y + 1 mod K.
  const auto all = plant_backdoor(data, trigger,
                                  BackdoorOptions().rate(0.2).mode(BackdoorMode::AllToAll));
  EXPECT_EQ(all.changed.numel(), 20);
  EXPECT_TRUE(torch::equal(all.data.labels.index_select(0, all.changed),
                           (all.original_labels + 1).remainder(4)));
}

TEST_F(BackdoorTest, EvaluationMeasuresCleanAccuracyAndAttackSuccess) {
  // A model that obeys the trigger: bright bottom-right corner (pixel (6, 6)) → class 3,
  // otherwise the label hidden in pixel (0, 0) (scaled by 0.1).
  const auto test = [] {
    auto images = torch::zeros({40, 1, 8, 8});
    auto labels = torch::arange(40, torch::kLong).remainder(4);
    images.select(2, 0).select(2, 0).copy_(labels.to(torch::kFloat).unsqueeze(1) * 0.1);
    return Dataset(images, labels, 4, "scripted");
  }();
  auto model = Model::from_function(
      [](const at::Tensor& x) {
        const auto hidden = (x.select(2, 0).select(2, 0).squeeze(1) * 10).round().to(torch::kLong);
        const auto triggered = x.select(2, 6).select(2, 6).squeeze(1).gt(0.9);
        const auto label = torch::where(triggered, torch::full_like(hidden, 3), hidden);
        return torch::one_hot(label, 4).to(torch::kFloat);
      },
      {}, "obeys");
  const auto trigger = Trigger::checkerboard(3);
  const auto e = evaluate_backdoor(model, test, trigger, BackdoorOptions().target(3));
  EXPECT_DOUBLE_EQ(e.clean_accuracy, 1.0);
  EXPECT_EQ(e.triggered, 30);  // the 10 images of class 3 are not counted
  EXPECT_DOUBLE_EQ(e.attack_success_rate, 1.0);
  ASSERT_EQ(e.per_class_accuracy.size(), 4u);
  // A trigger elsewhere does nothing.
  const auto elsewhere = evaluate_backdoor(model, test, Trigger::checkerboard(3, 1, 0, 2),
                                           BackdoorOptions().target(3));
  EXPECT_DOUBLE_EQ(elsewhere.attack_success_rate, 0.0);
}

TEST_F(BackdoorTest, CleanLabelPoisonKeepsLabelsAndStaysInItsBudget) {
  const auto data = toy();
  auto proxy = testing::LinearModel(torch::randn({4, 64}), torch::zeros({4}));
  const auto trigger = Trigger::checkerboard(3);
  const auto options = CleanLabelOptions().rate(0.5).target(2).eps(0.05).steps(5).seed(4);
  const auto poisoned = plant_clean_label_backdoor(proxy.model, data, trigger, options);
  // Half of class 2's 25 images (rounded), all of class 2, labels untouched everywhere.
  ASSERT_EQ(poisoned.changed.numel(), 13);
  EXPECT_TRUE(data.labels.index_select(0, poisoned.changed).eq(2).all().item<bool>());
  EXPECT_TRUE(torch::equal(poisoned.data.labels, data.labels));
  EXPECT_TRUE(torch::equal(poisoned.original_labels, data.labels.index_select(0, poisoned.changed)));
  // Changed images carry the trigger and, elsewhere, a perturbation within eps; the rest are
  // bitwise the originals.
  const auto before = data.images.index_select(0, poisoned.changed);
  const auto after = poisoned.data.images.index_select(0, poisoned.changed);
  EXPECT_TRUE(torch::equal(trigger.apply(after), after));
  auto outside = torch::ones({8, 8}, torch::kBool);
  outside.slice(0, 4, 7).slice(1, 4, 7).fill_(false);
  const auto delta = (after - before).masked_select(outside);
  EXPECT_LE(delta.abs().max().item<double>(), 0.05 + 1e-6);
  EXPECT_GT(delta.abs().max().item<double>(), 0.01);
  const auto mask = changed_mask(poisoned);
  EXPECT_TRUE(torch::equal(poisoned.data.images.index({mask.logical_not()}),
                           data.images.index({mask.logical_not()})));
  const auto again = plant_clean_label_backdoor(proxy.model, data, trigger, options);
  EXPECT_TRUE(torch::equal(again.data.images, poisoned.data.images));
  EXPECT_BULWARK_ERROR(plant_clean_label_backdoor(proxy.model, data, trigger, CleanLabelOptions(options).rate(2)),
                       "rate");
  EXPECT_BULWARK_ERROR(
      plant_clean_label_backdoor(proxy.model, data, trigger, CleanLabelOptions().target(9)),
      "target class must be in [0, 4)");
  EXPECT_BULWARK_ERROR(
      plant_clean_label_backdoor(proxy.model, data, trigger, CleanLabelOptions().steps(0)),
      "steps");
}

TEST_F(BackdoorTest, BadInputIsRefused) {
  const auto data = toy();
  const auto trigger = Trigger::checkerboard(3);
  EXPECT_BULWARK_ERROR(plant_backdoor(data, trigger, BackdoorOptions().rate(1.1)),
                       "rate must be in [0, 1]");
  EXPECT_BULWARK_ERROR(plant_backdoor(data, trigger, BackdoorOptions().target(4)),
                       "target class must be in [0, 4)");
  EXPECT_BULWARK_ERROR(plant_backdoor(data, trigger, BackdoorOptions().rate(0.9)),
                       "asks for 90 images", "only 75");
  EXPECT_BULWARK_ERROR(plant_backdoor(data, Trigger::checkerboard(9)), "larger than the 8x8");
  EXPECT_BULWARK_ERROR(plant_backdoor(data, Trigger::patch(torch::ones({3, 3}), 6, 6)),
                       "runs off");
  EXPECT_BULWARK_ERROR(plant_backdoor(data, Trigger::blend(torch::ones({1, 4, 4}), 0.1)),
                       "blend pattern is 4x4");
  EXPECT_BULWARK_ERROR(Trigger::blend(torch::ones({1, 8, 8}), 0), "alpha must be in (0, 1]");
  EXPECT_BULWARK_ERROR(Trigger::patch(torch::ones({2, 2}), -2, 0), "position");
  EXPECT_BULWARK_ERROR(Trigger::patch(torch::full({2, 2}, NAN)), "non-finite");
  EXPECT_BULWARK_ERROR(Trigger::patch(torch::ones({3, 2, 2}), 0, 0).apply(torch::rand({1, 2, 8, 8})),
                       "3 channels", "images 2");
  EXPECT_BULWARK_ERROR(trigger.apply(torch::rand({8, 8})), "[N, C, H, W]");
  PoisonedDataset stray{data, torch::tensor({3, 100}, torch::kLong), torch::tensor({0, 0})};
  EXPECT_BULWARK_ERROR(changed_mask(stray), "changed indices must be in [0, 100)", "[3, 100]");
  EXPECT_BULWARK_ERROR(trigger.apply(torch::zeros({1, 1, 8, 8}, torch::kByte)), "floating point");
  EXPECT_BULWARK_ERROR(backdoor_label(1, 1, BackdoorOptions()), "num_classes >= 2");
  EXPECT_BULWARK_ERROR(backdoor_label(4, 4, BackdoorOptions()), "label in [0, num_classes)");
  EXPECT_BULWARK_ERROR(backdoor_label(1, 4, BackdoorOptions().target(7)), "target class");
  EXPECT_EQ(backdoor_label(3, 4, BackdoorOptions().mode(BackdoorMode::AllToAll)), 0);
}

}  // namespace
}  // namespace bulwark
