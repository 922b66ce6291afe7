#include "bulwark/attacks/auto_attack.h"

#include "attacks/attack_test_util.h"
#include "bulwark/attacks/apgd.h"
#include "bulwark/attacks/fab.h"
#include "bulwark/attacks/square.h"
#include "bulwark/data/dataset.h"
#include "bulwark/eval/robustness.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::expect_valid;
class AutoAttackTest : public testing::SeededTest {};

// A small convolutional model on 1×8×8 images with 5 classes, and inputs it classifies.
struct SmallCase {
  torch::nn::Sequential net{torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)),
                            torch::nn::ReLU(), torch::nn::Flatten(),
                            torch::nn::Linear(4 * 6 * 6, 5)};
  Model model{net};
  at::Tensor x, y;
  SmallCase() {
    net->to(torch::kDouble);
    x = torch::rand({40, 1, 8, 8}, torch::kDouble);
    torch::NoGradGuard no_grad;
    y = model.forward(x).argmax(1);
  }
};

int64_t robust(const AttackResult& r) { return r.success.logical_not().sum().item<int64_t>(); }

TEST_F(AutoAttackTest, StandardRunsItsFourComponentsInOrderOnTheSurvivors) {
  SmallCase c;
  const double eps = 0.03;
  AutoAttack aa{AutoAttackOptions(eps)};
  std::vector<std::string> names;
  for (const auto& a : aa.components()) names.push_back(a->name());
  EXPECT_EQ(names, (std::vector<std::string>{"apgd-ce", "apgd-t", "fab-t", "square"}));
  const auto r = aa.run(c.model, c.x, c.y);
  expect_valid(r, c.x, eps, Norm::Linf);
  ASSERT_EQ(r.stages.size(), 4u);
  // Each component runs on what the previous ones left; together they fooled every success.
  int64_t fooled = 0, left = 40;
  for (const auto& s : r.stages) {
    EXPECT_EQ(s.attacked, left) << s.attack;
    left -= s.fooled;
    fooled += s.fooled;
  }
  EXPECT_EQ(fooled, r.success.sum().item<int64_t>());
  EXPECT_GT(fooled, 0);
  EXPECT_LT(fooled, 40);
  // Never above a component run alone on all the samples with the same seed: the first one
  // sees exactly the same samples and draws.
  const auto ce = APGD(APGDOptions(eps)).run(c.model, c.x, c.y);
  EXPECT_LE(robust(r), robust(ce));
  for (const auto& component : aa.components()) {
    EXPECT_LE(robust(r), robust(component->run(c.model, c.x, c.y))) << component->name();
  }
  // Early exit changes the compute, not the verdict.
  const auto full = AutoAttack(AutoAttackOptions(eps).early_stop(false)).run(c.model, c.x, c.y);
  EXPECT_TRUE(torch::equal(full.success, r.success));
  EXPECT_GT(full.gradient_evaluations, r.gradient_evaluations);
}

TEST_F(AutoAttackTest, VersionsFollowTheReference) {
  const auto names = [](const AutoAttack& aa) {
    std::vector<std::string> out;
    for (const auto& a : aa.components()) out.push_back(a->name());
    return out;
  };
  EXPECT_EQ(names(AutoAttack(AutoAttackOptions(0.1).version(AutoAttackVersion::Plus))),
            (std::vector<std::string>{"apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"}));
  const AutoAttack rand(AutoAttackOptions(0.1).version(AutoAttackVersion::Rand));
  EXPECT_EQ(names(rand), (std::vector<std::string>{"apgd-ce", "apgd-dlr"}));
  EXPECT_EQ(dynamic_cast<const APGD&>(*rand.components()[0]).options().eot_iter(), 20);
  const AutoAttack plus(AutoAttackOptions(0.1).version(AutoAttackVersion::Plus));
  EXPECT_EQ(dynamic_cast<const APGD&>(*plus.components()[0]).options().restarts(), 5);
  EXPECT_EQ(dynamic_cast<const FAB&>(*plus.components()[2]).options().restarts(), 5);
  EXPECT_EQ(dynamic_cast<const FAB&>(*plus.components()[5]).options().restarts(), 1);
  const AutoAttack standard(AutoAttackOptions(0.1).norm(Norm::L2));
  EXPECT_EQ(dynamic_cast<const APGD&>(*standard.components()[0]).options().restarts(), 1);
  EXPECT_EQ(dynamic_cast<const Square&>(*standard.components()[3]).options().queries(), 5000);
  EXPECT_EQ(standard.components()[3]->norm(), Norm::L2);
  EXPECT_EQ(names(AutoAttack(AutoAttackOptions(0.1)
                                 .version(AutoAttackVersion::Custom)
                                 .attacks({"square", "apgd-dlr"}))),
            (std::vector<std::string>{"square", "apgd-dlr"}));
  EXPECT_EQ(parse_auto_attack_version("plus"), AutoAttackVersion::Plus);
  EXPECT_BULWARK_ERROR(parse_auto_attack_version("quick"),
                       "standard, plus, rand, custom or fast");
  EXPECT_BULWARK_ERROR(
      AutoAttack(AutoAttackOptions(0.1).version(AutoAttackVersion::Custom).attacks({"pgd"})),
      "unknown attack 'pgd'");
  EXPECT_BULWARK_ERROR(AutoAttack(AutoAttackOptions(0.1).version(AutoAttackVersion::Custom)),
                       "at least one attack");
  EXPECT_BULWARK_ERROR(AutoAttack(AutoAttackOptions(0.1).attacks({"square"})),
                       "fixes its attacks");
  EXPECT_THROW(AutoAttack(AutoAttackOptions(-1)), Error);
}

