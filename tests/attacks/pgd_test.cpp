#include "bulwark/attacks/pgd.h"

#include "attacks/attack_test_util.h"
#include "bulwark/attacks/fgsm.h"
#include "bulwark/core/losses.h"
#include "bulwark/models/small_cnn.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::expect_valid;
using testing::LinearModel;
class PGDTest : public testing::SeededTest {};

TEST_F(PGDTest, ReachesTheExactLinfOptimumOfALinearModel) {
  // Two classes, logit difference (w1 − w0)·x: the worst L∞ perturbation of a class-1 sample is
  // −eps · sign(w1 − w0), reached from any start by sign steps.
  const auto w = torch::randn({2, 20}, torch::kDouble);
  LinearModel linear(w, torch::zeros({2}, torch::kDouble));
  const auto x = 0.3 + 0.4 * torch::rand({8, 20}, torch::kDouble);
  const auto y = torch::ones({8}, torch::kLong);
  const double eps = 0.1;
  const auto optimum = x - eps * (w[1] - w[0]).sign();
  for (const bool random_start : {false, true}) {
    PGD pgd(PGDOptions(eps).steps(10).random_start(random_start).seed(3));
    const auto r = pgd.run(linear.model, x, y);
    EXPECT_TRUE(torch::allclose(r.adversarial, optimum, 0, 1e-12)) << "random_start "
                                                                    << random_start;
    expect_valid(r, x, eps, Norm::Linf);
  }
  // FGSM takes the same step at once.
  const auto fgsm = FGSM(FGSMOptions(eps)).run(linear.model, x, y);
  EXPECT_TRUE(torch::allclose(fgsm.adversarial, optimum, 0, 1e-12));
}

TEST_F(PGDTest, L2ReachesTheOptimumOfALinearModel) {
  const auto w = torch::randn({2, 20}, torch::kDouble);
  LinearModel linear(w, torch::zeros({2}, torch::kDouble));
  const auto x = 0.4 + 0.2 * torch::rand({4, 20}, torch::kDouble);
  const auto y = torch::ones({4}, torch::kLong);
  const double eps = 0.2;
  const auto direction = (w[1] - w[0]) / (w[1] - w[0]).norm();
  PGD pgd(PGDOptions(eps).norm(Norm::L2).steps(20).random_start(false));
  const auto r = pgd.run(linear.model, x, y);
  EXPECT_TRUE(torch::allclose(r.adversarial, x - eps * direction, 0, 1e-9));
  expect_valid(r, x, eps, Norm::L2);
}

TEST_F(PGDTest, InvariantsOnACnnAndTheModelIsUntouched) {
  SmallCNN net;
  Model model(net);
  model.train(true);
  std::vector<at::Tensor> before;
  for (const auto& p : net->parameters()) before.push_back(p.detach().clone());
  const auto x = torch::rand({6, 1, 28, 28});
  const auto y = torch::randint(0, 10, {6}, torch::kLong);
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    const double eps = norm == Norm::Linf ? 0.1 : 1.0;
    for (const bool targeted : {false, true}) {
      PGD pgd(PGDOptions(eps).norm(norm).steps(5).restarts(2).targeted(targeted));
      expect_valid(pgd.run(model, x, y), x, eps, norm);
      expect_valid(FGSM(FGSMOptions(eps).norm(norm).targeted(targeted)).run(model, x, y), x, eps,
                   norm);
    }
  }
  EXPECT_TRUE(model.is_training());
  const auto after = net->parameters();
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i], after[i]));
    EXPECT_FALSE(after[i].grad().defined());
  }
}

TEST_F(PGDTest, SameSeedSameResult) {
  SmallCNN net;
  Model model(net);
  const auto x = torch::rand({4, 1, 28, 28});
  const auto y = torch::randint(0, 10, {4}, torch::kLong);
  auto run = [&](uint64_t seed) {
    return PGD(PGDOptions(0.1).steps(3).seed(seed)).run(model, x, y).adversarial;
  };
  EXPECT_TRUE(torch::equal(run(5), run(5)));
  EXPECT_FALSE(torch::equal(run(5), run(6)));
}

TEST_F(PGDTest, RestartsAreNeverWeakerThanOneRun) {
  // A weak, nearly linear model where single runs often fail at a small eps.
  bulwark::manual_seed(1);
  SmallCNN net;
  Model model(net);
  const auto x = torch::rand({32, 1, 28, 28});
  const auto y = torch::argmax(model.forward(x).detach(), 1);  // correctly classified by design
  for (const double eps : {0.005, 0.01, 0.02}) {
    const auto one = PGD(PGDOptions(eps).steps(5).seed(9)).run(model, x, y);
    const auto many = PGD(PGDOptions(eps).steps(5).restarts(4).seed(9)).run(model, x, y);
    // Restart 0 repeats the single run, so no sample it fooled can be lost.
    EXPECT_TRUE(torch::equal(one.success.logical_and(many.success), one.success)) << eps;
    EXPECT_GE(many.success.sum().item<int64_t>(), one.success.sum().item<int64_t>());
    EXPECT_EQ(many.iterations.sum().item<int64_t>(), 4 * 5 * 32);
  }
}

