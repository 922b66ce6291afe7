#include "bulwark/ops/median_filter.h"

#include "test_util.h"

namespace bulwark::ops {
namespace {

using testing::SeededTest;
class MedianFilterTest : public SeededTest {};

void expect_equal_to_reference(const at::Tensor& x, int64_t k) {
  const auto kernel = median_filter(x, k);
  const auto reference = median_filter_reference(x, k);
  ASSERT_EQ(kernel.sizes(), x.sizes());
  ASSERT_EQ(kernel.scalar_type(), x.scalar_type());
  // A median selects one of the inputs: the kernel must agree exactly, NaN included.
  EXPECT_TRUE(torch::equal(kernel.isnan(), reference.isnan())) << "k = " << k;
  EXPECT_TRUE(torch::equal(kernel.nan_to_num(-7.0).cpu(), reference.nan_to_num(-7.0).cpu()))
      << "k = " << k << ", shape " << x.sizes();
}

TEST_F(MedianFilterTest, CpuKernelEqualsReferenceOddAndEvenWindowsFloatAndDouble) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    const auto x = torch::rand({3, 2, 9, 7}, torch::TensorOptions().dtype(dtype));
    for (int64_t k = 1; k <= 7; ++k) expect_equal_to_reference(x, k);
  }
}

TEST_F(MedianFilterTest, BordersMirrorWithTheEdgeRepeatedLikeScipy) {
  // Worked by hand with scipy's conventions: a 2×2 window reaches up/left, the upper median.
  const auto x = torch::tensor({{1.0, 2.0}, {3.0, 4.0}}, torch::kDouble);
  const auto expected = torch::tensor({{1.0, 2.0}, {3.0, 3.0}}, torch::kDouble);
  EXPECT_TRUE(torch::equal(median_filter(x, 2), expected)) << median_filter(x, 2);
  EXPECT_TRUE(torch::equal(median_filter_reference(x, 2), expected));
  // 3×3 on 0..8: the centre is the median 4; the corner (0, 0) sees 0 0 1 / 0 0 1 / 3 3 4 → 1.
  const auto ramp = torch::arange(9, torch::kFloat).reshape({3, 3});
  const auto out = median_filter(ramp, 3);
  EXPECT_EQ(out[1][1].item<float>(), 4.0f);
  EXPECT_EQ(out[0][0].item<float>(), 1.0f);
  // k = 1 is the identity.
  EXPECT_TRUE(torch::equal(median_filter(ramp, 1), ramp));
}

TEST_F(MedianFilterTest, EdgeShapesLayoutsAndHalf) {
  expect_equal_to_reference(torch::rand({0, 1, 5, 5}), 3);         // empty batch
  expect_equal_to_reference(torch::rand({1, 1, 1, 1}), 1);         // one element
  expect_equal_to_reference(torch::rand({4, 6}), 3);               // one plane, no batch
  expect_equal_to_reference(torch::rand({2, 1, 28, 28}), 11);      // the largest window
  const auto wide = torch::rand({2, 3, 8, 10});
  const auto transposed = wide.transpose(2, 3);
  ASSERT_FALSE(transposed.is_contiguous());
  expect_equal_to_reference(transposed, 4);
  expect_equal_to_reference(torch::rand({2, 3, 6, 6}).to(torch::kHalf), 3);
}

TEST_F(MedianFilterTest, NaNSortsAboveEveryNumber) {
  auto x = torch::rand({1, 1, 6, 6});
  x[0][0][2][3] = std::numeric_limits<float>::quiet_NaN();
  x[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t k = 2; k <= 3; ++k) expect_equal_to_reference(x, k);
  // Constant NaN windows give NaN; a single NaN among many numbers does not win the median.
  EXPECT_FALSE(median_filter(x, 3)[0][0][2][3].isnan().item<bool>());
}

TEST_F(MedianFilterTest, RemovesSaltNoise) {
  auto x = torch::full({1, 1, 8, 8}, 0.5);
  x[0][0][3][4] = 1.0;
  x[0][0][6][1] = 0.0;
  EXPECT_TRUE(torch::equal(median_filter(x, 3), torch::full({1, 1, 8, 8}, 0.5)));
}

TEST_F(MedianFilterTest, BadInputIsAClearError) {
  EXPECT_BULWARK_ERROR(median_filter(torch::rand({2, 1, 5, 5}), 0), "window", "[1, 11]");
  EXPECT_BULWARK_ERROR(median_filter(torch::rand({2, 1, 12, 12}), 12), "window", "[1, 11]");
  EXPECT_BULWARK_ERROR(median_filter(torch::rand({2, 1, 4, 9}), 5), "5x5", "4x9");
  EXPECT_BULWARK_ERROR(median_filter(torch::rand({9}), 3), "x");
  EXPECT_BULWARK_ERROR(median_filter(torch::ones({2, 5, 5}, torch::kLong), 3), "x");
  EXPECT_BULWARK_ERROR(median_filter_reference(torch::rand({2, 1, 5, 5}), -1), "window");
}

TEST_F(MedianFilterTest, CudaKernelEqualsReference_CUDA) {
  BULWARK_SKIP_WITHOUT_CUDA();
  for (const auto dtype : {torch::kFloat, torch::kDouble, torch::kHalf}) {
    const auto x = torch::rand({3, 2, 13, 9}, torch::TensorOptions().dtype(dtype).device(torch::kCUDA));
    for (int64_t k = 1; k <= 6; ++k) {
      const auto gpu = median_filter(x, k).cpu();
      const auto reference = median_filter_reference(x.cpu(), k);
      EXPECT_TRUE(torch::equal(gpu, reference)) << "k = " << k;
    }
  }
}

}  // namespace
}  // namespace bulwark::ops