TEST_F(AutoAttackTest, RefusesTooFewClassesRandomisedAndNonFiniteModels) {
  const auto x = torch::rand({4, 1, 8, 8}, torch::kDouble);
  const auto y = torch::zeros({4}, torch::kLong);
  const auto w = torch::randn({3, 64}, torch::kDouble);
  auto three = Model::from_function([w](const at::Tensor& in) { return in.flatten(1).matmul(w.t()); },
                                    {}, "three");
  EXPECT_BULWARK_ERROR(AutoAttack(AutoAttackOptions(0.1)).run(three, x, y),
                       "apgd-t needs at least 4 classes", "custom");
  // Without the targeted DLR loss, three classes work.
  EXPECT_NO_THROW(AutoAttack(AutoAttackOptions(0.1)
                                 .version(AutoAttackVersion::Custom)
                                 .attacks({"apgd-ce", "apgd-dlr", "fab-t"}))
                      .run(three, x, y));
  auto noisy = Model::from_function(
      [w](const at::Tensor& in) { return in.flatten(1).matmul(w.t()) + torch::randn({in.size(0), 3}, torch::kDouble); },
      {}, "noisy");
  EXPECT_BULWARK_ERROR(
      AutoAttack(AutoAttackOptions(0.1).version(AutoAttackVersion::Custom).attacks({"apgd-ce"}))
          .run(noisy, x, y),
      "randomised", "rand version");
  EXPECT_NO_THROW(AutoAttack(AutoAttackOptions(0.1).version(AutoAttackVersion::Rand))
                      .run(noisy, x, y));
  auto broken = Model::from_function(
      [w](const at::Tensor& in) { return in.flatten(1).matmul(w.t()) / 0.0; }, {}, "broken");
  EXPECT_BULWARK_ERROR(AutoAttack(AutoAttackOptions(0.1)).run(broken, x, y), "NaN or infinite");
}

TEST_F(AutoAttackTest, WarnsAboutSoftmaxOutputs) {
  SmallCase c;
  auto softmax = Model::from_function(
      [&c](const at::Tensor& in) { return torch::softmax(c.model.forward(in), 1); }, {},
      "softmax");
  const auto r = AutoAttack(AutoAttackOptions(0.01).version(AutoAttackVersion::Custom).attacks({"apgd-ce"}))
                     .run(softmax, c.x, c.y);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("look like probabilities"), std::string::npos);
  EXPECT_TRUE(check_output_is_logits(c.model.forward(c.x)).empty());
  EXPECT_BULWARK_ERROR(check_output_is_logits(torch::rand({4})), "needs logits [N, classes]",
                       "[4]");
}

// A model that rounds its input to one bit: zero gradients everywhere. The gradient attacks
// leave accuracy high, Square does not, and the evaluation says so.
TEST_F(AutoAttackTest, SquareExposesAGradientMaskedModelAndTheCheckWarns) {
  const auto w = torch::randn({10, 64}, torch::kDouble);
  auto masked = Model::from_function(
      [w](const at::Tensor& x) { return torch::round(x).flatten(1).matmul(w.t()); }, {},
      "one-bit");
  // Pixels 0.2 from the rounding threshold: APGD's random start (largest coordinate ε) rarely
  // crosses it, and the zero gradient never moves it further.
  const auto images =
      torch::where(torch::rand({60, 1, 8, 8}) > 0.5, 0.7, 0.3).to(torch::kDouble);
  const Dataset data(images, torch::round(images).flatten(1).matmul(w.t()).argmax(1), 10,
                     "synthetic");
  const double eps = 0.21;
  const auto report = evaluate(masked, data, {std::make_shared<AutoAttack>(AutoAttackOptions(eps))},
                               {eps}, EvaluationOptions().sanity_samples(0));
  ASSERT_EQ(report.results.size(), 1u);
  const auto& stages = report.results[0].stages;
  ASSERT_EQ(stages.size(), 4u);
  // Measured: APGD-CE fools 5 of 60 (its random start), APGD-T 32 more (nine random starts,
  // one per target: random search, not gradients), FAB-T none, Square the remaining 23.
  EXPECT_LT(stages[0].fooled, 12);
  EXPECT_EQ(stages[2].fooled, 0);
  EXPECT_GT(stages[3].fooled, 5);
  bool zero_gradients = false, masking = false;
  for (const auto& warning : report.warnings) {
    zero_gradients |= warning.find("zero gradient") != std::string::npos;
    masking |= warning.find("gradient masking") != std::string::npos;
  }
  EXPECT_TRUE(zero_gradients);
  EXPECT_TRUE(masking);
  EXPECT_LT(report.results[0].robust_accuracy, 0.2);
}

