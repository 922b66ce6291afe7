#include "bulwark/attacks/carlini_wagner.h"

#include "attacks/attack_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::LinearModel;
class CarliniWagnerTest : public testing::SeededTest {};

TEST_F(CarliniWagnerTest, FindsTheMinimalDistanceOfALinearClassifier) {
  // Logits (0, w·x + b): the smallest L2 perturbation that flips a class-1 sample is
  // (w·x + b) / ‖w‖, along −w.
  const int64_t d = 20;
  const auto w = torch::randn({d}, torch::kDouble);
  const auto weight = torch::stack({torch::zeros({d}, torch::kDouble), w});
  const auto x = 0.45 + 0.1 * torch::rand({6, d}, torch::kDouble);
  // Choose b so that every sample is class 1 at a distance between 0.05 and 0.15.
  const auto target_distance = 0.05 + 0.1 * torch::rand({6}, torch::kDouble);
  const auto margins = target_distance * w.norm();
  // Per-sample bias is not possible in one model: instead shift each x along w.
  const auto shift = (margins - x.matmul(w)).unsqueeze(1) * w.unsqueeze(0) / w.pow(2).sum();
  const auto xs = x + shift;
  ASSERT_TRUE(xs.min().item<double>() > 0.1 && xs.max().item<double>() < 0.9);
  LinearModel linear(weight, torch::zeros({2}, torch::kDouble));
  const auto y = torch::ones({6}, torch::kLong);
  CarliniWagner cw(CarliniWagnerOptions().steps(1000).binary_search_steps(6).initial_const(1.0));
  const auto r = cw.run(linear.model, xs, y);
  EXPECT_TRUE(r.success.all().item<bool>());
  const auto expected = xs.matmul(w) / w.norm();
  EXPECT_TRUE(torch::allclose(r.l2, expected, 0.01, 0))
      << "found " << r.l2 << " expected " << expected;
  EXPECT_TRUE((r.l2 >= expected * (1 - 1e-9)).all().item<bool>()) << "below the true minimum";
}

TEST_F(CarliniWagnerTest, UnboundedSucceedsAndStaysInTheBox) {
  LinearModel linear(torch::randn({10, 64}), torch::zeros({10}));
  const auto x = torch::rand({8, 1, 8, 8});
  const auto y = linear.model.forward(x).argmax(1).detach();
  const auto r = CarliniWagner(CarliniWagnerOptions().steps(50).binary_search_steps(5))
                     .run(linear.model, x, y);
  EXPECT_TRUE(r.success.all().item<bool>());
  EXPECT_GE(r.adversarial.min().item<float>(), 0.0f);
  EXPECT_LE(r.adversarial.max().item<float>(), 1.0f);
  EXPECT_FALSE(linear.weight.grad().defined());
  EXPECT_TRUE(torch::equal(r.iterations, r.iterations[0].expand({8})));
}

TEST_F(CarliniWagnerTest, BudgetTurnsLargePerturbationsIntoFailures) {
  LinearModel linear(torch::randn({10, 64}), torch::zeros({10}));
  const auto x = torch::rand({8, 1, 8, 8});
  const auto y = linear.model.forward(x).argmax(1).detach();
  const CarliniWagner unbounded(CarliniWagnerOptions().steps(50).binary_search_steps(5));
  auto free_run = CarliniWagner(unbounded.options()).run(linear.model, x, y);
  ASSERT_TRUE(free_run.success.all().item<bool>());
  const double eps = free_run.l2.median().item<double>();
  const auto r = unbounded.with_budget(eps, false)->run(linear.model, x, y);
  EXPECT_LE(r.l2.max().item<double>(), eps + 1e-6);
  // Deterministic: the same search, so exactly the samples over the budget come back clean.
  EXPECT_TRUE(torch::equal(r.l2.eq(0), free_run.l2 > eps));
  EXPECT_TRUE(torch::equal(r.success, free_run.l2 <= eps));
}

TEST_F(CarliniWagnerTest, TargetedReachesTheTarget) {
  const auto w = 3 * torch::randn({3, 10}, torch::kDouble);
  LinearModel linear(w, torch::zeros({3}, torch::kDouble));
  const auto x = 0.3 + 0.4 * torch::rand({9, 10}, torch::kDouble);
  const auto target = torch::arange(9, torch::kLong) % 3;
  const auto r = CarliniWagner(CarliniWagnerOptions().targeted(true).steps(200).initial_const(1))
                     .run(linear.model, x, target);
  EXPECT_TRUE(r.success.all().item<bool>());
}

TEST_F(CarliniWagnerTest, RejectsBadOptions) {
  EXPECT_BULWARK_ERROR(CarliniWagner(CarliniWagnerOptions().confidence(-1)), "confidence");
  EXPECT_BULWARK_ERROR(CarliniWagner(CarliniWagnerOptions().steps(0)), "steps must be >= 1");
  EXPECT_BULWARK_ERROR(CarliniWagner(CarliniWagnerOptions().initial_const(0)), "initial_const");
  EXPECT_BULWARK_ERROR(CarliniWagner(CarliniWagnerOptions().eps(-0.5)), "eps must be >= 0");
}

}  // namespace
}  // namespace bulwark
