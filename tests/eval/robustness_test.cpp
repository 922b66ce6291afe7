#include "bulwark/eval/robustness.h"

#include <fstream>

#include "attacks/attack_test_util.h"
#include "bulwark/attacks/carlini_wagner.h"
#include "bulwark/attacks/fgsm.h"
#include "bulwark/attacks/pgd.h"
#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::LinearModel;
class RobustnessTest : public testing::SeededTest {};

Dataset labelled_by(Model& model, const at::Tensor& x) {
  auto y = model.forward(x).argmax(1).detach();
  y.slice(0, 0, 3).add_(1).remainder_(model.forward(x).size(1));  // three wrong labels
  return Dataset(x, y, model.forward(x).size(1), "toy");
}

TEST_F(RobustnessTest, WorstCaseAndMonotoneOnALinearModel) {
  LinearModel linear(torch::randn({10, 50}), torch::zeros({10}));
  const auto data = labelled_by(linear.model, 0.3 + 0.4 * torch::rand({60, 50}));
  std::vector<std::shared_ptr<Attack>> attacks = {std::make_shared<FGSM>(FGSMOptions(0.1)),
                                                  std::make_shared<PGD>(PGDOptions(0.1))};
  const auto report = evaluate(linear.model, data, attacks, {0.02, 0.05, 0.1},
                               EvaluationOptions().batch_size(16));
  EXPECT_NEAR(report.clean_accuracy, 57.0 / 60.0, 1e-12);
  ASSERT_EQ(report.results.size(), 6u);
  ASSERT_EQ(report.worst_case.size(), 3u);
  for (const auto& w : report.worst_case) {
    for (const auto& r : report.results) {
      if (r.eps == w.eps) {
        EXPECT_LE(w.robust_accuracy, r.robust_accuracy);
      }
      EXPECT_LE(r.robust_accuracy, report.clean_accuracy);
    }
  }
  EXPECT_GE(report.worst_case[0].robust_accuracy, report.worst_case[2].robust_accuracy);
  EXPECT_TRUE(report.warnings.empty()) << report.warnings.front();
  const auto json = to_json(report);
  EXPECT_NE(json.find("\"worst_case\""), std::string::npos);
  EXPECT_NE(to_markdown(report).find("| pgd | linf | 0.05 |"), std::string::npos);

  // By class: the samples, clean and worst-case robust accuracy add up to the totals.
  ASSERT_EQ(report.per_class.size(), 10u);
  int64_t samples = 0;
  double clean = 0;
  std::vector<double> robust(3, 0.0);
  for (const auto& c : report.per_class) {
    const auto expected = data.labels.eq(c.label).sum().item<int64_t>();
    EXPECT_EQ(c.samples, expected);
    samples += c.samples;
    ASSERT_EQ(c.robust_accuracy.size(), 3u);
    if (c.samples == 0) {
      EXPECT_TRUE(std::isnan(c.clean_accuracy));
      continue;
    }
    clean += c.clean_accuracy * static_cast<double>(c.samples);
    for (size_t e = 0; e < 3; ++e) {
      EXPECT_LE(c.robust_accuracy[e], c.clean_accuracy);
      robust[e] += c.robust_accuracy[e] * static_cast<double>(c.samples);
    }
  }
  EXPECT_EQ(samples, 60);
  EXPECT_NEAR(clean, 57.0, 1e-9);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(robust[e], 60 * report.worst_case[e].robust_accuracy, 1e-9);
  }
  EXPECT_NE(json.find("\"per_class\""), std::string::npos);
  EXPECT_NE(to_markdown(report).find("| class | samples | clean | eps 0.02 | eps 0.05 | eps 0.1 |"),
            std::string::npos)
      << to_markdown(report);
}

