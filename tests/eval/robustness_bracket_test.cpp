#include "bulwark/eval/robustness_bracket.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#include "bulwark/attacks/fgsm.h"
#include "bulwark/attacks/pgd.h"
#include "test_util.h"

namespace bulwark {
namespace {

class RobustnessBracketTest : public testing::SeededTest {};

// A binary linear classifier on 4 pixels whose boundary is the plane through the centre of the
// box with unit normal u = (1/2, 1/2, 1/2, 1/2): the logit margin of x = 0.5 + s u + r v is s,
// and its L2 distance to the boundary is |s|. For such a classifier the smoothed classifier
// equals the base one and its exact certified radius is |s| too, so all three figures of the
// bracket have one known answer: the fraction of inputs with |s| > eps.
struct Halfspace {
  Model model = Model::from_function(
      [](const at::Tensor& x) {
        const auto z = x.flatten(1).sum(1) * 0.5 - 1.0;
        return torch::stack({-z, z}, 1);
      },
      {}, "halfspace");
  Dataset data;

  Halfspace() {
    // |s| kept 0.1 from the budgets 0.2 and 0.4, so that PREDICT never has to decide a near tie
    // after the attack, and the certificates with 2000 draws (radius 0.27 for |s| = 0.3, 0.46
    // for 0.5) stay on the right side of each budget.
    const std::vector<double> magnitudes = {0.1, 0.3, 0.5, 0.55};
    const auto u = torch::full({4}, 0.5);
    const auto v = torch::tensor({0.5, -0.5, 0.5, -0.5});
    std::vector<at::Tensor> xs;
    std::vector<int64_t> ys;
    for (int i = 0; i < 40; ++i) {
      const double s = magnitudes[i % 4] * (i % 8 < 4 ? 1 : -1);
      const double r = 0.3 * (static_cast<double>(i % 5) / 4.0 - 0.5);  // in [-0.15, 0.15]
      xs.push_back((0.5 + s * u + r * v).reshape({1, 2, 2}));
      ys.push_back(s > 0 ? 1 : 0);
    }
    data = Dataset(torch::stack(xs).to(torch::kFloat), torch::tensor(ys), 2, "halfspace");
  }
};

BracketOptions options() {
  return BracketOptions()
      .smoothing(SmoothingOptions().sigma(0.25).n0(100).n(2000).seed(3))
      .evaluation(EvaluationOptions().sanity_samples(0))
      .smoothed_attack_steps(20)
      .eot_draws(4)
      .predict_draws(500);
}

TEST_F(RobustnessBracketTest, AllThreeFiguresMeetTheKnownAnswerOfAHalfspace) {
  Halfspace h;
  const std::vector<std::shared_ptr<Attack>> attacks = {
      std::make_shared<PGD>(PGDOptions(0.2).norm(Norm::L2).steps(50))};
  const auto bracket = robustness_bracket(h.model, h.data, attacks, {0.4, 0.2}, options());
  // eps 0 is added as the clean point; the budgets come sorted.
  ASSERT_EQ(bracket.points.size(), 3u);
  const double exact[] = {1.0, 0.75, 0.5};
  const double one = 1.0 / 40;
  for (size_t i = 0; i < 3; ++i) {
    const auto& p = bracket.points[i];
    EXPECT_DOUBLE_EQ(p.eps, std::vector<double>({0.0, 0.2, 0.4})[i]);
    EXPECT_NEAR(p.base_under_attack, exact[i], 1e-12) << "eps " << p.eps;
    EXPECT_NEAR(p.smoothed_under_attack, exact[i], one + 1e-12) << "eps " << p.eps;
    EXPECT_NEAR(p.certified, exact[i], one + 1e-12) << "eps " << p.eps;
    // The lower end never above the upper one (beyond one sample of Monte Carlo disagreement).
    EXPECT_LE(p.certified, p.smoothed_under_attack + one + 1e-12);
  }
  EXPECT_TRUE(bracket.warnings.empty()) << bracket.warnings.front();
  EXPECT_EQ(bracket.samples, 40);
  EXPECT_EQ(bracket.certification.certificates.size(), 40u);
}

TEST_F(RobustnessBracketTest, FewerDrawsWidenTheBracketFromBelowOnly) {
  // With n = 100 draws the certificate of |s| = 0.5 shrinks below 0.4 (p_A = Φ(2) = 0.977 has a
  // 99.9% lower bound near 0.93: radius 0.37): the lower end falls from 0.5 to 0 at eps 0.4,
  // the upper end does not move.
  Halfspace h;
  const std::vector<std::shared_ptr<Attack>> attacks = {
      std::make_shared<PGD>(PGDOptions(0.2).norm(Norm::L2).steps(50))};
  const auto bracket = robustness_bracket(
      h.model, h.data, attacks, {0.2, 0.4},
      options().smoothing(SmoothingOptions().sigma(0.25).n0(100).n(100).seed(3)));
  ASSERT_EQ(bracket.points.size(), 3u);
  EXPECT_NEAR(bracket.points[2].certified, 0.0, 1e-12);
  EXPECT_NEAR(bracket.points[2].smoothed_under_attack, 0.5, 1.0 / 40 + 1e-12);
  EXPECT_GT(bracket.points[2].width(), 0.45);
  EXPECT_LE(bracket.points[1].certified, 0.75 + 1.0 / 40);
}

TEST_F(RobustnessBracketTest, ReportsAsJsonMarkdownAndSvg) {
  Halfspace h;
  const std::vector<std::shared_ptr<Attack>> attacks = {
      std::make_shared<PGD>(PGDOptions(0.3).norm(Norm::L2).steps(10))};
  const auto bracket = robustness_bracket(
      h.model, h.data.head(16), attacks, {0.3},
      options().smoothing(SmoothingOptions().sigma(0.25).n0(50).n(200)).predict_draws(0));
  const auto j = nlohmann::json::parse(to_json(bracket));
  ASSERT_EQ(j["bracket"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["bracket"][1]["eps"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(j["bracket"][1]["width"].get<double>(), bracket.points[1].width());
  EXPECT_EQ(j["certification"]["n"].get<int64_t>(), 200);
  EXPECT_EQ(j["attacks"]["results"].size(), 1u);
  const auto md = to_markdown(bracket);
  EXPECT_NE(md.find("| 0.3 |"), std::string::npos) << md;
  auto broken = bracket;
  broken.points[1].certified = std::numeric_limits<double>::quiet_NaN();
  EXPECT_BULWARK_ERROR(to_svg(broken), "accuracies must be in [0, 1]");
  const auto svg = to_svg(bracket);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("<polygon"), std::string::npos);
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 3u);
}

TEST_F(RobustnessBracketTest, BadInputIsRefused) {
  Halfspace h;
  const std::vector<std::shared_ptr<Attack>> l2 = {
      std::make_shared<PGD>(PGDOptions(0.2).norm(Norm::L2).steps(5))};
  const std::vector<std::shared_ptr<Attack>> linf = {std::make_shared<FGSM>(FGSMOptions(0.2))};
  const auto o = options().smoothing(SmoothingOptions().n0(10).n(20));
  EXPECT_BULWARK_ERROR((robustness_bracket(h.model, h.data, {}, {0.2}, o)),
                       "at least one L2 attack");
  EXPECT_BULWARK_ERROR((robustness_bracket(h.model, h.data, linf, {0.2}, o)), "fgsm",
                       "must be L2");
  EXPECT_BULWARK_ERROR((robustness_bracket(h.model, h.data, l2, {}, o)), "at least one budget");
  for (const double eps : {0.0, -0.1, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_BULWARK_ERROR((robustness_bracket(h.model, h.data, l2, {eps}, o)), "finite and > 0");
  }
  EXPECT_BULWARK_ERROR((robustness_bracket(h.model, h.data.head(0), l2, {0.2}, o)),
                       "dataset is empty");
  EXPECT_BULWARK_ERROR(
      (robustness_bracket(h.model, h.data, l2, {0.2}, BracketOptions(o).eot_draws(0))),
      "eot_draws must be >= 1");
  EXPECT_BULWARK_ERROR(
      (robustness_bracket(h.model, h.data, l2, {0.2}, BracketOptions(o).predict_draws(-1))),
      "predict_draws must be >= 0");
  EXPECT_BULWARK_ERROR((robustness_bracket(h.model, h.data, l2, {0.2},
                                           BracketOptions(o).smoothing(SmoothingOptions().sigma(-1)))),
                       "sigma");
}

}  // namespace
}  // namespace bulwark
