#include "bulwark/ops/patch_composite.h"

#include <numbers>

#include "bulwark/data/transforms.h"
#include "test_util.h"

namespace bulwark::ops {
namespace {

using testing::SeededTest;
class PatchCompositeTest : public SeededTest {};

struct Inputs {
  at::Tensor images, patch, mask, theta;
};

// Random images and patch, a soft mask with some zeros, and placements that rotate, scale and
// move the patch, some partly or wholly outside the image.
Inputs random_inputs(int64_t n, int64_t c, int64_t H, int64_t W, int64_t h, int64_t w,
                     torch::Dtype dtype, bool per_sample = false,
                     torch::Device device = torch::kCPU) {
  const auto options = torch::TensorOptions().dtype(dtype);
  auto images = torch::rand({n, c, H, W}, options);
  auto patch = per_sample ? torch::rand({n, c, h, w}, options) : torch::rand({c, h, w}, options);
  auto mask = torch::rand({h, w}, options);
  mask.masked_fill_(mask < 0.2, 0.0);
  auto theta = torch::empty({n, 2, 3}, options);
  for (int64_t i = 0; i < n; ++i) {
    const double angle = (static_cast<double>(i) / std::max<int64_t>(n, 1) - 0.5) * std::numbers::pi;
    const auto m = placement_theta(H, W, h, w, W * (0.1 + 0.13 * static_cast<double>(i % 7)),
                                   H * (0.2 + 0.1 * static_cast<double>(i % 5)), angle,
                                   0.7 + 0.1 * static_cast<double>(i % 4));
    theta[i] = torch::tensor(std::vector<double>(m.begin(), m.end()), options).reshape({2, 3});
  }
  return {images.to(device), patch.to(device), mask.to(device), theta.to(device)};
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, double rtol, double atol) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  ASSERT_EQ(actual.scalar_type(), expected.scalar_type());
  const auto a = actual.cpu().to(torch::kDouble), e = expected.cpu().to(torch::kDouble);
  EXPECT_TRUE(torch::allclose(a, e, rtol, atol)) << "max difference " << (a - e).abs().max();
}

void expect_forward_matches(const Inputs& in, Blend blend, double rtol, double atol) {
  expect_close(patch_composite(in.images, in.patch, in.mask, in.theta, blend),
               patch_composite_reference(in.images, in.patch, in.mask, in.theta, blend), rtol,
               atol);
}

void expect_backward_matches(const Inputs& in, Blend blend, double rtol, double atol) {
  const bool per_sample = in.patch.dim() == 4;
  const auto grad = torch::randn_like(in.images);
  const auto [gi, gp] = patch_composite_backward(grad, in.mask, in.theta, blend, per_sample);
  const auto [ri, rp] =
      patch_composite_backward_reference(grad, in.mask, in.theta, blend, per_sample);
  expect_close(gi, ri, rtol, atol);
  expect_close(gp, rp, rtol, atol);
}

TEST_F(PatchCompositeTest, CpuKernelEqualsReferenceFloatAndDouble) {
  for (const auto blend : {Blend::Replace, Blend::Add}) {
    for (const bool per_sample : {false, true}) {
      expect_forward_matches(random_inputs(12, 3, 20, 24, 7, 9, torch::kDouble, per_sample), blend,
                             1e-10, 1e-12);
      expect_forward_matches(random_inputs(12, 1, 28, 28, 9, 9, torch::kFloat, per_sample), blend,
                             1e-4, 1e-5);
    }
  }
}

TEST_F(PatchCompositeTest, CpuBackwardKernelEqualsReference) {
  for (const auto blend : {Blend::Replace, Blend::Add}) {
    for (const bool per_sample : {false, true}) {
      expect_backward_matches(random_inputs(40, 3, 16, 12, 6, 5, torch::kDouble, per_sample),
                              blend, 1e-10, 1e-12);
      expect_backward_matches(random_inputs(40, 1, 28, 28, 10, 10, torch::kFloat, per_sample),
                              blend, 1e-4, 1e-4);
    }
  }
}

TEST_F(PatchCompositeTest, AutogradThroughTheOpEqualsAutogradThroughTheReference) {
  auto in = random_inputs(6, 2, 14, 14, 5, 6, torch::kDouble);
  for (const auto blend : {Blend::Replace, Blend::Add}) {
    auto images = in.images.clone().requires_grad_(true);
    auto patch = in.patch.clone().requires_grad_(true);
    const auto weights = torch::randn_like(in.images);
    const auto fused = (patch_composite(images, patch, in.mask, in.theta, blend) * weights).sum();
    const auto g = torch::autograd::grad({fused}, {images, patch});
    const auto reference =
        (patch_composite_reference(images, patch, in.mask, in.theta, blend) * weights).sum();
    const auto r = torch::autograd::grad({reference}, {images, patch});
    expect_close(g[0], r[0], 1e-10, 1e-12);
    expect_close(g[1], r[1], 1e-10, 1e-12);
  }
}

TEST_F(PatchCompositeTest, GradientMatchesFiniteDifferences) {
  auto in = random_inputs(3, 1, 10, 10, 4, 4, torch::kDouble);
  auto patch = in.patch.clone().requires_grad_(true);
  const auto weights = torch::randn_like(in.images);
  auto objective = [&](const at::Tensor& p) {
    return (patch_composite(in.images, p, in.mask, in.theta, Blend::Replace) * weights).sum();
  };
  const auto grad = torch::autograd::grad({objective(patch)}, {patch})[0];
  torch::NoGradGuard no_grad;
  for (const int64_t k : {0, 5, 10, 15}) {
    auto plus = in.patch.clone(), minus = in.patch.clone();
    plus.view(-1)[k] += 1e-6;
    minus.view(-1)[k] -= 1e-6;
    const double numeric = (objective(plus) - objective(minus)).item<double>() / 2e-6;
    EXPECT_NEAR(grad.view(-1)[k].item<double>(), numeric, 1e-6);
  }
}

TEST_F(PatchCompositeTest, SharedPatchGradientDoesNotDependOnThreadCount) {
  const auto in = random_inputs(64, 3, 16, 16, 6, 6, torch::kFloat);
  const auto grad = torch::randn_like(in.images);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = std::get<1>(patch_composite_backward(grad, in.mask, in.theta, Blend::Replace, false));
  at::set_num_threads(std::max(2, threads));
  const auto many = std::get<1>(patch_composite_backward(grad, in.mask, in.theta, Blend::Replace, false));
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, many));
}

