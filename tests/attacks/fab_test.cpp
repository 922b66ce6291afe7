#include "bulwark/attacks/fab.h"

#include "attacks/attack_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::expect_valid;
using testing::LinearModel;
class FABTest : public testing::SeededTest {};

// The reference solutions by bisection on the one free parameter: L∞, the radius λ of
// δ = −sign(w)·min(λ, room); L2, the multiplier α of δ = clip(−α·w) to the box.
at::Tensor bisection_reference(const at::Tensor& t, const at::Tensor& w, double b, Norm norm) {
  const double c0 = (w * t).sum().item<double>() - b;
  const auto v = c0 < 0 ? -w : w;
  const double c = std::abs(c0);
  const auto room = torch::where(v > 0, t, 1 - t);
  const auto step = [&](double s) {
    return norm == Norm::Linf
               ? -v.sign() * torch::min(torch::full_like(room, s), room)
               : torch::max(torch::min(-s * v, 1 - t), -t);
  };
  double lo = 0, hi = 1e6;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    ((v * step(mid)).sum().item<double>() + c > 0 ? lo : hi) = mid;
  }
  return step(hi);
}

TEST_F(FABTest, ProjectionsEqualTheirBisectionReference) {
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    for (int trial = 0; trial < 20; ++trial) {
      const int64_t d = 1 + trial * 7;
      const auto t = torch::rand({1, d}, torch::kDouble);
      auto w = torch::randn({1, d}, torch::kDouble);
      if (trial % 3 == 0) w.index_put_({0, 0}, 0.0);  // a coordinate that must not move
      // Hyperplanes near t (the box rarely binds) and far from it (it binds, or cannot reach).
      const double reach = (trial % 4 == 0 ? 0.05 : trial % 4 == 1 ? 0.5 : 2.0) *
                           w.abs().sum().item<double>();
      const double b = (w * t).sum().item<double>() + (trial % 2 ? reach : -reach);
      const auto delta = project_onto_hyperplane_in_box(t, w, torch::full({1}, b, torch::kDouble),
                                                        norm, InputBox());
      const auto expected = bisection_reference(t[0], w[0], b, norm);
      EXPECT_TRUE(torch::allclose(delta[0], expected, 1e-6, 1e-9))
          << to_string(norm) << " trial " << trial << "\n" << delta << "\n" << expected;
      const auto moved = t + delta;
      EXPECT_GE(moved.min().item<double>(), -1e-12);
      EXPECT_LE(moved.max().item<double>(), 1 + 1e-12);
      if (w.index({0, 0}).item<double>() == 0) EXPECT_EQ(delta.index({0, 0}).item<double>(), 0.0);
    }
  }
}

TEST_F(FABTest, ProjectionsHaveClosedFormsWhenTheBoxDoesNotBind) {
  const auto t = torch::full({3, 10}, 0.5, torch::kDouble);
  const auto w = torch::randn({3, 10}, torch::kDouble);
  const auto c = torch::tensor({0.01, -0.02, 0.0}, torch::kDouble);
  const auto b = (w * t).sum(1) - c;
  const auto linf = project_onto_hyperplane_in_box(t, w, b, Norm::Linf, InputBox());
  EXPECT_TRUE(torch::allclose(linf, -w.sign() * (c / w.abs().sum(1)).unsqueeze(1), 0, 1e-12));
  const auto l2 = project_onto_hyperplane_in_box(t, w, b, Norm::L2, InputBox());
  EXPECT_TRUE(torch::allclose(l2, -w * (c / w.square().sum(1)).unsqueeze(1), 0, 1e-12));
  EXPECT_THROW(project_onto_hyperplane_in_box(t, w.narrow(1, 0, 5), b, Norm::L2, InputBox()),
               Error);
}

