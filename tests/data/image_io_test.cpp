#include "bulwark/data/image_io.h"

#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
using testing::TempDir;
class ImageIoTest : public SeededTest {};

TEST_F(ImageIoTest, GreyAndColourRoundTripToEightBits) {
  TempDir dir;
  for (const int64_t channels : {1, 3}) {
    const auto image = torch::rand({channels, 7, 5});
    write_png(dir / "a.png", image);
    const auto back = read_png(dir / "a.png");
    ASSERT_EQ(back.sizes(), image.sizes());
    EXPECT_LE((back - image).abs().max().item<float>(), 0.5f / 255 + 1e-6f);
  }
}

TEST_F(ImageIoTest, ScaleAndAlpha) {
  TempDir dir;
  const auto image = torch::rand({1, 3, 4});
  write_png(dir / "big.png", image, torch::ones({3, 4}), 3);
  const auto back = read_png(dir / "big.png");
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{1, 9, 12}));
  EXPECT_NEAR(back[0][8][11].item<float>(), image[0][2][3].item<float>(), 0.5 / 255 + 1e-6);
}

TEST_F(ImageIoTest, ClearErrors) {
  TempDir dir;
  EXPECT_BULWARK_ERROR(read_png(dir / "missing.png"), "cannot read", "missing.png");
  testing::write_bytes(dir / "junk.png", {1, 2, 3, 4});
  EXPECT_BULWARK_ERROR(read_png(dir / "junk.png"), "junk.png");
  EXPECT_BULWARK_ERROR(write_png(dir / "x.png", torch::rand({2, 4, 4})), "[1 or 3, H, W]");
  EXPECT_BULWARK_ERROR(write_png(dir / "x.png", torch::rand({1, 4, 4}) + 1), "[0, 1]");
  EXPECT_BULWARK_ERROR(write_png(dir / "x.png", torch::rand({1, 4, 4}), torch::ones({3, 4})),
                       "alpha must be [4, 4]");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.png"));
}

}  // namespace
}  // namespace bulwark