TEST_F(PGDTest, TargetedReachesTheTargetOnAnEasyModel) {
  // Class k's logit is 10·x_k: raising x_t by eps and lowering the others wins for any target
  // when the first three features are within 0.1 of each other.
  auto w = torch::zeros({3, 10}, torch::kDouble);
  w.slice(1, 0, 3).copy_(10 * torch::eye(3, torch::kDouble));
  LinearModel linear(w, torch::zeros({3}, torch::kDouble));
  const auto x = 0.45 + 0.1 * torch::rand({30, 10}, torch::kDouble);
  const auto target = torch::arange(30, torch::kLong) % 3;
  const auto r = PGD(PGDOptions(0.2).steps(10).targeted(true)).run(linear.model, x, target);
  EXPECT_TRUE(r.success.all().item<bool>());
  EXPECT_TRUE(torch::equal(linear.model.forward(r.adversarial).argmax(1), target));
}

TEST_F(PGDTest, EarlyStopIsNoWeakerAndCheaper) {
  // A linear 10-class model: samples close to a boundary fall within a few steps.
  LinearModel linear(torch::randn({10, 50}, torch::kDouble), torch::zeros({10}, torch::kDouble));
  const auto x = 0.3 + 0.4 * torch::rand({40, 50}, torch::kDouble);
  const auto y = torch::argmax(linear.model.forward(x).detach(), 1);
  const auto full = PGD(PGDOptions(0.05).steps(10).seed(4)).run(linear.model, x, y);
  const auto early =
      PGD(PGDOptions(0.05).steps(10).seed(4).early_stop(true)).run(linear.model, x, y);
  const auto fooled = full.success.sum().item<int64_t>();
  ASSERT_GT(fooled, 5);
  ASSERT_LT(fooled, 40);
  EXPECT_GE(early.success.sum().item<int64_t>(), fooled);
  EXPECT_LT(early.gradient_evaluations, full.gradient_evaluations);
  EXPECT_LT(early.iterations.sum().item<int64_t>(), full.iterations.sum().item<int64_t>());
  expect_valid(early, x, 0.05, Norm::Linf);
}

TEST_F(PGDTest, PerturbStartsWhereItIsToldAndRejectsAMisshapedStart) {
  // A model with no gradient: every step stays put, so the result is the start itself.
  const auto flat = Model::from_function(
      [](const at::Tensor& x) { return (x.flatten(1).sum(1, true) * 0).expand({x.size(0), 3}); },
      {}, "flat");
  const auto x = 0.3 + 0.4 * torch::rand({4, 1, 4, 4});
  const auto y = torch::zeros({4}, torch::kLong);
  const auto start = x + 0.01 * torch::randn({4, 1, 4, 4});
  auto generator = make_generator(1);
  PGD pgd(PGDOptions(0.1).steps(3));
  auto model = flat;
  EXPECT_TRUE(torch::equal(pgd.perturb(model, x, y, generator, {}, start), start));
  EXPECT_BULWARK_ERROR(pgd.perturb(model, x, y, generator, {}, start.slice(0, 0, 2)),
                       "start shaped like x [4, 1, 4, 4]", "[2, 1, 4, 4]");
}

TEST_F(PGDTest, RejectsBadInput) {
  SmallCNN net;
  Model model(net);
  const auto x = torch::rand({2, 1, 28, 28});
  const auto y = torch::tensor({1, 2}, torch::kLong);
  EXPECT_BULWARK_ERROR(PGD(PGDOptions(-0.1)), "pgd: eps must be finite and >= 0", "-0.1");
  EXPECT_BULWARK_ERROR(PGD(PGDOptions(0.1).steps(0)), "steps must be >= 1", "0");
  EXPECT_BULWARK_ERROR(PGD(PGDOptions(0.1).restarts(0)), "restarts");
  EXPECT_BULWARK_ERROR(FGSM(FGSMOptions(-1)), "fgsm: eps");
  PGD pgd(PGDOptions(0.1).steps(1));
  EXPECT_BULWARK_ERROR(pgd.run(model, x, torch::tensor({1, 10}, torch::kLong)), "[0, 10)",
                       "10]");
  EXPECT_BULWARK_ERROR(pgd.run(model, x, torch::tensor({1}, torch::kLong)), "shape [2]");
  EXPECT_BULWARK_ERROR(pgd.run(model, x * 2, y), "input box [0, 1]");
  auto nan = x.clone();
  nan[0][0][0][0] = std::nan("");
  EXPECT_BULWARK_ERROR(pgd.run(model, nan, y), "NaN");
  EXPECT_BULWARK_ERROR(pgd.run(model, x.to(torch::kLong), y), "floating-point");
  EXPECT_BULWARK_ERROR(pgd.run(model, torch::rand({2, 1, 32, 32}), y), "[N, 1, 28, 28]");
  const auto empty = pgd.run(model, x.slice(0, 0, 0), y.slice(0, 0, 0));
  EXPECT_EQ(empty.adversarial.size(0), 0);
}

TEST_F(PGDTest, CudaTensorsWork_CUDA) {
  BULWARK_SKIP_WITHOUT_CUDA();
  SmallCNN net;
  Model model(net);
  model.to(torch::kCUDA);
  const auto x = torch::rand({4, 1, 28, 28}, torch::kCUDA);
  const auto y = torch::randint(0, 10, {4}, torch::TensorOptions().dtype(torch::kLong).device(torch::kCUDA));
  const auto r = PGD(PGDOptions(0.1).steps(3)).run(model, x, y);
  expect_valid(r, x, 0.1, Norm::Linf);
  EXPECT_TRUE(r.adversarial.is_cuda());
}

}  // namespace
}  // namespace bulwark