TEST_F(PatchCompositeTest, AxisAlignedConstantAndEdgeMapsMatchTheReference) {
  // Quarter turns (x does not move the patch's column), a map that reads one point for every
  // pixel, patches cut by the image border and one wholly outside: the CPU kernel's per-row
  // spans must not drop or add a pixel.
  const auto theta = torch::tensor({0.0, 2.0, 0.1, -2.0, 0.0, 0.0,     //
                                    0.0, 0.0, 0.2, 0.0, 0.0, -0.3,     //
                                    3.0, 0.0, -2.5, 0.0, 3.0, 2.5,     //
                                    3.0, 0.0, 2.9, 0.0, 3.0, 0.0,      //
                                    1.5, 0.5, 0.0, -0.5, 1.5, 0.0,     //
                                    2.0, 0.0, 9.0, 0.0, 2.0, 9.0},
                                   torch::kDouble)
                         .reshape({6, 2, 3});
  Inputs in{torch::rand({6, 2, 13, 11}, torch::kDouble), torch::rand({2, 5, 4}, torch::kDouble),
            torch::rand({5, 4}, torch::kDouble), theta};
  for (const auto blend : {Blend::Replace, Blend::Add}) {
    expect_forward_matches(in, blend, 1e-10, 1e-12);
    expect_backward_matches(in, blend, 1e-10, 1e-12);
  }
}

TEST_F(PatchCompositeTest, IdentityPlacementOfAFullSizeOpaquePatchGivesThePatch) {
  const auto images = torch::rand({2, 3, 8, 8}, torch::kDouble);
  const auto patch = torch::rand({3, 8, 8}, torch::kDouble);
  const auto mask = torch::ones({8, 8}, torch::kDouble);
  const auto m = placement_theta(8, 8, 8, 8, 4, 4, 0, 1);
  const auto theta = torch::tensor(std::vector<double>(m.begin(), m.end()), torch::kDouble)
                         .reshape({1, 2, 3})
                         .expand({2, 2, 3});
  const auto out = patch_composite(images, patch, mask, theta, Blend::Replace);
  // Inside, away from the border where bilinear sampling fades to the zero padding.
  EXPECT_TRUE(torch::allclose(out.slice(2, 1, 7).slice(3, 1, 7),
                              patch.expand({2, 3, 8, 8}).slice(2, 1, 7).slice(3, 1, 7), 1e-12,
                              1e-12));
}

