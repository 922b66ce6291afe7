#include "bulwark/core/norms.h"

#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class NormsTest : public SeededTest {};

TEST_F(NormsTest, ParseNorm) {
  EXPECT_EQ(parse_norm("Linf"), Norm::Linf);
  EXPECT_EQ(parse_norm("inf"), Norm::Linf);
  EXPECT_EQ(parse_norm("L2"), Norm::L2);
  EXPECT_BULWARK_ERROR(parse_norm("l1"), "'l1'", "linf", "l2");
  EXPECT_EQ(to_string(Norm::L2), "l2");
}

TEST_F(NormsTest, PerSampleNormMatchesDefinition) {
  const auto x = torch::randn({5, 3, 4, 4}, torch::kDouble);
  const auto flat = x.reshape({5, -1});
  EXPECT_TRUE(torch::allclose(per_sample_norm(x, Norm::L2), flat.pow(2).sum(1).sqrt()));
  EXPECT_TRUE(torch::allclose(per_sample_norm(x, Norm::Linf), std::get<0>(flat.abs().max(1))));
}

TEST_F(NormsTest, ProjectionLandsInsideTheBallAndKeepsShortVectors) {
  const auto delta = torch::randn({64, 10}, torch::kDouble);
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    const double eps = 0.5;
    const auto projected = project_to_ball(delta, norm, eps);
    EXPECT_LE(per_sample_norm(projected, norm).max().item<double>(), eps + 1e-12);
    const auto inside = per_sample_norm(delta, norm) <= eps;
    // Vectors already inside the ball are untouched.
    EXPECT_TRUE(torch::equal(projected.index({inside}), delta.index({inside})));
  }
  // L2 projection keeps the direction.
  const auto projected = project_to_ball(delta, Norm::L2, 0.1);
  const auto cosine = (projected * delta).sum(1) / (per_sample_norm(projected, Norm::L2) *
                                                    per_sample_norm(delta, Norm::L2));
  EXPECT_TRUE(torch::allclose(cosine, torch::ones({64}, torch::kDouble)));
}

TEST_F(NormsTest, ProjectionEdgeCases) {
  const auto delta = torch::randn({4, 3});
  EXPECT_TRUE(torch::equal(project_to_ball(delta, Norm::L2, 0.0), torch::zeros_like(delta)));
  EXPECT_TRUE(torch::equal(project_to_ball(delta, Norm::Linf,
                                           std::numeric_limits<double>::infinity()),
                           delta));
  EXPECT_TRUE(torch::equal(project_to_ball(torch::zeros({2, 3}), Norm::L2, 1.0),
                           torch::zeros({2, 3})));
  EXPECT_BULWARK_ERROR(project_to_ball(delta, Norm::L2, -0.1), "eps must be >= 0", "-0.1");
}

TEST_F(NormsTest, SteepestAscentDirection) {
  const auto g = torch::tensor({{3.0, -4.0}, {0.0, 0.0}});
  EXPECT_TRUE(torch::equal(steepest_ascent_direction(g, Norm::Linf),
                           torch::tensor({{1.0, -1.0}, {0.0, 0.0}})));
  EXPECT_TRUE(torch::allclose(steepest_ascent_direction(g, Norm::L2),
                              torch::tensor({{0.6, -0.8}, {0.0, 0.0}})));
}

}  // namespace
}  // namespace bulwark