// On a linear classifier inside the box the smallest perturbation that changes the class is
// min over j of margin_j / ‖w_y − w_j‖_dual: FAB finds it within 1%.
TEST_F(FABTest, ReachesTheMinimalDistanceOfALinearClassifier) {
  const int64_t classes = 5, n = 16;
  const auto w = torch::randn({classes, 20}, torch::kDouble);
  LinearModel linear(w, torch::zeros({classes}, torch::kDouble));
  const auto x = 0.45 + 0.1 * torch::rand({n, 20}, torch::kDouble);
  const auto logits = torch::matmul(x, w.t());
  const auto y = logits.argmax(1);
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    auto minimal = torch::full({n}, 1e9, torch::kDouble);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < classes; ++j) {
        const int64_t yi = y[i].item<int64_t>();
        if (j == yi) continue;
        const auto diff = w[yi] - w[j];
        const auto dual = norm == Norm::Linf ? diff.abs().sum() : diff.norm();
        minimal[i] = torch::min(minimal[i], (logits[i][yi] - logits[i][j]) / dual);
      }
    }
    // The box must not bind: every minimal perturbation stays within 0.45 of x.
    ASSERT_LT(minimal.max().item<double>(), 0.45);
    for (const bool targeted : {true, false}) {
      FAB fab(FABOptions(1.0).norm(norm).targeted(targeted).target_classes(classes - 1)
                  .early_stop(false));
      const auto r = fab.run(linear.model, x, y);
      ASSERT_TRUE(r.success.all().item<bool>()) << fab.name();
      const auto found = norm == Norm::Linf ? r.linf : r.l2;
      EXPECT_TRUE((found >= minimal * (1 - 1e-6)).all().item<bool>()) << fab.name();
      EXPECT_TRUE((found <= minimal * 1.01).all().item<bool>())
          << fab.name() << " " << to_string(norm) << "\n"
          << torch::stack({found, minimal}, 1);
    }
  }
}

TEST_F(FABTest, SuccessMeansWithinEpsAndEarlyStopKeepsTheVerdict) {
  const int64_t classes = 4;
  const auto w = torch::randn({classes, 12}, torch::kDouble);
  LinearModel linear(w, torch::zeros({classes}, torch::kDouble));
  const auto x = 0.4 + 0.2 * torch::rand({24, 12}, torch::kDouble);
  const auto y = torch::matmul(x, w.t()).argmax(1);
  const auto unbounded = FAB(FABOptions(1.0).early_stop(false)).run(linear.model, x, y);
  const double eps = unbounded.linf.median().item<double>();
  const auto full = FAB(FABOptions(eps).early_stop(false)).run(linear.model, x, y);
  const auto early = FAB(FABOptions(eps).early_stop(true)).run(linear.model, x, y);
  expect_valid(full, x, eps, Norm::Linf);
  expect_valid(early, x, eps, Norm::Linf);
  EXPECT_TRUE(torch::equal(full.success, early.success));
  // Whatever the unbounded run found within ε counts; with a budget, the samples not fooled by
  // the first target also try the others.
  EXPECT_TRUE(full.success.logical_or(unbounded.linf <= eps).equal(full.success));
  EXPECT_TRUE((full.linf.index({full.success}) <= eps).all().item<bool>());
  EXPECT_LT(early.gradient_evaluations, full.gradient_evaluations);
  // The restarts start at random points ε/2 away and never undo a success.
  const auto restarted = FAB(FABOptions(eps).restarts(3).seed(1)).run(linear.model, x, y);
  EXPECT_TRUE(restarted.success.logical_or(early.success).equal(restarted.success));
}

TEST_F(FABTest, RejectsBadOptionsAndNonFiniteOutputs) {
  EXPECT_THROW(FAB(FABOptions(-1)), Error);
  EXPECT_THROW(FAB(FABOptions(0.1).steps(0)), Error);
  EXPECT_THROW(FAB(FABOptions(0.1).alpha_max(2)), Error);
  EXPECT_THROW(FAB(FABOptions(0.1).beta(0)), Error);
  EXPECT_THROW(FAB(FABOptions(0.1).eta(0)), Error);
  EXPECT_THROW(FAB(FABOptions(0.1).target_classes(0)), Error);
  auto broken = Model::from_function(
      [](const at::Tensor& in) { return in.flatten(1).narrow(1, 0, 3) / 0.0; }, {}, "broken");
  EXPECT_BULWARK_ERROR(FAB(FABOptions(0.1)).run(broken, torch::rand({2, 6}), torch::zeros({2}, torch::kLong)),
                       "NaN or infinite");
}

}  // namespace
}  // namespace bulwark
