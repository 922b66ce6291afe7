// Patches and stickers on the real Fashion-MNIST, against the demo SmallCNN.
#include <iostream>

#include "bulwark/attacks/patch.h"
#include "bulwark/attacks/sticker.h"
#include "bulwark/data/idx.h"
#include "e2e/reference_models.h"
#include "test_util.h"

namespace bulwark {
namespace {

class PhysicalAttacksTest : public testing::SeededTest {
 protected:
  static void SetUpTestSuite() {
    model_ = new Model(testing::reference_model("standard"));
    train_ = new Dataset(load_fashion_mnist(Split::Train).head(5000));
    held_out_ = new Dataset(load_fashion_mnist(Split::Test).head(1000));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete train_;
    delete held_out_;
  }
  static Model* model_;
  static Dataset* train_;
  static Dataset* held_out_;
};
Model* PhysicalAttacksTest::model_ = nullptr;
Dataset* PhysicalAttacksTest::train_ = nullptr;
Dataset* PhysicalAttacksTest::held_out_ = nullptr;

TEST_F(PhysicalAttacksTest, UniversalPatchFoolsHeldOutImagesUnderRandomPlacement) {
  const auto evaluation_options = EOTEvaluationOptions().views(4).seed(11);
  for (const int64_t target : {-1, 8}) {
    const auto trained =
        train_patch(*model_, *train_, PatchOptions().size(0.1).target(target).steps(400).seed(3));
    EXPECT_NEAR(trained.patch.area_fraction(28, 28), 0.1, 1e-9);
    EXPECT_GE(trained.patch.pixels.min().item<float>(), 0.0f);
    EXPECT_LE(trained.patch.pixels.max().item<float>(), 1.0f);
    const auto e = evaluate_patch(*model_, *held_out_, trained.patch, evaluation_options);
    std::cout << "patch 10% target " << target << ": success " << e.success_rate
              << ", random patch " << e.baseline_success_rate << ", every view "
              << e.all_views_rate << " over " << e.images << " images\n";
    if (target < 0) {
      EXPECT_GT(e.success_rate, 0.2);
      EXPECT_GT(e.success_rate, 1.6 * e.baseline_success_rate);
    } else {
      // A universal targeted patch of 10% under random placement is weak on this model (an
      // independent PyTorch implementation on a SmallCNN trained the same way reached 3-7%),
      // so only the direction is asserted.
      EXPECT_GT(e.success_rate, e.baseline_success_rate);
    }
  }
}

TEST_F(PhysicalAttacksTest, MaskedStickerSurvivesTransformsOnHeldOutImages) {
  // Two horizontal strips across the middle, 15% of the image.
  auto mask = torch::zeros({28, 28});
  mask.slice(0, 8, 11).slice(1, 4, 24).fill_(1);
  mask.slice(0, 17, 20).slice(1, 4, 24).fill_(1);
  const auto options = StickerOptions(mask).target(8).seed(2);
  const auto trained = train_sticker(*model_, *train_, options);
  const auto stickered = apply_sticker(held_out_->images, trained.sticker);
  const auto outside = mask.eq(0).expand_as(held_out_->images);
  EXPECT_TRUE(
      torch::equal(stickered.masked_select(outside), held_out_->images.masked_select(outside)));
  const auto e = evaluate_sticker(
      *model_, *held_out_, trained.sticker,
      EOTEvaluationOptions().views(4).transforms(options.transforms()).seed(11));
  std::cout << "sticker 15% target 8: success " << e.success_rate << ", random signs "
            << e.baseline_success_rate << ", every view " << e.all_views_rate << "\n";
  EXPECT_GT(e.success_rate, 0.6);
  EXPECT_GT(e.success_rate, 2.5 * e.baseline_success_rate);
}

}  // namespace
}  // namespace bulwark
