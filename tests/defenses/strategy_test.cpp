#include "bulwark/defenses/strategy.h"

#include "bulwark/core/losses.h"
#include "bulwark/defenses/lr_schedule.h"
#include "bulwark/models/mlp.h"
#include "test_util.h"

namespace bulwark {
namespace {

class StrategyTest : public testing::SeededTest {};

// An MLP on 1×4×4 inputs that records every batch it is given.
struct Recorder {
  MLP net = MLP(MLPOptions(16, 3).hidden({8}));
  std::vector<at::Tensor> seen;
  Model model = Model::from_function(
      [this](const at::Tensor& x) {
        seen.push_back(x.detach().clone());
        return net->forward(x.flatten(1));
      },
      net->parameters(), "recorder");
};

TEST_F(StrategyTest, AdversarialStrategiesTrainOnPointsInsideTheBallAndTheBox) {
  const auto x = torch::rand({16, 1, 4, 4});
  const auto y = torch::randint(0, 3, {16}, torch::kLong);
  for (const auto kind : {StrategyKind::PGDAT, StrategyKind::FastAT, StrategyKind::MART,
                          StrategyKind::TRADES}) {
    Recorder r;
    auto strategy = make_strategy(StrategyOptions(kind, 0.1).steps(4));
    auto generator = make_generator(1);
    const auto out = strategy->loss(r.model, x, y, 0.1, generator);
    EXPECT_TRUE(std::isfinite(out.loss.item<double>())) << to_string(kind);
    // The attack never leaves gradients on the parameters.
    for (const auto& p : r.net->parameters()) EXPECT_FALSE(p.grad().defined()) << to_string(kind);
    bool moved = false;
    for (const auto& input : r.seen) {
      EXPECT_LE((input - x).abs().max().item<float>(), 0.1f + 1e-6f) << to_string(kind);
      EXPECT_GE(input.min().item<float>(), 0.0f);
      EXPECT_LE(input.max().item<float>(), 1.0f);
      moved |= (input - x).abs().max().item<float>() > 0.05f;
    }
    EXPECT_TRUE(moved) << to_string(kind);
    // PGD-AT with k steps: k attack passes, then the training pass.
    if (kind == StrategyKind::PGDAT) {
      EXPECT_EQ(r.seen.size(), 5u);
    }
    if (kind == StrategyKind::FastAT) {
      EXPECT_EQ(r.seen.size(), 2u);
    }
    out.loss.backward();
    for (const auto& p : r.net->parameters()) EXPECT_TRUE(p.grad().defined());
  }
}

TEST_F(StrategyTest, TradesStartsNextToTheCleanPointAsZhangEtAlsCode) {
  const auto x = 0.25 + 0.5 * torch::rand({16, 1, 4, 4});  // away from the box's edges
  const auto y = torch::randint(0, 3, {16}, torch::kLong);
  for (const auto kind : {StrategyKind::TRADES, StrategyKind::PGDAT}) {
    Recorder r;
    auto strategy = make_strategy(StrategyOptions(kind, 0.1).steps(1));
    auto generator = make_generator(2);
    strategy->loss(r.model, x, y, 0.1, generator);
    // TRADES: the clean pass for the KL target, then the attack's first pass at its start;
    // PGD-AT's first pass is its start.
    const auto start = r.seen.at(kind == StrategyKind::TRADES ? 1 : 0) - x;
    const double spread = start.std().item<double>();
    if (kind == StrategyKind::TRADES) {
      // x + 0.001 * N(0, 1): a spread of 0.001, where a uniform start in the ball has 0.058.
      EXPECT_NEAR(spread, 0.001, 0.0002);
    } else {
      EXPECT_NEAR(spread, 0.1 / std::sqrt(3.0), 0.01);
    }
  }
}

TEST_F(StrategyTest, LossesReduceToTheirCleanPartsWithoutABudget) {
  const auto x = torch::rand({16, 1, 4, 4});
  const auto y = torch::randint(0, 3, {16}, torch::kLong);
  Recorder r;
  auto generator = make_generator(1);
  const auto clean = cross_entropy(r.net->forward(x.flatten(1)), y).item<double>();
  auto trades = make_strategy(StrategyOptions(StrategyKind::TRADES, 0.0));
  EXPECT_NEAR(trades->loss(r.model, x, y, 0.0, generator).loss.item<double>(), clean, 1e-6);
  auto trades_beta0 = make_strategy(StrategyOptions(StrategyKind::TRADES, 0.2).beta(0));
  EXPECT_NEAR(trades_beta0->loss(r.model, x, y, 0.2, generator).loss.item<double>(), clean, 1e-6);
  // TRADES' KL term is never negative.
  auto trades_on = make_strategy(StrategyOptions(StrategyKind::TRADES, 0.2));
  EXPECT_GE(trades_on->loss(r.model, x, y, 0.2, generator).loss.item<double>(), clean - 1e-6);
  auto pgd = make_strategy(StrategyOptions(StrategyKind::PGDAT, 0.0));
  EXPECT_NEAR(pgd->loss(r.model, x, y, 0.0, generator).loss.item<double>(), clean, 1e-6);
  auto standard = make_strategy(StrategyOptions());
  EXPECT_NEAR(standard->loss(r.model, x, y, 0.0, generator).loss.item<double>(), clean, 1e-6);
  EXPECT_EQ(standard->passes_per_sample(), 1);
  EXPECT_EQ(make_strategy(StrategyOptions(StrategyKind::PGDAT, 0.1).steps(7))->passes_per_sample(), 8);
}

TEST_F(StrategyTest, RejectsBadOptionsAndNames) {
  EXPECT_BULWARK_ERROR(make_strategy(StrategyOptions(StrategyKind::PGDAT, -1)), "eps");
  EXPECT_BULWARK_ERROR(make_strategy(StrategyOptions(StrategyKind::PGDAT, 0.1).steps(0)), "steps");
  EXPECT_BULWARK_ERROR(make_strategy(StrategyOptions(StrategyKind::TRADES, 0.1).beta(-1)), "beta");
  EXPECT_BULWARK_ERROR(parse_strategy("free-at"), "'free-at'");
  EXPECT_EQ(parse_strategy("fast-at"), StrategyKind::FastAT);
  EXPECT_EQ(to_string(StrategyKind::MART), "mart");
}

TEST_F(StrategyTest, Schedules) {
  const auto rate = [](ScheduleOptions o, int64_t step) {
    return scheduled_learning_rate(o, 0.1, step, 100, 10);
  };
  EXPECT_DOUBLE_EQ(rate(ScheduleOptions(), 57), 0.1);
  const ScheduleOptions cosine(ScheduleKind::Cosine);
  EXPECT_DOUBLE_EQ(rate(cosine, 0), 0.1);
  EXPECT_NEAR(rate(cosine, 50), 0.05, 1e-12);
  EXPECT_LT(rate(cosine, 99), 1e-3);
  const ScheduleOptions multistep(ScheduleKind::MultiStep);  // milestones at epochs 5 and 7
  EXPECT_DOUBLE_EQ(rate(multistep, 49), 0.1);
  EXPECT_NEAR(rate(multistep, 50), 0.01, 1e-12);
  EXPECT_NEAR(rate(multistep, 70), 0.001, 1e-12);
  EXPECT_NEAR(rate(ScheduleOptions(ScheduleKind::MultiStep).milestones({2}).gamma(0.5), 25), 0.05,
              1e-12);
  const ScheduleOptions cycle(ScheduleKind::OneCycle);
  EXPECT_NEAR(rate(cycle, 39), 0.1, 1e-12);
  EXPECT_LT(rate(cycle, 0), 0.01);
  EXPECT_NEAR(rate(cycle, 99), 0.0, 1e-12);
  EXPECT_GT(rate(cycle, 20), rate(cycle, 10));
  EXPECT_LT(rate(cycle, 80), rate(cycle, 60));
  EXPECT_BULWARK_ERROR(parse_schedule("step"), "'step'");
  EXPECT_BULWARK_ERROR(ScheduleOptions().peak(1.0).validate(), "peak");
}

}  // namespace
}  // namespace bulwark
