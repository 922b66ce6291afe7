#include "bulwark/ops/clip_accumulate.h"

#include "test_util.h"

namespace bulwark::ops {
namespace {

using testing::SeededTest;
class ClipAccumulateTest : public SeededTest {};

void expect_equal_to_reference(const at::Tensor& grads, const at::Tensor& norms, double c,
                               double tolerance) {
  const auto [sum, used] = clip_accumulate(grads, norms, c);
  const auto [ref_sum, ref_used] = clip_accumulate_reference(grads, norms, c);
  ASSERT_EQ(sum.sizes(), ref_sum.sizes());
  ASSERT_EQ(sum.scalar_type(), grads.scalar_type());
  EXPECT_TRUE(torch::allclose(sum.cpu(), ref_sum.cpu(), tolerance, tolerance))
      << (sum - ref_sum).abs().max();
  EXPECT_TRUE(torch::allclose(used.cpu(), ref_used.cpu(), tolerance, tolerance));
}

TEST_F(ClipAccumulateTest, CpuKernelEqualsReferenceWithAndWithoutGivenNorms) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    const double tolerance = dtype == torch::kFloat ? 1e-5 : 1e-12;
    // Rows of very different norms, some below and some above C; D spans several column blocks.
    const auto grads = torch::randn({37, 2500}, torch::TensorOptions().dtype(dtype)) *
                       torch::logspace(-3, 1, 37, 10.0, torch::TensorOptions().dtype(dtype))
                           .unsqueeze(1);
    expect_equal_to_reference(grads, at::Tensor(), 1.0, tolerance);
    const auto whole = torch::rand({37}, torch::TensorOptions().dtype(dtype)) * 4;
    expect_equal_to_reference(grads, whole, 1.5, tolerance);
    expect_equal_to_reference(grads.t().contiguous().t(), at::Tensor(), 0.3, tolerance);
  }
}

TEST_F(ClipAccumulateTest, EveryClippedRowHasNormAtMostCAndSmallRowsPassUnchanged) {
  const auto grads = torch::randn({6, 50}, torch::kDouble) *
                     torch::tensor({0.01, 0.5, 2.0, 10.0, 100.0, 0.0}, torch::kDouble)
                         .unsqueeze(1);
  for (int64_t i = 0; i < 6; ++i) {
    const auto row = grads.slice(0, i, i + 1);
    const auto [sum, used] = clip_accumulate(row, at::Tensor(), 1.0);
    EXPECT_LE(sum.norm().item<double>(), 1.0 + 1e-12) << "row " << i;
    if (used[0].item<double>() < 1.0 - 1e-6) {
      EXPECT_TRUE(torch::allclose(sum, row[0], 1e-12, 1e-12)) << "row " << i;
    }
  }
  // With the whole gradient's norm given, the factor comes from it, not from the row.
  const auto [sum, used] = clip_accumulate(grads.slice(0, 0, 1), torch::tensor({4.0}, torch::kDouble), 1.0);
  EXPECT_TRUE(torch::allclose(sum, grads[0] / (4.0 + kClipStabilizer), 1e-12, 1e-15));
}

TEST_F(ClipAccumulateTest, EmptyBatchGivesZeroSum) {
  const auto [sum, used] = clip_accumulate(torch::zeros({0, 7}), at::Tensor(), 1.0);
  EXPECT_TRUE(torch::equal(sum, torch::zeros({7})));
  EXPECT_EQ(used.size(0), 0);
}

TEST_F(ClipAccumulateTest, BadInputIsRejected) {
  EXPECT_BULWARK_ERROR(clip_accumulate(torch::zeros({3}), at::Tensor(), 1.0), "[N, D]");
  EXPECT_BULWARK_ERROR(clip_accumulate(torch::zeros({3, 2}, torch::kLong), at::Tensor(), 1.0),
                       "float or double");
  EXPECT_BULWARK_ERROR(clip_accumulate(torch::zeros({3, 2}), at::Tensor(), 0.0), "positive");
  EXPECT_BULWARK_ERROR(clip_accumulate(torch::zeros({3, 2}), at::Tensor(), NAN), "positive");
  EXPECT_BULWARK_ERROR(clip_accumulate(torch::zeros({3, 2}), torch::zeros({2}), 1.0), "[3]");
  EXPECT_BULWARK_ERROR(
      clip_accumulate(torch::zeros({3, 2}), torch::zeros({3}, torch::kDouble), 1.0), "dtype");
}

TEST_F(ClipAccumulateTest, CudaKernelEqualsReference_CUDA) {
  BULWARK_SKIP_WITHOUT_CUDA();
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    const auto options = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    const double tolerance = dtype == torch::kFloat ? 1e-5 : 1e-12;
    const auto grads = torch::randn({33, 1500}, options) * 2;
    expect_equal_to_reference(grads, at::Tensor(), 1.0, tolerance);
    expect_equal_to_reference(grads, torch::rand({33}, options) * 3, 0.7, tolerance);
    expect_equal_to_reference(torch::zeros({0, 5}, options), at::Tensor(), 1.0, tolerance);
  }
}

}  // namespace
}  // namespace bulwark::ops
