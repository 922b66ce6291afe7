#include "bulwark/attacks/apgd.h"

#include "attacks/attack_test_util.h"
#include "bulwark/attacks/pgd.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::expect_valid;
using testing::LinearModel;
class APGDTest : public testing::SeededTest {};

TEST(APGDStepControlTest, CheckpointsFollowTheReferenceSchedule) {
  EXPECT_EQ(APGDStepControl::checkpoints(100),
            (std::vector<int64_t>{22, 41, 57, 70, 80, 87, 93, 99}));
  // Windows of at least one step: int(0.22 · 10) = 2, then shrinking by 1 to int(0.6) → 1.
  EXPECT_EQ(APGDStepControl::checkpoints(10), (std::vector<int64_t>{2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(APGDStepControl::checkpoints(1), (std::vector<int64_t>{1}));
  EXPECT_THROW(APGDStepControl::checkpoints(0), Error);
}

// Scripted losses for four samples over 100 iterations, and where each step size must halve.
TEST(APGDStepControlTest, HalvesOnOscillationAndOnStalledProgressOnly) {
  const int64_t steps = 100;
  std::vector<std::vector<double>> loss(4, std::vector<double>(steps));
  for (int64_t i = 0; i < steps; ++i) {
    loss[0][i] = static_cast<double>(i + 1);  // always rising: never halves
    loss[1][i] = 1.0;                         // flat: halves at every checkpoint
  }
  // Samples 2 and 3: the first window (22 steps) rises 16 and 17 times (its first step counts
  // as a rise over the reference's zero row): 16 <= 0.75 · 22 halves, 17 does not.
  for (int s = 2; s <= 3; ++s) {
    const int rises = s == 2 ? 15 : 16;
    loss[s][0] = 1.0;
    for (int64_t i = 1; i < 22; ++i) loss[s][i] = loss[s][i - 1] + (i <= rises ? 1.0 : -0.5);
  }
  // Sample 3 then drops far and climbs for the whole second window (18 of 19 steps rise, no
  // oscillation) without reaching its best: its step halves at 41 for lack of progress.
  loss[3][22] = -100.0;
  for (int64_t i = 23; i < steps; ++i) loss[3][i] = loss[3][i - 1] + 1.0;
  for (int64_t i = 22; i < steps; ++i) loss[2][i] = loss[2][i - 1] + 1.0;

  auto initial = torch::full({4}, -1e9, torch::kDouble);
  APGDStepControl control(steps, 0.75, initial);
  auto best = initial.clone();
  std::vector<std::vector<int64_t>> halved(4);
  for (int64_t i = 0; i < steps; ++i) {
    at::Tensor now = torch::empty({4}, torch::kDouble);
    for (int s = 0; s < 4; ++s) now[s] = loss[s][i];
    best = torch::max(best, now);
    const auto halve = control.update(i, now, best);
    for (int s = 0; s < 4; ++s) {
      if (halve[s].item<bool>()) halved[s].push_back(i + 1);
    }
  }
  EXPECT_TRUE(halved[0].empty());
  EXPECT_EQ(halved[1], APGDStepControl::checkpoints(steps));
  ASSERT_FALSE(halved[2].empty());
  EXPECT_EQ(halved[2].front(), 22);
  // Sample 2 climbs steadily after 22: no further halving.
  EXPECT_EQ(halved[2].size(), 1u);
  ASSERT_FALSE(halved[3].empty());
  EXPECT_EQ(halved[3].front(), 41);
}

// A linear model with K classes: within the box, the smallest L∞ (L2) perturbation that changes
// the class of x is min over j ≠ y of margin_j / ‖w_y − w_j‖₁ (‖·‖₂).
struct LinearCase {
  at::Tensor w, b, x, y, distance_linf, distance_l2;
};

LinearCase linear_case(int64_t classes, int64_t n) {
  LinearCase c;
  c.w = torch::randn({classes, 20}, torch::kDouble);
  c.b = torch::zeros({classes}, torch::kDouble);
  c.x = 0.4 + 0.2 * torch::rand({n, 20}, torch::kDouble);
  const auto logits = torch::matmul(c.x, c.w.t());
  c.y = logits.argmax(1);
  c.distance_linf = torch::full({n}, 1e9, torch::kDouble);
  c.distance_l2 = c.distance_linf.clone();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t yi = c.y[i].item<int64_t>();
    for (int64_t j = 0; j < classes; ++j) {
      if (j == yi) continue;
      const auto diff = c.w[yi] - c.w[j];
      const auto margin = logits[i][yi] - logits[i][j];
      c.distance_linf[i] = torch::min(c.distance_linf[i], margin / diff.abs().sum());
      c.distance_l2[i] = torch::min(c.distance_l2[i], margin / diff.norm());
    }
  }
  return c;
}

// Every sample closer than 0.9 ε is fooled; none farther than ε can be (the box does not bind:
// x lies in [0.4, 0.6] and ε ≤ 0.4 per coordinate).
void expect_exact_verdict(Attack& attack, const LinearCase& c, const at::Tensor& distance,
                          double eps) {
  LinearModel linear(c.w, c.b);
  const auto r = attack.run(linear.model, c.x, c.y);
  expect_valid(r, c.x, eps, attack.norm());
  const auto close = distance.lt(0.9 * eps);
  const auto far = distance.gt(eps);
  ASSERT_GT(close.sum().item<int64_t>(), 0);
  ASSERT_GT(far.sum().item<int64_t>(), 0);
  EXPECT_TRUE(r.success.index({close}).all().item<bool>()) << attack.name();
  EXPECT_FALSE(r.success.index({far}).any().item<bool>()) << attack.name();
}

TEST_F(APGDTest, FoolsExactlyTheSamplesWithinReachOfALinearModel) {
  const auto c = linear_case(5, 64);
  const double linf_eps = c.distance_linf.median().item<double>();
  const double l2_eps = c.distance_l2.median().item<double>();
  for (const auto loss : {APGDLoss::CrossEntropy, APGDLoss::DLR}) {
    APGD linf(APGDOptions(linf_eps).loss(loss).steps(50).seed(1));
    expect_exact_verdict(linf, c, c.distance_linf, linf_eps);
    APGD l2(APGDOptions(l2_eps).norm(Norm::L2).loss(loss).steps(50).seed(1));
    expect_exact_verdict(l2, c, c.distance_l2, l2_eps);
  }
  APGDTargeted targeted(APGDOptions(linf_eps).steps(50).seed(1));
  expect_exact_verdict(targeted, c, c.distance_linf, linf_eps);
  APGDTargeted targeted_l2(APGDOptions(l2_eps).norm(Norm::L2).steps(50).seed(1));
  expect_exact_verdict(targeted_l2, c, c.distance_l2, l2_eps);
}

TEST_F(APGDTest, EarlyStopChangesTheComputeButNotTheVerdict) {
  const auto c = linear_case(5, 32);
  LinearModel linear(c.w, c.b);
  const double eps = c.distance_linf.median().item<double>();
  const int64_t steps = 20;
  APGD full(APGDOptions(eps).steps(steps).early_stop(false).seed(4));
  APGD early(APGDOptions(eps).steps(steps).early_stop(true).seed(4));
  const auto a = full.run(linear.model, c.x, c.y);
  const auto b = early.run(linear.model, c.x, c.y);
  EXPECT_TRUE(torch::equal(a.success, b.success));
  // Without early stopping every sample pays the start and N − 1 gradients, then one forward
  // pass for the last iterate and one for the clean prediction.
  EXPECT_EQ(a.gradient_evaluations, 32 * steps);
  EXPECT_EQ(a.forward_evaluations, 2 * 32);
  EXPECT_TRUE(torch::all(a.iterations == steps).item<bool>());
  EXPECT_LT(b.gradient_evaluations, a.gradient_evaluations);
  // A sample fooled early keeps a misclassified iterate.
  const auto predicted = torch::matmul(b.adversarial, c.w.t()).argmax(1);
  EXPECT_TRUE(torch::equal(predicted.ne(c.y), b.success));
}

TEST_F(APGDTest, SameSeedSameResultAndRestartsNeverWeaker) {
  torch::manual_seed(2);
  torch::nn::Sequential net(torch::nn::Linear(12, 16), torch::nn::Tanh(), torch::nn::Linear(16, 4));
  net->to(torch::kDouble);
  Model model(net);
  const auto x = torch::rand({48, 12}, torch::kDouble);
  const auto y = model.forward(x).argmax(1).detach();
  const double eps = 0.08;
  const auto one = APGD(APGDOptions(eps).loss(APGDLoss::DLR).steps(10).seed(7)).run(model, x, y);
  const auto again = APGD(APGDOptions(eps).loss(APGDLoss::DLR).steps(10).seed(7)).run(model, x, y);
  EXPECT_TRUE(torch::equal(one.adversarial, again.adversarial));
  const auto three =
      APGD(APGDOptions(eps).loss(APGDLoss::DLR).steps(10).restarts(3).seed(7)).run(model, x, y);
  // The first restart is the single run; later ones only add fooled samples.
  EXPECT_TRUE(three.success.logical_or(one.success).equal(three.success));
  expect_valid(three, x, eps, Norm::Linf);
  // APGD with 10 steps fools at least as many samples as PGD with 10.
  const auto pgd = PGD(PGDOptions(eps).steps(10).seed(7)).run(model, x, y);
  EXPECT_GE(one.success.sum().item<int64_t>(), pgd.success.sum().item<int64_t>());
}

TEST_F(APGDTest, RejectsBadOptionsTooFewClassesAndNonFiniteOutputs) {
  EXPECT_THROW(APGD(APGDOptions(-0.1)), Error);
  EXPECT_THROW(APGD(APGDOptions(0.1).steps(0)), Error);
  EXPECT_THROW(APGD(APGDOptions(0.1).rho(1.5)), Error);
  EXPECT_THROW(APGD(APGDOptions(0.1).eot_iter(0)), Error);
  EXPECT_THROW(APGD(APGDOptions(0.1).loss(APGDLoss::TargetedDLR)), Error);
  EXPECT_THROW(APGDTargeted(APGDOptions(0.1).loss(APGDLoss::DLR)), Error);
  EXPECT_THROW(APGDTargeted(APGDOptions(0.1).target_classes(0)), Error);

  LinearModel two(torch::randn({2, 6}, torch::kDouble), torch::zeros({2}, torch::kDouble));
  const auto x = torch::rand({3, 6}, torch::kDouble);
  const auto y = torch::zeros({3}, torch::kLong);
  EXPECT_BULWARK_ERROR(APGD(APGDOptions(0.1).loss(APGDLoss::DLR)).run(two.model, x, y),
                       "needs at least 3 classes");
  LinearModel three(torch::randn({3, 6}, torch::kDouble), torch::zeros({3}, torch::kDouble));
  EXPECT_BULWARK_ERROR(APGDTargeted(APGDOptions(0.1)).run(three.model, x, y),
                       "needs at least 4 classes");
  // Cross-entropy works with two classes.
  EXPECT_NO_THROW(APGD(APGDOptions(0.1).steps(3)).run(two.model, x, y));
  EXPECT_NO_THROW(APGDTargeted(APGDOptions(0.1).steps(3).loss(APGDLoss::TargetedCrossEntropy))
                      .run(two.model, x, y));

  auto broken = Model::from_function(
      [](const at::Tensor& in) { return in.flatten(1).narrow(1, 0, 4) / 0.0; }, {}, "broken");
  EXPECT_BULWARK_ERROR(APGD(APGDOptions(0.1)).run(broken, x, y), "NaN or infinite");
}

}  // namespace
}  // namespace bulwark