// The fast schedule: measured defaults per norm, any value given wins, and a value below 1 is
// refused.
TEST_F(AutoAttackTest, FastScheduleDependsOnTheNormAndGivenValuesWin) {
  const auto linf = fast_schedule(AutoAttackOptions(0.1).version(AutoAttackVersion::Fast));
  EXPECT_EQ(linf.ce_steps, 35);
  EXPECT_EQ(linf.targets, 2);
  EXPECT_EQ(linf.target_steps, 35);
  const auto l2_options = AutoAttackOptions(1.5).norm(Norm::L2).version(AutoAttackVersion::Fast);
  const auto l2 = fast_schedule(l2_options);
  EXPECT_EQ(l2.ce_steps, 40);
  EXPECT_EQ(l2.targets, 3);
  EXPECT_EQ(l2.target_steps, 25);
  const auto given = fast_schedule(AutoAttackOptions(l2_options).fast_steps(12).fast_targets(5));
  EXPECT_EQ(given.ce_steps, 12);
  EXPECT_EQ(given.targets, 5);
  EXPECT_EQ(given.target_steps, 25);
  AutoAttack attack(AutoAttackOptions(l2_options).fast_target_steps(7));
  const auto& targeted = dynamic_cast<const APGDTargeted&>(*attack.components()[1]);
  EXPECT_EQ(targeted.options().steps(), 7);
  EXPECT_EQ(targeted.options().target_classes(), 3);
  EXPECT_EQ(dynamic_cast<const APGD&>(*attack.components()[0]).options().steps(), 40);
  EXPECT_THROW(AutoAttack(AutoAttackOptions(l2_options).fast_targets(0)), Error);
  EXPECT_THROW(AutoAttack(AutoAttackOptions(l2_options).fast_target_steps(-1)), Error);
}

// The fast version: short APGD-CE and APGD-T, then a Square probe that escalates to Square in
// full only when it fools a sample.
TEST_F(AutoAttackTest, FastVersionEscalatesToSquareOnlyWhenTheProbeFoolsASample) {
  const auto options = AutoAttackOptions(0.21).version(AutoAttackVersion::Fast).probe_samples(8);
  AutoAttack fast(options);
  EXPECT_EQ(fast.name(), "autoattack-fast");
  ASSERT_EQ(fast.components().size(), 4u);
  EXPECT_EQ(dynamic_cast<const APGD&>(*fast.components()[0]).options().steps(), 35);
  EXPECT_EQ(dynamic_cast<const APGDTargeted&>(*fast.components()[1]).options().target_classes(), 2);
  EXPECT_EQ(dynamic_cast<const Square&>(*fast.components()[2]).options().queries(), 100);
  EXPECT_EQ(dynamic_cast<const Square&>(*fast.components()[3]).options().queries(), 5000);

  // A smooth model: nothing left for the probe to find, so Square never runs in full.
  SmallCase c;
  const auto smooth = fast.with_budget(0.03, true)->run(c.model, c.x, c.y);
  ASSERT_EQ(smooth.stages.size(), 3u);
  EXPECT_EQ(smooth.stages[2].attack, "square-probe");
  EXPECT_EQ(smooth.stages[2].fooled, 0);
  EXPECT_LE(smooth.stages[2].attacked, 8);
  const auto standard = AutoAttack(AutoAttackOptions(0.03)).run(c.model, c.x, c.y);
  const auto cost = [](const AttackResult& r) {
    return forward_equivalents(r.gradient_evaluations, r.forward_evaluations);
  };
  EXPECT_LT(4 * cost(smooth), cost(standard));
  EXPECT_LE(robust(smooth), robust(standard) + 1);

  // The one-bit model: the probe fools samples and Square runs on every survivor.
  const auto w = torch::randn({10, 64}, torch::kDouble);
  auto masked = Model::from_function(
      [w](const at::Tensor& x) { return torch::round(x).flatten(1).matmul(w.t()); }, {},
      "one-bit");
  const auto x = torch::where(torch::rand({40, 1, 8, 8}) > 0.5, 0.7, 0.3).to(torch::kDouble);
  const auto y = torch::round(x).flatten(1).matmul(w.t()).argmax(1);
  const auto r = fast.run(masked, x, y);
  ASSERT_EQ(r.stages.size(), 4u);
  EXPECT_GT(r.stages[2].fooled, 0);
  EXPECT_EQ(r.stages[3].attack, "square");
  EXPECT_GT(r.stages[3].fooled, 0);
  const auto full = AutoAttack(AutoAttackOptions(0.21)).run(masked, x, y);
  EXPECT_LE(robust(r), robust(full) + 2);
}

}  // namespace
}  // namespace bulwark
