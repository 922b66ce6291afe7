#include "bulwark/eval/image_grid.h"

#include <fstream>

#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

class ImageGridTest : public testing::SeededTest {};

TEST_F(ImageGridTest, WritesAPngOfTheExpectedSize) {
  testing::TempDir dir;
  const auto clean = torch::rand({3, 1, 28, 28});
  const auto adv = (clean + 0.1).clamp(0, 1);
  const auto labels = torch::tensor({1, 2, 13}, torch::kLong);
  write_image_grid(dir / "grid.png", clean, adv, labels, torch::tensor({1, 5, 99}), labels, 2);
  std::ifstream in(dir / "grid.png", std::ios::binary);
  std::vector<unsigned char> header(24);
  in.read(reinterpret_cast<char*>(header.data()), 24);
  ASSERT_EQ(in.gcount(), 24);
  EXPECT_EQ(header[1], 'P');
  EXPECT_EQ(header[2], 'N');
  EXPECT_EQ(header[3], 'G');
  // IHDR width and height, big-endian: 3 images of 56 px + 4 pads of 4; 3 rows of 56 + 14 + 4, + 4.
  const auto be32 = [&](int at) {
    return (header[at] << 24) | (header[at + 1] << 16) | (header[at + 2] << 8) | header[at + 3];
  };
  EXPECT_EQ(be32(16), 3 * 56 + 16);
  EXPECT_EQ(be32(20), 3 * (56 + 14 + 4) + 4);
}

TEST_F(ImageGridTest, RejectsBadInput) {
  testing::TempDir dir;
  const auto x = torch::rand({2, 1, 8, 8});
  const auto y = torch::tensor({0, 1}, torch::kLong);
  EXPECT_BULWARK_ERROR(write_image_grid(dir / "g.png", x, x.slice(0, 0, 1), y, y, y), "adversarial");
  EXPECT_BULWARK_ERROR(write_image_grid(dir / "g.png", x * 3, x * 3, y, y, y), "[0, 1]");
  EXPECT_BULWARK_ERROR(write_image_grid(dir / "g.png", torch::rand({2, 2, 8, 8}),
                                        torch::rand({2, 2, 8, 8}), y, y, y),
                       "1 or 3");
  EXPECT_BULWARK_ERROR(write_image_grid(dir / "g.png", x, x, y, y, torch::tensor({0, 100})), "[0, 100)");
  EXPECT_BULWARK_ERROR(write_image_grid(dir / "no" / "g.png", x, x, y, y, y), "does not exist");
  EXPECT_FALSE(std::filesystem::exists(dir / "g.png"));
}

}  // namespace
}  // namespace bulwark