TEST_F(RobustnessTest, ReportsNameTheModelAndTheClasses) {
  LinearModel linear(torch::randn({3, 50}), torch::zeros({3}));
  auto data = labelled_by(linear.model, 0.3 + 0.4 * torch::rand({30, 50}));
  data.class_names = {"cat", "dog", "bird"};
  const std::vector<std::shared_ptr<Attack>> attacks = {std::make_shared<FGSM>(FGSMOptions(0.1))};
  const auto report = evaluate(linear.model, data, attacks, {0.1});
  EXPECT_EQ(report.per_class[1].name, "dog");
  const auto markdown = to_markdown(report);
  EXPECT_NE(markdown.find("| bird | " + std::to_string(report.per_class[2].samples) + " |"),
            std::string::npos)
      << markdown;
  EXPECT_NE(markdown.find("- model: `" + linear.model.name() + "`"), std::string::npos);
  data.class_names.pop_back();  // refused before any attack runs
  EXPECT_BULWARK_ERROR(evaluate(linear.model, data, attacks, {0.1}), "2 class names for 3");
}

// A composite attack that fools nothing and reports one stage in its first batch and two in the
// later ones, as autoattack-fast runs its full Square only in batches where its probe fooled a
// sample.
class StagedAttack : public Attack {
 public:
  std::string name() const override { return "staged"; }
  double eps() const override { return 0.1; }
  Norm norm() const override { return Norm::Linf; }
  bool targeted() const override { return false; }
  const InputBox& box() const override { return box_; }
  std::unique_ptr<Attack> with_budget(double, bool) const override {
    return std::make_unique<StagedAttack>();
  }

 protected:
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override {
    AttackResult r;
    r.adversarial = x.clone();
    r.iterations = torch::zeros({x.size(0)}, torch::kLong);
    r.stages.push_back({"first", x.size(0), 0, x.size(0), 0, 0.0});
    if (batches_++ > 0) r.stages.push_back({"second", x.size(0), 0, 0, 2 * x.size(0), 0.0});
    finish_attack_result(r, model, x, y, false);
    return r;
  }

 private:
  InputBox box_;
  int batches_ = 0;
};

TEST_F(RobustnessTest, StagesAddUpOverBatchesThatRunDifferentComponents) {
  LinearModel linear(torch::randn({10, 50}), torch::zeros({10}));
  const auto data = labelled_by(linear.model, 0.3 + 0.4 * torch::rand({60, 50}));
  const auto report = evaluate(linear.model, data, {std::make_shared<StagedAttack>()}, {0.1},
                               EvaluationOptions().batch_size(16).sanity_samples(0));
  ASSERT_EQ(report.results.size(), 1u);
  const auto& stages = report.results[0].stages;
  // 57 clean-correct samples in batches of 16, 16, 16 and 9: the second stage ran in the last
  // three.
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].attack, "first");
  EXPECT_EQ(stages[0].attacked, 57);
  EXPECT_EQ(stages[0].gradient_evaluations, 57);
  EXPECT_EQ(stages[1].attack, "second");
  EXPECT_EQ(stages[1].attacked, 41);
  EXPECT_EQ(stages[1].forward_evaluations, 82);
}

TEST_F(RobustnessTest, EarlyStopGivesTheSameOrLowerRobustAccuracy) {
  LinearModel linear(torch::randn({10, 50}), torch::zeros({10}));
  const auto data = labelled_by(linear.model, 0.3 + 0.4 * torch::rand({80, 50}));
  std::vector<std::shared_ptr<Attack>> attacks = {
      std::make_shared<PGD>(PGDOptions(0.05).steps(20).seed(1))};
  const auto full = evaluate(linear.model, data, attacks, {0.03, 0.05},
                             EvaluationOptions().early_stop(false).sanity_samples(0));
  const auto early = evaluate(linear.model, data, attacks, {0.03, 0.05},
                              EvaluationOptions().early_stop(true).sanity_samples(0));
  for (size_t i = 0; i < full.results.size(); ++i) {
    EXPECT_LE(early.results[i].robust_accuracy, full.results[i].robust_accuracy);
    EXPECT_LT(early.results[i].gradient_evaluations, full.results[i].gradient_evaluations);
  }
}

