#include "bulwark/ops/project_step.h"

#include "test_util.h"

namespace bulwark::ops {
namespace {

using testing::SeededTest;
class ProjectStepTest : public SeededTest {};

struct Inputs {
  at::Tensor x_adv, grad, x_orig;
};

// x_orig in [0, 1], x_adv within 0.2 of it, arbitrary gradient.
Inputs random_inputs(std::vector<int64_t> shape, torch::Dtype dtype,
                     torch::Device device = torch::kCPU) {
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  auto x_orig = torch::rand(shape, options);
  auto x_adv = (x_orig + 0.2 * (2 * torch::rand(shape, options) - 1)).clamp(0, 1);
  auto grad = torch::randn(shape, options);
  return {x_adv, grad, x_orig};
}

void expect_matches_reference(const Inputs& in, double step, double eps, Norm norm, double rtol,
                              double atol) {
  const auto fused = project_step(in.x_adv, in.grad, in.x_orig, step, eps, norm, 0.0, 1.0);
  const auto reference =
      project_step_reference(in.x_adv, in.grad, in.x_orig, step, eps, norm, 0.0, 1.0);
  ASSERT_EQ(fused.sizes(), reference.sizes());
  ASSERT_EQ(fused.scalar_type(), reference.scalar_type());
  EXPECT_TRUE(torch::allclose(fused.cpu().to(torch::kDouble), reference.cpu().to(torch::kDouble),
                              rtol, atol))
      << "max difference "
      << (fused.cpu().to(torch::kDouble) - reference.cpu().to(torch::kDouble)).abs().max();
}

TEST_F(ProjectStepTest, CpuKernelEqualsReferenceFloatAndDouble) {
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    for (const double eps : {0.0, 0.05, 0.3, std::numeric_limits<double>::infinity()}) {
      expect_matches_reference(random_inputs({16, 3, 8, 8}, torch::kDouble), 0.07, eps, norm,
                               1e-12, 1e-14);
      expect_matches_reference(random_inputs({16, 3, 8, 8}, torch::kFloat), 0.07, eps, norm, 1e-5,
                               1e-6);
    }
  }
}

TEST_F(ProjectStepTest, CpuKernelHalfIsWithinHalfPrecision) {
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    expect_matches_reference(random_inputs({4, 50}, torch::kHalf), 0.05, 0.1, norm, 1e-2, 2e-3);
  }
}

TEST_F(ProjectStepTest, EdgeShapes) {
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    expect_matches_reference(random_inputs({0, 3, 4}, torch::kFloat), 0.1, 0.1, norm, 0, 0);
    expect_matches_reference(random_inputs({1, 1, 28, 28}, torch::kFloat), 0.1, 0.2, norm, 1e-5,
                             1e-6);
    expect_matches_reference(random_inputs({7}, torch::kDouble), 0.1, 0.2, norm, 1e-12, 1e-14);
    // A large sample, so the L2 kernel's accumulation is exercised.
    expect_matches_reference(random_inputs({2, 3, 64, 64}, torch::kFloat), 0.5, 1.0, norm, 1e-5,
                             1e-6);
  }
}

TEST_F(ProjectStepTest, NonContiguousInputs) {
  auto in = random_inputs({8, 3, 6, 5}, torch::kFloat);
  Inputs transposed{in.x_adv.transpose(2, 3), in.grad.transpose(2, 3), in.x_orig.transpose(2, 3)};
  ASSERT_FALSE(transposed.x_orig.is_contiguous());
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    expect_matches_reference(transposed, 0.05, 0.1, norm, 1e-5, 1e-6);
  }
}

TEST_F(ProjectStepTest, ResultIsInsideBallAndBoxExactly) {
  const auto in = random_inputs({64, 1, 28, 28}, torch::kFloat);
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    const double eps = norm == Norm::Linf ? 0.1 : 1.5;
    const auto out = project_step(in.x_adv, in.grad, in.x_orig, 0.5, eps, norm, 0.0, 1.0);
    EXPECT_GE(out.min().item<float>(), 0.0f);
    EXPECT_LE(out.max().item<float>(), 1.0f);
    const auto delta = (out - in.x_orig).to(torch::kDouble);
    EXPECT_LE(per_sample_norm(delta, norm).max().item<double>(), eps * (1 + 1e-6));
  }
}

TEST_F(ProjectStepTest, FgsmIsTheSignStep) {
  const auto x = torch::full({2, 3}, 0.5, torch::kDouble);
  const auto grad = torch::tensor({{1.0, -2.0, 0.0}, {-0.1, 0.3, 5.0}}, torch::kDouble);
  const auto out = project_step(x, grad, x, 0.1, 0.1, Norm::Linf, 0.0, 1.0);
  EXPECT_TRUE(torch::allclose(out, torch::tensor({{0.6, 0.4, 0.5}, {0.4, 0.6, 0.6}},
                                                 torch::kDouble)));
}

