#include "bulwark/data/transforms.h"

#include <numbers>

#include "bulwark/ops/patch_composite.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class TransformsTest : public SeededTest {};

TEST_F(TransformsTest, ZeroRangesAreTheIdentityBitForBit) {
  const auto images = torch::rand({5, 3, 12, 10});
  auto generator = make_generator(3);
  const auto draw = sample_transforms(images, TransformOptions(), generator);
  EXPECT_FALSE(draw.theta.defined());
  EXPECT_TRUE(draw.photometric_identity);
  EXPECT_TRUE(torch::equal(apply_transforms(images, draw, InputBox()), images));
  // Only light changes: the geometry stays the identity, and the other way round.
  const auto light = sample_transforms(images, TransformOptions().brightness(0.1), generator);
  EXPECT_TRUE(torch::equal(apply_geometric(images, light), images));
  const auto pose = sample_transforms(images, TransformOptions().rotation(10), generator);
  EXPECT_TRUE(torch::equal(apply_photometric(images, pose, InputBox()), images));
}

TEST_F(TransformsTest, ScaledRangesWidenAboutTheIdentity) {
  const auto options = TransformOptions().rotation(10).scale(0.9, 1.1).brightness(0.1).contrast(0.8, 1.2).noise(0.02);
  EXPECT_TRUE(options.scaled(0).identity());
  const auto twice = options.scaled(2);
  EXPECT_DOUBLE_EQ(twice.rotation(), 20);
  EXPECT_DOUBLE_EQ(twice.scale_min(), 0.8);
  EXPECT_DOUBLE_EQ(twice.scale_max(), 1.2);
  EXPECT_DOUBLE_EQ(twice.contrast_min(), 0.6);
  EXPECT_DOUBLE_EQ(twice.noise(), 0.04);
  EXPECT_GE(options.scaled(100).scale_min(), 0.05);
}

TEST_F(TransformsTest, SameSeedSameViews) {
  const auto images = torch::rand({4, 1, 16, 16});
  const auto options = TransformOptions().rotation(20).scale(0.8, 1.2).translate(0.1).brightness(0.2).contrast(0.7, 1.3).blur(1.0).noise(0.05);
  auto a = make_generator(9), b = make_generator(9), c = make_generator(10);
  const auto va = apply_transforms(images, sample_transforms(images, options, a), InputBox());
  const auto vb = apply_transforms(images, sample_transforms(images, options, b), InputBox());
  const auto vc = apply_transforms(images, sample_transforms(images, options, c), InputBox());
  EXPECT_TRUE(torch::equal(va, vb));
  EXPECT_FALSE(torch::equal(va, vc));
  EXPECT_GE(va.min().item<float>(), 0.0f);
  EXPECT_LE(va.max().item<float>(), 1.0f);
}

TEST_F(TransformsTest, QuarterTurnPlacementIsRot90) {
  const auto images = torch::rand({1, 2, 8, 8}, torch::kDouble);
  const auto m = placement_theta(8, 8, 8, 8, 4, 4, std::numbers::pi / 2, 1);
  TransformDraw draw;
  draw.theta = torch::tensor(std::vector<double>(m.begin(), m.end()), torch::kDouble).reshape({1, 2, 3});
  const auto rotated = apply_geometric(images, draw);
  const bool clockwise = torch::allclose(rotated, torch::rot90(images, 1, {2, 3}), 1e-9, 1e-9);
  const bool counter = torch::allclose(rotated, torch::rot90(images, -1, {2, 3}), 1e-9, 1e-9);
  EXPECT_TRUE(clockwise || counter) << rotated;
}

TEST_F(TransformsTest, BrightnessShiftsEachImageByOneConstantAndNoiseHasItsScale) {
  const auto images = torch::rand({8, 1, 20, 20}) * 0.5 + 0.25;
  auto generator = make_generator(1);
  const auto draw = sample_transforms(images, TransformOptions().brightness(0.2), generator);
  const auto shift = apply_photometric(images, draw, InputBox()) - images;
  EXPECT_TRUE(torch::allclose(shift, draw.brightness.reshape({-1, 1, 1, 1}).expand_as(shift), 1e-5, 1e-6));
  EXPECT_LE(draw.brightness.abs().max().item<float>(), 0.2f);
  const auto noisy_draw = sample_transforms(images, TransformOptions().noise(0.05), generator);
  const auto noise = apply_photometric(images, noisy_draw, InputBox()) - images;
  const auto std = noise.flatten(1).std(1);
  EXPECT_TRUE(torch::allclose(std, noisy_draw.noise.flatten(1).std(1), 1e-4, 1e-4));
  EXPECT_LE(std.max().item<float>(), 0.06f);
}

TEST_F(TransformsTest, BlurKeepsConstantImagesAndSmoothsEdges) {
  const auto flat = torch::full({2, 1, 10, 10}, 0.4);
  auto generator = make_generator(2);
  const auto draw = sample_transforms(flat, TransformOptions().blur(2.0), generator);
  EXPECT_TRUE(torch::allclose(apply_photometric(flat, draw, InputBox()), flat, 1e-6, 1e-6));
  auto edge = torch::zeros({2, 1, 10, 10});
  edge.slice(3, 5).fill_(1.0);
  const auto blurred = apply_photometric(edge, draw, InputBox());
  EXPECT_LT(blurred[0][0][5][5].item<float>(), 1.0f);
  EXPECT_GT(blurred[0][0][5][4].item<float>(), 0.0f);
}

TEST_F(TransformsTest, PlacementsKeepThePatchInsideTheImage) {
  auto generator = make_generator(4);
  const auto theta = sample_placements(200, 28, 28, 8, 8, 1.0,
                                       PlacementOptions().rotation(45).scale(0.8, 1.0), generator,
                                       torch::TensorOptions().dtype(torch::kDouble));
  const auto images = torch::zeros({200, 1, 28, 28}, torch::kDouble);
  const auto ones = torch::ones({1, 8, 8}, torch::kDouble);
  const auto placed = ops::patch_composite(images, ones, torch::ones({8, 8}, torch::kDouble), theta,
                                           ops::Blend::Replace);
  // All of the patch's area lands inside the image: its mass is 64 · scale², scale in [0.8, 1].
  const auto mass = placed.sum({1, 2, 3});
  EXPECT_GE(mass.min().item<double>(), 64 * 0.64 * 0.97);
  EXPECT_LE(mass.max().item<double>(), 64 * 1.03);
  // And the placements differ.
  EXPECT_GT(placed.std(0).mean().item<double>(), 0.05);
}

TEST_F(TransformsTest, RejectsBadRangesAndPatchesLargerThanTheImage) {
  const auto images = torch::rand({2, 1, 8, 8});
  auto generator = make_generator(0);
  EXPECT_BULWARK_ERROR(sample_transforms(images, TransformOptions().rotation(-1), generator),
                       "rotation must be finite and >= 0");
  EXPECT_BULWARK_ERROR(sample_transforms(images, TransformOptions().scale(1.2, 0.8), generator),
                       "scale range");
  EXPECT_BULWARK_ERROR(sample_transforms(images[0], TransformOptions(), generator),
                       "images must be [N, C, H, W]");
  EXPECT_BULWARK_ERROR(sample_placements(1, 8, 8, 10, 10, 1.0, PlacementOptions().scale(0.9, 1.0),
                                         generator, torch::TensorOptions()),
                       "larger than the 8x8 image");
}

}  // namespace
}  // namespace bulwark