TEST_F(PatchCompositeTest, OutsideThePatchImagesAreUnchangedAndReplaceStaysInRange) {
  const auto in = random_inputs(16, 3, 28, 28, 6, 6, torch::kFloat);
  const auto out = patch_composite(in.images, in.patch, in.mask, in.theta, Blend::Replace);
  EXPECT_GE(out.min().item<float>(), 0.0f);
  EXPECT_LE(out.max().item<float>(), 1.0f + 1e-6f);
  // A zero mask changes nothing, bit for bit.
  const auto none = patch_composite(in.images, in.patch, torch::zeros_like(in.mask), in.theta,
                                    Blend::Replace);
  EXPECT_TRUE(torch::equal(none, in.images));
}

TEST_F(PatchCompositeTest, EdgeShapesAndNonContiguousInputs) {
  expect_forward_matches(random_inputs(0, 3, 8, 8, 3, 3, torch::kFloat), Blend::Replace, 0, 0);
  expect_forward_matches(random_inputs(1, 1, 1, 1, 1, 1, torch::kDouble), Blend::Add, 1e-12, 1e-12);
  expect_backward_matches(random_inputs(0, 3, 8, 8, 3, 3, torch::kFloat), Blend::Replace, 0, 0);
  auto in = random_inputs(5, 3, 9, 11, 4, 4, torch::kDouble);
  Inputs strided{in.images.transpose(2, 3).contiguous().transpose(2, 3), in.patch.transpose(1, 2).contiguous().transpose(1, 2),
                 in.mask.t().contiguous().t(), in.theta};
  ASSERT_FALSE(strided.images.is_contiguous());
  expect_forward_matches(strided, Blend::Replace, 1e-10, 1e-12);
}

TEST_F(PatchCompositeTest, RejectsBadInputs) {
  const auto in = random_inputs(4, 3, 8, 8, 3, 3, torch::kFloat);
  EXPECT_BULWARK_ERROR(patch_composite(in.images[0], in.patch, in.mask, in.theta, Blend::Replace),
                       "images must be [N, C, H, W]");
  EXPECT_BULWARK_ERROR(patch_composite(in.images, in.patch.slice(0, 0, 1), in.mask, in.theta,
                                       Blend::Replace),
                       "patch must be [C, h, w] or [N, C, h, w]");
  EXPECT_BULWARK_ERROR(patch_composite(in.images, in.patch, in.mask * 2, in.theta, Blend::Replace),
                       "mask values must lie in [0, 1]");
  EXPECT_BULWARK_ERROR(patch_composite(in.images, in.patch, in.mask, in.theta.slice(0, 0, 2),
                                       Blend::Replace),
                       "theta must be [4, 2, 3]");
  EXPECT_BULWARK_ERROR(patch_composite(in.images, in.patch, in.mask, in.theta.to(torch::kDouble),
                                       Blend::Replace),
                       "theta is Double");
  EXPECT_BULWARK_ERROR(patch_composite(in.images, in.patch, in.mask,
                                       in.theta.clone().requires_grad_(true), Blend::Replace),
                       "must not require grad");
  EXPECT_BULWARK_ERROR(patch_composite(in.images, in.patch, in.mask, in.theta, static_cast<Blend>(7)),
                       "blend must be 0");
  EXPECT_BULWARK_ERROR(patch_composite(in.images.to(torch::kHalf), in.patch.to(torch::kHalf),
                                       in.mask.to(torch::kHalf), in.theta.to(torch::kHalf),
                                       Blend::Replace),
                       "float or double");
}

TEST_F(PatchCompositeTest, CudaKernelEqualsReference_CUDA) {
  BULWARK_SKIP_WITHOUT_CUDA();
  for (const auto blend : {Blend::Replace, Blend::Add}) {
    for (const bool per_sample : {false, true}) {
      const auto in = random_inputs(12, 3, 20, 24, 7, 9, torch::kDouble, per_sample, torch::kCUDA);
      expect_forward_matches(in, blend, 1e-10, 1e-12);
      expect_backward_matches(in, blend, 1e-10, 1e-12);
      const auto f = random_inputs(12, 1, 28, 28, 9, 9, torch::kFloat, per_sample, torch::kCUDA);
      expect_forward_matches(f, blend, 1e-4, 1e-5);
      expect_backward_matches(f, blend, 1e-4, 1e-4);
    }
  }
}

}  // namespace
}  // namespace bulwark::ops
