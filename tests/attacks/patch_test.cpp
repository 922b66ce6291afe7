#include "bulwark/attacks/patch.h"

#include "bulwark/attacks/sticker.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class PatchTest : public SeededTest {};

// Dark 8×8 images (values in [0, 0.2]) and a model whose class 2 fires when the image's mean
// brightness exceeds 0.27: only a bright region covering a good part of the image reaches
// it, a random one of the same size does not. Classes 0 and 1 split the clean images by the
// brightness of their left half, with small logits, so the optimal patch is all white.
struct BrightnessWorld {
  at::Tensor scale = torch::ones({1}, torch::requires_grad());
  Model model = Model::from_function(
      [s = scale](const at::Tensor& x) {
        const auto mean = x.mean({1, 2, 3});
        const auto left = x.slice(3, 0, 4).mean({1, 2, 3}) - x.slice(3, 4, 8).mean({1, 2, 3});
        return torch::stack({2 * left, -2 * left, 50 * s * (mean - 0.27)}, 1);
      },
      {scale}, "brightness");

  Dataset data(int64_t n, uint64_t seed) {
    auto generator = make_generator(seed);
    const auto images = at::rand({n, 1, 8, 8}, generator, torch::TensorOptions()) * 0.2;
    torch::NoGradGuard no_grad;
    return Dataset(images, model.forward(images).argmax(1), 3, "dark");
  }
};

TEST_F(PatchTest, MakePatchCoversTheRequestedArea) {
  for (const auto shape : {PatchShape::Square, PatchShape::Circle}) {
    for (const double size : {0.05, 0.1, 0.2}) {
      const auto patch = make_patch(shape, size, 1, 28, 28);
      EXPECT_NEAR(patch.area_fraction(28, 28), size, 1e-9);
      EXPECT_LE(patch.pixel_scale, 1.0);
      EXPECT_EQ(patch.pixels.size(1), patch.mask.size(0));
    }
  }
  EXPECT_LT(make_patch(PatchShape::Circle, 0.1, 1, 28, 28).mask.mean().item<float>(), 0.9f);
  EXPECT_BULWARK_ERROR(make_patch(PatchShape::Circle, 1.0, 1, 28, 28), "larger than the image");
  EXPECT_BULWARK_ERROR(make_patch(PatchShape::Square, 0.0, 1, 28, 28), "(0, 1]");
  EXPECT_EQ(parse_patch_shape("circle"), PatchShape::Circle);
  EXPECT_BULWARK_ERROR(parse_patch_shape("star"), "'square' or 'circle'");
}

TEST_F(PatchTest, TargetedPatchLearnsTheKnownOptimumAndBeatsARandomPatch) {
  BrightnessWorld world;
  const auto train = world.data(256, 1), test = world.data(128, 2);
  const auto options = PatchOptions().size(0.35).target(2).steps(60).batch_size(32).learning_rate(0.1).seed(5);
  const auto trained = train_patch(world.model, train, options);
  // The patch stays inside the box; the optimum is white.
  EXPECT_GE(trained.patch.pixels.min().item<float>(), 0.0f);
  EXPECT_LE(trained.patch.pixels.max().item<float>(), 1.0f);
  EXPECT_GT(trained.patch.pixels.mean().item<float>(), 0.9f);
  EXPECT_EQ(trained.patch.target, 2);
  EXPECT_EQ(static_cast<int64_t>(trained.losses.size()), 60);
  EXPECT_LT(trained.losses.back(), trained.losses.front());
  const auto evaluation = evaluate_patch(world.model, test, trained.patch,
                                         EOTEvaluationOptions().views(5).seed(3));
  EXPECT_EQ(evaluation.images, 128);
  EXPECT_EQ(evaluation.views, 640);
  EXPECT_GT(evaluation.success_rate, 0.95);
  EXPECT_LT(evaluation.baseline_success_rate, 0.2);
  // The model's parameters got no gradient from the attack.
  EXPECT_FALSE(world.scale.grad().defined());
  // Same seed, same patch.
  const auto again = train_patch(world.model, train, options);
  EXPECT_TRUE(torch::equal(again.patch.pixels, trained.patch.pixels));
}