TEST_F(RobustnessTest, CarliniWagnerRunsOnceForAllBudgets) {
  LinearModel linear(torch::randn({10, 64}), torch::zeros({10}));
  const auto data = labelled_by(linear.model, torch::rand({24, 64}));
  const CarliniWagnerOptions cw_options = CarliniWagnerOptions().steps(30).binary_search_steps(4);
  std::vector<std::shared_ptr<Attack>> attacks = {std::make_shared<CarliniWagner>(cw_options)};
  const std::vector<double> budgets = {0.05, 0.2, 1.0};
  const auto report = evaluate(linear.model, data, attacks, budgets,
                               EvaluationOptions().sanity_samples(0));
  ASSERT_EQ(report.results.size(), 3u);
  // One unbounded run, thresholded per budget: the same as running each budget on its own.
  const auto correct = linear.model.forward(data.images).argmax(1).eq(data.labels);
  const auto x = data.images.index({correct});
  const auto y = data.labels.index({correct});
  for (size_t i = 0; i < budgets.size(); ++i) {
    const auto separate = CarliniWagner(cw_options).with_budget(budgets[i], false)->run(
        linear.model, x, y);
    EXPECT_NEAR(report.results[i].attack_success_rate,
                separate.success.to(torch::kDouble).mean().item<double>(), 1e-12)
        << budgets[i];
    EXPECT_EQ(report.results[i].gradient_evaluations, report.results[0].gradient_evaluations);
  }
  EXPECT_GE(report.results[0].robust_accuracy, report.results[2].robust_accuracy);
}

TEST_F(RobustnessTest, MaskedGradientsRaiseWarnings) {
  // A model whose input gradient is zero everywhere (quantised input): gradient attacks
  // cannot move, so PGD at an eps as wide as the box leaves it "robust".
  auto w = torch::randn({3, 16});
  auto masked = Model::from_function(
      [w](const at::Tensor& x) {
        const auto quantised = x + (torch::round(x * 4) / 4 - x).detach();
        return (quantised.flatten(1) * 0 + quantised.flatten(1).detach()).matmul(w.t());
      },
      {w}, "masked");
  const auto x = torch::rand({40, 16});
  const auto data = Dataset(x, masked.forward(x).argmax(1), 3, "toy");
  std::vector<std::shared_ptr<Attack>> attacks = {std::make_shared<PGD>(PGDOptions(0.1).steps(5)),
                                                  std::make_shared<CarliniWagner>(
                                                      CarliniWagnerOptions().steps(5).binary_search_steps(2))};
  const auto report = evaluate(masked, data, attacks, {0.1}, EvaluationOptions().sanity_samples(20));
  ASSERT_EQ(report.warnings.size(), 2u);
  EXPECT_NE(report.warnings[0].find("whole input box"), std::string::npos);
  EXPECT_NE(report.warnings[1].find("unbounded C&W"), std::string::npos);
}

TEST_F(RobustnessTest, RejectsBadInputAndWritesAtomically) {
  LinearModel linear(torch::randn({3, 4}), torch::zeros({3}));
  const Dataset data(torch::rand({5, 4}), torch::zeros({5}, torch::kLong), 3);
  std::vector<std::shared_ptr<Attack>> attacks = {std::make_shared<FGSM>(FGSMOptions(0.1))};
  EXPECT_BULWARK_ERROR(evaluate(linear.model, data, {}, {0.1}), "no attack");
  EXPECT_BULWARK_ERROR(evaluate(linear.model, data, attacks, {}), "no eps");
  EXPECT_BULWARK_ERROR(evaluate(linear.model, data, attacks, {-0.1}), "eps", "-0.1");
  const Dataset outside(torch::rand({5, 4}) + 2, torch::zeros({5}, torch::kLong), 3);
  EXPECT_BULWARK_ERROR(evaluate(linear.model, outside, attacks, {0.1}), "input box");
  testing::TempDir dir;
  const auto report = evaluate(linear.model, data, attacks, {0.1});
  write_report(report, dir / "r.json");
  write_report(report, dir / "r.md");
  std::ifstream json(dir / "r.json");
  EXPECT_EQ(json.get(), '{');
  EXPECT_BULWARK_ERROR(write_report(report, dir / "missing" / "r.json"), "does not exist");
}

}  // namespace
}  // namespace bulwark
