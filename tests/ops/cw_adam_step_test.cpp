#include "bulwark/ops/cw_adam_step.h"

#include "test_util.h"

namespace bulwark::ops {
namespace {

class CwAdamStepTest : public testing::SeededTest {};

void expect_kernel_equals_reference(std::vector<int64_t> shape, torch::Dtype dtype,
                                    torch::Device device, bool strided_grad, double tol) {
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  auto w = torch::randn(shape, options);
  auto m = 0.1 * torch::randn(shape, options);
  auto v = torch::rand(shape, options);
  auto grad = strided_grad ? torch::randn(shape, options).transpose(0, -1).contiguous().transpose(0, -1)
                           : torch::randn(shape, options);
  auto w_ref = w.clone(), m_ref = m.clone(), v_ref = v.clone();
  for (int64_t step = 1; step <= 3; ++step) {
    cw_adam_step_(w, grad, m, v, 0.01, 0.9, 0.999, 1e-8, step);
    cw_adam_step_reference_(w_ref, grad, m_ref, v_ref, 0.01, 0.9, 0.999, 1e-8, step);
  }
  EXPECT_TRUE(torch::allclose(w, w_ref, tol, tol));
  EXPECT_TRUE(torch::allclose(m, m_ref, tol, tol));
  EXPECT_TRUE(torch::allclose(v, v_ref, tol, tol));
}

TEST_F(CwAdamStepTest, CpuKernelEqualsReference) {
  for (const bool strided : {false, true}) {
    expect_kernel_equals_reference({8, 3, 5, 5}, torch::kFloat, torch::kCPU, strided, 1e-6);
    expect_kernel_equals_reference({8, 3, 5, 5}, torch::kDouble, torch::kCPU, strided, 1e-12);
  }
  expect_kernel_equals_reference({0, 4}, torch::kFloat, torch::kCPU, false, 0);
  expect_kernel_equals_reference({1, 1}, torch::kDouble, torch::kCPU, false, 1e-12);
}

TEST_F(CwAdamStepTest, MatchesTorchAdam) {
  auto w = torch::randn({5, 7}, torch::kDouble);
  auto param = w.clone().requires_grad_(true);
  torch::optim::Adam adam({param}, torch::optim::AdamOptions(0.05));
  auto m = torch::zeros_like(w), v = torch::zeros_like(w);
  for (int64_t step = 1; step <= 4; ++step) {
    const auto grad = torch::randn({5, 7}, torch::kDouble);
    param.mutable_grad() = grad.clone();
    adam.step();
    cw_adam_step_(w, grad, m, v, 0.05, 0.9, 0.999, 1e-8, step);
  }
  EXPECT_TRUE(torch::allclose(w, param.detach(), 1e-12, 1e-12));
}

TEST_F(CwAdamStepTest, RejectsBadArguments) {
  auto w = torch::randn({2, 3});
  auto m = torch::zeros_like(w), v = torch::zeros_like(w);
  EXPECT_BULWARK_ERROR(cw_adam_step_(w, torch::randn({3, 2}), m, v, 0.01, 0.9, 0.999, 1e-8, 1),
                       "grad has shape [3, 2]");
  EXPECT_BULWARK_ERROR(cw_adam_step_(w, w, m, v, 0.0, 0.9, 0.999, 1e-8, 1), "lr");
  EXPECT_BULWARK_ERROR(cw_adam_step_(w, w, m, v, 0.01, 1.0, 0.999, 1e-8, 1), "beta1");
  EXPECT_BULWARK_ERROR(cw_adam_step_(w, w, m, v, 0.01, 0.9, 0.999, 1e-8, 0), "step");
  auto t = torch::randn({3, 2}).t();
  EXPECT_BULWARK_ERROR(cw_adam_step_(t, t, m, v, 0.01, 0.9, 0.999, 1e-8, 1), "contiguous");
}

TEST_F(CwAdamStepTest, CudaKernelEqualsReference_CUDA) {
  BULWARK_SKIP_WITHOUT_CUDA();
  for (const bool strided : {false, true}) {
    expect_kernel_equals_reference({8, 3, 5, 5}, torch::kFloat, torch::kCUDA, strided, 1e-6);
    expect_kernel_equals_reference({8, 3, 5, 5}, torch::kDouble, torch::kCUDA, strided, 1e-12);
  }
  expect_kernel_equals_reference({0, 4}, torch::kFloat, torch::kCUDA, false, 0);
}

}  // namespace
}  // namespace bulwark::ops