TEST_F(PatchTest, RejectsBadInputs) {
  BrightnessWorld world;
  const auto data = world.data(16, 1);
  EXPECT_BULWARK_ERROR(train_patch(world.model, data, PatchOptions().target(3)),
                       "target class must be in [0, 3)");
  EXPECT_BULWARK_ERROR(train_patch(world.model, data, PatchOptions().size(0.95).shape(PatchShape::Circle)),
                       "larger than the image");
  EXPECT_BULWARK_ERROR(train_patch(world.model, data, PatchOptions().steps(0)), "steps must be >= 1");
  EXPECT_BULWARK_ERROR(train_patch(world.model, Dataset(data.images + 2, data.labels, 3), PatchOptions()),
                       "must lie in the input box");
  auto patch = make_patch(PatchShape::Square, 0.1, 3, 8, 8);
  EXPECT_BULWARK_ERROR(evaluate_patch(world.model, data, patch), "3 channels");
}

TEST_F(PatchTest, StickerLeavesPixelsOutsideTheMaskBitwiseUnchanged) {
  BrightnessWorld world;
  const auto train = world.data(256, 1), test = world.data(128, 2);
  auto mask = torch::zeros({8, 8});
  mask[1].fill_(1);  // two horizontal strips, a quarter of the image
  mask[5].fill_(1);
  const auto options = StickerOptions(mask).target(2).steps(80).learning_rate(0.1).penalty(0.001).seed(4);
  const auto trained = train_sticker(world.model, train, options);
  const auto stickered = apply_sticker(test.images, trained.sticker);
  const auto outside = mask.eq(0).expand_as(test.images);
  EXPECT_TRUE(torch::equal(stickered.masked_select(outside), test.images.masked_select(outside)));
  EXPECT_GE(stickered.min().item<float>(), 0.0f);
  EXPECT_LE(stickered.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(trained.sticker.perturbation.masked_select(mask.eq(0).unsqueeze(0)),
                           torch::zeros({48})));
  const auto evaluation = evaluate_sticker(world.model, test, trained.sticker,
                                           EOTEvaluationOptions().views(4).transforms(
                                               TransformOptions().brightness(0.02)));
  EXPECT_GT(evaluation.success_rate, 0.9);
  EXPECT_LT(evaluation.baseline_success_rate, 0.2);
  EXPECT_FALSE(world.scale.grad().defined());
}

TEST_F(PatchTest, StickerPenaltyShrinksThePerturbationAndPaletteIsUsed) {
  BrightnessWorld world;
  const auto train = world.data(128, 1);
  auto mask = torch::zeros({8, 8});
  mask.slice(0, 0, 4).fill_(1);
  const auto base = StickerOptions(mask).target(2).steps(40).seed(1);
  auto loose = base, tight = base;
  const auto a = train_sticker(world.model, train, loose.penalty(0));
  const auto b = train_sticker(world.model, train, tight.penalty(0.5));
  EXPECT_LT(b.sticker.perturbation.norm().item<float>(), a.sticker.perturbation.norm().item<float>());
  // NPS: zero on printable colours, positive elsewhere.
  const auto palette = torch::tensor({{0.0}, {1.0}});
  EXPECT_NEAR(non_printability_score(torch::tensor({{0.0}, {1.0}}), palette).item<float>(), 0.0, 1e-7);
  EXPECT_NEAR(non_printability_score(torch::tensor({{0.5}}), palette).item<float>(), 0.25, 1e-6);
  auto printable = base;
  EXPECT_NO_THROW(train_sticker(world.model, train, printable.palette(palette).steps(3)));
}

TEST_F(PatchTest, StickerRejectsBadMasksAndTargets) {
  BrightnessWorld world;
  const auto data = world.data(16, 1);
  EXPECT_BULWARK_ERROR(train_sticker(world.model, data, StickerOptions(torch::ones({7, 8}))),
                       "mask must be [H, W] = [8, 8]");
  EXPECT_BULWARK_ERROR(train_sticker(world.model, data, StickerOptions(torch::zeros({8, 8}))),
                       "mask is empty");
  EXPECT_BULWARK_ERROR(train_sticker(world.model, data, StickerOptions(torch::ones({8, 8}) * 2)),
                       "[0, 1]");
  EXPECT_BULWARK_ERROR(train_sticker(world.model, data, StickerOptions(torch::ones({8, 8})).target(9)),
                       "target class must be in [0, 3)");
  EXPECT_BULWARK_ERROR(train_sticker(world.model, data,
                                     StickerOptions(torch::ones({8, 8})).palette(torch::ones({2, 3}))),
                       "palette must be [P >= 1, C = 1]");
}

}  // namespace
}  // namespace bulwark