TEST_F(ProjectStepTest, L2StepHasTheRequestedLength) {
  const auto x = torch::full({3, 10}, 0.5, torch::kDouble);
  const auto grad = torch::randn({3, 10}, torch::kDouble);
  const auto out = project_step(x, grad, x, 0.2, 10.0, Norm::L2, -10.0, 10.0);
  EXPECT_TRUE(torch::allclose(per_sample_norm(out - x, Norm::L2),
                              torch::full({3}, 0.2, torch::kDouble)));
}

TEST_F(ProjectStepTest, CallableThroughTheDispatcher) {
  const auto in = random_inputs({4, 5}, torch::kFloat);
  auto op = c10::Dispatcher::singleton().findSchemaOrThrow("bulwark::project_step", "");
  EXPECT_TRUE(op.hasKernelForDispatchKey(c10::DispatchKey::CPU));
  const auto out = op.typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       double, double, int64_t, double, double)>()
                       .call(in.x_adv, in.grad, in.x_orig, 0.1, 0.1, 0, 0.0, 1.0);
  EXPECT_TRUE(torch::equal(out, project_step_reference(in.x_adv, in.grad, in.x_orig, 0.1, 0.1,
                                                       Norm::Linf, 0.0, 1.0)));
}

TEST_F(ProjectStepTest, RejectsBadArguments) {
  const auto in = random_inputs({4, 5}, torch::kFloat);
  EXPECT_BULWARK_ERROR(project_step(in.x_adv, in.grad, in.x_orig, 0.1, -0.1, Norm::L2, 0, 1),
                       "eps must be >= 0", "-0.1");
  EXPECT_BULWARK_ERROR(project_step(in.x_adv, in.grad, in.x_orig, -1, 0.1, Norm::L2, 0, 1),
                       "step_size");
  EXPECT_BULWARK_ERROR(project_step(in.x_adv, in.grad, in.x_orig, 0.1, 0.1, Norm::L2, 1, 0),
                       "lower < upper");
  EXPECT_BULWARK_ERROR(project_step(in.x_adv, in.grad.slice(0, 0, 3), in.x_orig, 0.1, 0.1,
                                    Norm::L2, 0, 1),
                       "grad has shape [3, 5]", "[4, 5]");
  EXPECT_BULWARK_ERROR(project_step(in.x_adv.to(torch::kDouble), in.grad, in.x_orig, 0.1, 0.1,
                                    Norm::L2, 0, 1),
                       "x_adv has dtype Double", "Float");
  EXPECT_BULWARK_ERROR(project_step(in.x_adv.to(torch::kLong), in.grad.to(torch::kLong),
                                    in.x_orig.to(torch::kLong), 0.1, 0.1, Norm::L2, 0, 1),
                       "floating-point");
  // Straight through the dispatcher the kernel checks too.
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("bulwark::project_step", "")
                .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                                  double, int64_t, double, double)>();
  EXPECT_BULWARK_ERROR(op.call(in.x_adv, in.grad, in.x_orig, 0.1, 0.1, 7, 0.0, 1.0),
                       "norm must be 0 (linf) or 1 (l2)");
}

TEST_F(ProjectStepTest, CudaKernelEqualsReference_CUDA) {
  BULWARK_SKIP_WITHOUT_CUDA();
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    for (const auto norm : {Norm::Linf, Norm::L2}) {
      const double tol = dtype == torch::kDouble ? 1e-12 : 1e-5;
      expect_matches_reference(random_inputs({16, 3, 8, 8}, dtype, torch::kCUDA), 0.07, 0.1,
                               norm, tol, tol);
      expect_matches_reference(random_inputs({0, 3}, dtype, torch::kCUDA), 0.07, 0.1, norm, 0, 0);
      expect_matches_reference(random_inputs({1, 3, 64, 64}, dtype, torch::kCUDA), 0.5, 1.0, norm,
                               tol, tol);
      auto in = random_inputs({8, 3, 6, 5}, dtype, torch::kCUDA);
      expect_matches_reference({in.x_adv.transpose(2, 3), in.grad.transpose(2, 3),
                                in.x_orig.transpose(2, 3)},
                               0.05, 0.1, norm, tol, tol);
    }
  }
}

TEST_F(ProjectStepTest, CudaKernelMatchesCpuKernel_CUDA) {
  BULWARK_SKIP_WITHOUT_CUDA();
  const auto in = random_inputs({32, 1, 28, 28}, torch::kFloat);
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    const auto cpu = project_step(in.x_adv, in.grad, in.x_orig, 0.1, 0.3, norm, 0, 1);
    const auto cuda = project_step(in.x_adv.cuda(), in.grad.cuda(), in.x_orig.cuda(), 0.1, 0.3,
                                   norm, 0, 1);
    EXPECT_TRUE(torch::allclose(cpu, cuda.cpu(), 1e-5, 1e-6));
  }
}

}  // namespace
}  // namespace bulwark::ops
