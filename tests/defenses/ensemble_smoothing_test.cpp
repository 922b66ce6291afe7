// Ensembles as models, and randomized smoothing's PREDICT/CERTIFY on constructed cases.
#include <boost/math/distributions/normal.hpp>

#include "attacks/attack_test_util.h"
#include "bulwark/attacks/pgd.h"
#include "bulwark/defenses/ensemble.h"
#include "bulwark/defenses/randomized_smoothing.h"
#include "bulwark/models/model_zoo.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::LinearModel;
using testing::SeededTest;
class EnsembleTest : public SeededTest {};
class SmoothingTest : public SeededTest {};

LinearModel random_linear(int64_t classes = 3, int64_t features = 12) {
  return LinearModel(torch::randn({classes, features}), torch::randn({classes}));
}

TEST_F(EnsembleTest, AnEnsembleOfOneIsThatModel) {
  auto member = random_linear();
  const auto x = torch::rand({7, 1, 3, 4});
  const auto logits = member.model.forward(x);
  EXPECT_TRUE(torch::equal(make_ensemble({member.model}).forward(x), logits));
  const auto mean_probabilities = make_ensemble({member.model}, EnsembleMode::MeanProbabilities);
  EXPECT_TRUE(torch::allclose(mean_probabilities.forward(x).softmax(1), logits.softmax(1), 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(make_ensemble({member.model}, EnsembleMode::Vote).forward(x).argmax(1),
                           logits.argmax(1)));
}

TEST_F(EnsembleTest, CombinesMembersAndIsAttackableAsOneModel) {
  auto a = random_linear();
  auto b = random_linear();
  auto c = random_linear();
  const auto x = torch::rand({20, 1, 3, 4});
  const auto la = a.model.forward(x), lb = b.model.forward(x), lc = c.model.forward(x);
  auto mean_logits = make_ensemble({a.model, b.model, c.model});
  EXPECT_TRUE(torch::allclose(mean_logits.forward(x), (la + lb + lc) / 3, 1e-5, 1e-6));
  auto mean_probabilities = make_ensemble({a.model, b.model, c.model}, EnsembleMode::MeanProbabilities);
  EXPECT_TRUE(torch::allclose(mean_probabilities.forward(x).exp(),
                              (la.softmax(1) + lb.softmax(1) + lc.softmax(1)) / 3, 1e-5, 1e-6));
  auto vote = make_ensemble({a.model, b.model, c.model}, EnsembleMode::Vote);
  const auto votes = at::one_hot(la.argmax(1), 3) + at::one_hot(lb.argmax(1), 3) + at::one_hot(lc.argmax(1), 3);
  EXPECT_TRUE(torch::allclose(vote.forward(x), votes.to(torch::kFloat) / 3));
  EXPECT_EQ(mean_logits.parameters().size(), 6u);

  // PGD through the ensemble: gradients reach the input, the ball and box hold.
  const auto y = mean_logits.forward(x).argmax(1);
  const auto result = PGD(PGDOptions(0.3).steps(20)).run(mean_logits, x, y);
  EXPECT_LE((result.adversarial - x).abs().max().item<double>(), 0.3 + 1e-6);
  EXPECT_GT(result.success.to(torch::kFloat).mean().item<double>(), 0.5);
  for (const auto& p : mean_logits.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST_F(EnsembleTest, ModePropagatesAndBadInputIsAClearError) {
  ModelSpec spec;
  spec.arch = "mlp";
  spec.image_size = 4;
  auto a = make_model(spec);
  auto b = make_model(spec);
  auto ensemble = make_ensemble({a, b});
  ensemble.train();
  EXPECT_TRUE(a.is_training() && b.is_training());
  ensemble.eval();
  EXPECT_FALSE(a.is_training() || b.is_training());

  auto three = random_linear(3, 16);
  auto four = random_linear(4, 16);
  EXPECT_BULWARK_ERROR(make_ensemble({three.model, four.model}).forward(torch::rand({2, 1, 4, 4})),
                       "member 1", "[2, 4]", "[2, 3]", "same number of classes");
  EXPECT_BULWARK_ERROR(make_ensemble({}), "at least one");
  EXPECT_BULWARK_ERROR(parse_ensemble_mode("median"), "mean-logits");
  EXPECT_EQ(parse_ensemble_mode(to_string(EnsembleMode::Vote)), EnsembleMode::Vote);
}

TEST_F(EnsembleTest, DiversityFigures) {
  auto a = random_linear(3, 16);
  auto b = random_linear(3, 16);
  const auto images = torch::rand({40, 1, 4, 4});
  const auto labels = a.model.forward(images).argmax(1);  // a is always right
  Dataset data(images, labels, 3);
  PGD pgd(PGDOptions(0.5).steps(10));
  const auto d = ensemble_diversity({a.model, b.model}, EnsembleMode::MeanLogits, data, pgd);
  EXPECT_EQ(d.clean_accuracy[0], 1.0);
  EXPECT_EQ(d.agreement[0][0], 1.0);
  EXPECT_EQ(d.agreement[0][1], d.agreement[1][0]);
  EXPECT_NEAR(d.agreement[0][1], d.clean_accuracy[1], 1e-12);  // b agrees with a = with labels
  EXPECT_EQ(d.transfer[0][0], 1.0);
  EXPECT_GE(d.transfer[0][1], 0.0);
  EXPECT_LE(d.ensemble_robust_accuracy, d.ensemble_clean_accuracy);
  EXPECT_BULWARK_ERROR(ensemble_diversity({a.model}, EnsembleMode::MeanLogits, data, pgd), "two");
  // The batched runs behind it: every sample in order, inside the ball; bad sizes are errors.
  const auto adversarial = run_in_batches(pgd, a.model, images, labels, 7);
  ASSERT_EQ(adversarial.sizes(), images.sizes());
  EXPECT_LE((adversarial - images).abs().max().item<double>(), 0.5 + 1e-6);
  EXPECT_BULWARK_ERROR(run_in_batches(pgd, a.model, images, labels, 0), "batch_size", ">= 1");
  EXPECT_BULWARK_ERROR(run_in_batches(pgd, a.model, images, labels.slice(0, 0, 5), 8), "y [N]");
}

// Always predicts `label` (out of `classes`).
Model constant_model(int64_t label, int64_t classes = 4) {
  return Model::from_function(
      [label, classes](const at::Tensor& x) {
        return at::one_hot(at::full({x.size(0)}, label, at::kLong), classes).to(x.scalar_type()) * 5;
      },
      {}, "constant");
}

TEST_F(SmoothingTest, CertifiedRadiusMatchesTheFormulaOnAConstantModel) {
  const double sigma = 0.25, alpha = 0.001;
  const int64_t n = 1000;
  SmoothedClassifier smoothed(constant_model(2), SmoothingOptions().sigma(sigma).n0(10).n(n).alpha(alpha));
  const auto c = smoothed.certify(torch::rand({1, 5, 5}));
  EXPECT_EQ(c.label, 2);
  EXPECT_EQ(c.count, n);
  // All n draws agree: the Clopper-Pearson bound is alpha^(1/n) in closed form.
  const double pa = std::pow(alpha, 1.0 / static_cast<double>(n));
  EXPECT_NEAR(c.pa_lower, pa, 1e-12);
  const boost::math::normal_distribution<double> normal;
  EXPECT_NEAR(c.radius, sigma * boost::math::quantile(normal, pa), 1e-9);
  EXPECT_EQ(smoothed.predict(torch::rand({1, 5, 5})), 2);
}

TEST_F(SmoothingTest, AbstainsWhenTheClassesTie) {
  // Class 0 when the noise on pixel 0 is positive, else class 1: a fair coin.
  auto coin = Model::from_function(
      [](const at::Tensor& x) {
        const auto positive = (x.flatten(1).select(1, 0) > 0.5).to(at::kLong);
        return at::one_hot(1 - positive, 3).to(x.scalar_type());
      },
      {}, "coin");
  SmoothedClassifier smoothed(coin, SmoothingOptions().sigma(0.5).n0(50).n(2000).seed(4));
  const auto x = torch::full({1, 2, 2}, 0.5);
  const auto c = smoothed.certify(x);
  EXPECT_EQ(c.label, -1);
  EXPECT_EQ(c.radius, 0.0);
  EXPECT_LT(c.pa_lower, 0.5);
  EXPECT_EQ(smoothed.predict(x), -1);
  // The same draws: same seed, same counts.
  SmoothedClassifier again(coin, SmoothingOptions().sigma(0.5).n0(50).n(2000).seed(4));
  EXPECT_TRUE(torch::equal(again.sample_counts(x, 100), SmoothedClassifier(coin, SmoothingOptions().sigma(0.5).seed(4)).sample_counts(x, 100)));
}

TEST_F(SmoothingTest, StatisticsMatchKnownValues) {
  // scipy.stats.binomtest(60, 100).pvalue = 0.056887...
  EXPECT_NEAR(binomial_test_half(60, 100), 0.0568879, 1e-6);
  EXPECT_EQ(binomial_test_half(50, 100), 1.0);
  EXPECT_NEAR(binomial_test_half(40, 100), binomial_test_half(60, 100), 1e-15);
  // statsmodels proportion_confint(90, 100, alpha=0.1, method="beta")[0]: P(X >= 90 | p) = 0.05.
  EXPECT_NEAR(clopper_pearson_lower(90, 100, 0.05), 0.8362824, 1e-6);
  EXPECT_EQ(clopper_pearson_lower(0, 100, 0.05), 0.0);
  EXPECT_NEAR(clopper_pearson_lower(100, 100, 0.05), std::pow(0.05, 0.01), 1e-12);
}

TEST_F(SmoothingTest, CertifyDatasetBuildsTheCurve) {
  Dataset data(torch::rand({6, 1, 4, 4}), torch::tensor({1, 1, 1, 0, 0, 2}), 4);
  auto model = constant_model(1);
  const auto report = certify_dataset(model, data, SmoothingOptions().n0(10).n(200), {0.0, 0.25, 1.0});
  ASSERT_EQ(report.curve.size(), 3u);
  EXPECT_DOUBLE_EQ(report.curve[0].second, 0.5);  // three of six are class 1
  EXPECT_DOUBLE_EQ(report.curve[2].second, 0.0);  // radius 1 exceeds σ·Φ⁻¹(0.001^(1/200))
  EXPECT_DOUBLE_EQ(report.clean_accuracy_of_base, 0.5);
  EXPECT_EQ(report.abstain_rate, 0.0);
  EXPECT_NE(to_json(report).find("certified_accuracy"), std::string::npos);
}

TEST_F(SmoothingTest, SoftSmoothedModelAveragesNoisyProbabilities) {
  auto soft = smoothed_soft_model(constant_model(3), 0.5, 16);
  const auto out = soft.forward(torch::rand({5, 1, 4, 4}));
  EXPECT_TRUE(torch::equal(out.argmax(1), torch::full({5}, 3, torch::kLong)));
  // Mean probabilities of a constant model are its softmax: log-probabilities sum to one.
  EXPECT_TRUE(torch::allclose(out.exp().sum(1), torch::ones({5})));
  // A linear model: the gradient reaches the input through the noisy copies.
  auto linear = random_linear(3, 16);
  auto x = torch::rand({2, 1, 4, 4}).requires_grad_(true);
  smoothed_soft_model(linear.model, 0.25, 4).forward(x).select(1, 0).sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0);
  EXPECT_BULWARK_ERROR(smoothed_soft_model(constant_model(0), 0.0, 4), "sigma");
  EXPECT_BULWARK_ERROR(smoothed_soft_model(constant_model(0), 0.25, 0), "draws");
}

TEST_F(SmoothingTest, BadInputIsAClearError) {
  auto model = constant_model(0);
  EXPECT_BULWARK_ERROR(SmoothedClassifier(model, SmoothingOptions().sigma(0)), "sigma", "> 0");
  EXPECT_BULWARK_ERROR(SmoothedClassifier(model, SmoothingOptions().sigma(-1)), "sigma");
  EXPECT_BULWARK_ERROR(SmoothedClassifier(model, SmoothingOptions().n(0)), "n0 and n", ">= 1");
  EXPECT_BULWARK_ERROR(SmoothedClassifier(model, SmoothingOptions().alpha(0)), "alpha", "(0, 1)");
  EXPECT_BULWARK_ERROR(SmoothedClassifier(model, SmoothingOptions().alpha(1.0)), "alpha");
  EXPECT_BULWARK_ERROR(clopper_pearson_lower(5, 4, 0.05), "successes");
  Dataset data(torch::rand({2, 1, 4, 4}), torch::tensor({0, 1}), 4);
  EXPECT_BULWARK_ERROR(certify_dataset(model, data, SmoothingOptions().n(10), {-0.5}), "radii");
  SmoothedClassifier smoothed(model);
  EXPECT_BULWARK_ERROR(smoothed.certify(torch::full({1, 2, 2}, NAN)), "NaN");
}

}  // namespace
}  // namespace bulwark
