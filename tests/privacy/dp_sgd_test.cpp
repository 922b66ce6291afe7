#include "bulwark/privacy/dp_sgd.h"

#include <torch/torch.h>

#include "bulwark/core/seed.h"
#include "bulwark/defenses/trainer.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/models/mlp.h"
#include "bulwark/privacy/accountant.h"
#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class DPSGDTest : public SeededTest {};
namespace nn = torch::nn;

PerSampleLossFn cross_entropy_losses(Model model, at::Tensor x, at::Tensor y) {
  return [model, x, y](int64_t begin, int64_t end) {
    return nn::functional::cross_entropy(
        model(x.slice(0, begin, end)), y.slice(0, begin, end),
        nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  };
}

std::vector<at::Tensor> grads_of(const Model& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p.grad().detach().clone());
  return out;
}

at::Tensor flat(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.reshape(-1));
  return torch::cat(parts);
}

TEST_F(DPSGDTest, NoisyClippedMeanHasTheRightMeanAndVariance) {
  nn::Linear net(40, 25);  // 1025 parameters
  net->to(torch::kDouble);
  const Model model(net);
  const auto x = torch::randn({16, 40}, torch::kDouble) * 3;
  const auto y = torch::randint(0, 25, {16});
  const auto losses = cross_entropy_losses(model, x, y);
  const double c = 0.5, sigma = 1.3, expected_batch = 20.0;

  PerSampleGradients engine(model);
  const auto clipped = engine.clipped_sum(16, losses, c);
  const auto mean = flat(clipped.sum) / expected_batch;

  DPSGD dp(model, DPSGDOptions().noise_multiplier(sigma).max_grad_norm(c));
  auto generator = make_generator(1);
  std::vector<at::Tensor> draws;
  for (int i = 0; i < 40; ++i) {
    const auto result = dp.gradient(16, losses, expected_batch, generator);
    EXPECT_EQ(result.batch_size, 16);
    for (const auto& p : model.parameters()) EXPECT_FALSE(p.grad().requires_grad());
    draws.push_back(flat(grads_of(model)) - mean);
  }
  const auto noise = torch::stack(draws);  // [40, 1025] of N(0, (σC/B)²)
  const double std = sigma * c / expected_batch;
  // 41000 draws: the sample mean is within 4 standard errors of 0, the variance within 3 %.
  EXPECT_LT(std::abs(noise.mean().item<double>()), 4 * std / std::sqrt(41000.0));
  EXPECT_NEAR(noise.std().item<double>() / std, 1.0, 0.03);
  // Every parameter's noise is independent: the mean over draws recovers the clipped mean.
  EXPECT_LT((noise.mean(0)).abs().max().item<double>(), 5 * std / std::sqrt(40.0));
}

TEST_F(DPSGDTest, NoSampleContributesMoreThanC) {
  nn::Linear net(10, 3);
  net->to(torch::kDouble);
  const Model model(net);
  // One sample with a huge gradient: without noise the step is at most C / B long.
  const auto x = torch::full({1, 10}, 1000.0, torch::kDouble);
  const PerSampleLossFn squares = [model, x](int64_t begin, int64_t end) {
    return model(x.slice(0, begin, end)).square().sum(1);
  };
  DPSGD dp(model, DPSGDOptions().noise_multiplier(0).max_grad_norm(0.1));
  auto generator = make_generator(0);
  const auto result = dp.gradient(1, squares, 4.0, generator);
  EXPECT_GT(result.norms[0].item<double>(), 100.0);
  EXPECT_DOUBLE_EQ(result.clipped_fraction, 1.0);
  EXPECT_NEAR(flat(grads_of(model)).norm().item<double>(), 0.1 / 4.0, 1e-9);
}

TEST_F(DPSGDTest, PhysicalBatchesGiveTheSameGradientAndEmptyBatchesOnlyNoise) {
  nn::Sequential net(nn::Linear(6, 8), nn::Tanh(), nn::Linear(8, 3));
  net->to(torch::kDouble);
  const Model model(net);
  const auto x = torch::randn({13, 6}, torch::kDouble);
  const auto y = torch::randint(0, 3, {13});
  const auto losses = cross_entropy_losses(model, x, y);
  auto g1 = make_generator(5), g2 = make_generator(5);
  DPSGD whole(model, DPSGDOptions().noise_multiplier(0.7).max_grad_norm(0.3));
  whole.gradient(13, losses, 13.0, g1);
  const auto a = flat(grads_of(model));
  DPSGD split(model, DPSGDOptions().noise_multiplier(0.7).max_grad_norm(0.3).physical_batch_size(4));
  const auto result = split.gradient(13, losses, 13.0, g2);
  EXPECT_EQ(result.losses.size(0), 13);
  EXPECT_TRUE(torch::allclose(flat(grads_of(model)), a, 1e-10, 1e-12));

  // An empty Poisson batch: the gradient is the noise alone, N(0, (σC/B)²).
  DPSGD empty(model, DPSGDOptions().noise_multiplier(2.0).max_grad_norm(1.0));
  auto g3 = make_generator(9);
  std::vector<at::Tensor> draws;
  for (int i = 0; i < 100; ++i) {
    const auto r = empty.gradient(0, {}, 10.0, g3);
    EXPECT_EQ(r.batch_size, 0);
    draws.push_back(flat(grads_of(model)));
  }
  EXPECT_NEAR(torch::stack(draws).std().item<double>(), 0.2, 0.2 * 0.03);
}

TEST_F(DPSGDTest, SecureNoiseIsStandardNormalAndNotReproducible) {
  const auto z = secure_standard_normal(200001);
  EXPECT_EQ(z.size(0), 200001);
  EXPECT_LT(std::abs(z.mean().item<double>()), 4 / std::sqrt(200001.0));
  EXPECT_NEAR(z.var().item<double>(), 1.0, 0.01);
  EXPECT_NEAR((z.abs() > 1.959964).to(torch::kDouble).mean().item<double>(), 0.05, 0.003);
  EXPECT_FALSE(torch::equal(secure_standard_normal(8), secure_standard_normal(8)));

  nn::Linear net(4, 2);
  const Model model(net);
  DPSGD dp(model, DPSGDOptions().secure_rng(true).noise_multiplier(1.0));
  auto g = make_generator(0);
  dp.gradient(0, {}, 1.0, g);
  const auto first = flat(grads_of(model));
  auto g2 = make_generator(0);
  dp.gradient(0, {}, 1.0, g2);
  EXPECT_FALSE(torch::equal(first, flat(grads_of(model))));  // the seed does not decide
}

TEST_F(DPSGDTest, PoissonSamplerHasTheRightRateAndHandlesEmptyBatches) {
  const PoissonSampler sampler(10000, 0.01, 3);
  EXPECT_EQ(sampler.steps_per_epoch(), 100);
  const auto steps = sampler.epoch(0);
  ASSERT_EQ(steps.size(), 100u);
  int64_t total = 0;
  std::vector<double> sizes;
  for (const auto& s : steps) {
    total += s.size(0);
    sizes.push_back(static_cast<double>(s.size(0)));
    EXPECT_TRUE(s.numel() == 0 || (s.min().item<int64_t>() >= 0 && s.max().item<int64_t>() < 10000));
  }
  // 100 steps × Binomial(10000, 0.01): mean 10000, sd √(10000 · 0.99) ≈ 99.5; 4 sd.
  EXPECT_NEAR(static_cast<double>(total), 10000.0, 4 * 99.5);
  const auto size_tensor = torch::tensor(sizes);
  EXPECT_NEAR(size_tensor.var().item<double>(), 99.0, 99.0 * 0.45);  // Binomial variance
  // Same seed and epoch, same batches; another epoch, other batches.
  const auto again = PoissonSampler(10000, 0.01, 3).epoch(0);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_TRUE(torch::equal(steps[i], again[i]));
  EXPECT_FALSE(torch::equal(steps[0], sampler.epoch(1)[0]));
  // 50 samples at rate 0.01: most batches are empty.
  int empty = 0;
  for (const auto& s : PoissonSampler(50, 0.01, 1).epoch(0)) empty += s.numel() == 0;
  EXPECT_GT(empty, 40);
}

// Two separable blobs (as the trainer tests).
Dataset blobs(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed);
  const auto labels = torch::randint(0, 2, {n}, gen, torch::kLong);
  const auto centers = (labels.to(torch::kFloat) * 2 - 1).unsqueeze(1) * torch::ones({1, 4});
  const auto x = centers + 0.5 * torch::randn({n, 4}, gen, torch::TensorOptions());
  return Dataset(x, labels, 2, "blobs");
}

TrainerOptions private_options() {
  return TrainerOptions()
      .epochs(3)
      .batch_size(64)
      .optimizer(OptimizerKind::SGD)
      .momentum(0)
      .learning_rate(0.5)
      .seed(4)
      .differential_privacy(true)
      .privacy(DPSGDOptions().target_epsilon(2.0).delta(1e-4).max_grad_norm(1.0));
}

TEST_F(DPSGDTest, TrainerCalibratesReportsEpsilonAndLearns) {
  bulwark::manual_seed(2);
  MLP net(MLPOptions(4, 2).hidden({16}));
  Model model(net);
  Trainer trainer(model, private_options());
  const auto history = trainer.fit(blobs(2048, 1), blobs(500, 2));
  ASSERT_EQ(history.size(), 3u);
  // 32 steps per epoch at q = 1/32; σ calibrated so that all 96 spend ε 2 at δ 1e-4.
  const double sigma = trainer.noise_multiplier();
  EXPECT_NEAR(sigma, calibrate_noise_multiplier(2.0, 1e-4, 64.0 / 2048, 96), 1e-12);
  double last = 0;
  for (const auto& m : history) {
    EXPECT_GT(m.epsilon, last);
    EXPECT_GE(m.clipped_fraction, 0.0);
    last = m.epsilon;
  }
  EXPECT_LE(history.back().epsilon, 2.0);
  EXPECT_GT(history.back().epsilon, 1.95);
  EXPECT_DOUBLE_EQ(trainer.privacy_spent().epsilon, history.back().epsilon);
  EXPECT_GT(history.back().clean_accuracy, 0.95);
  EXPECT_FALSE(trainer.stopped_at_budget());
}

TEST_F(DPSGDTest, TrainerStopsAtTheBudgetAndResumesTheAccountant) {
  testing::TempDir dir;
  bulwark::manual_seed(2);
  MLP net(MLPOptions(4, 2).hidden({16}));
  auto options = private_options();
  options.epochs(5).privacy().target_epsilon(0).noise_multiplier(1.2).epsilon_budget(1.5);
  options.checkpoint((dir / "dp.ckpt").string());
  Trainer trainer(Model(net), options);
  const auto history = trainer.fit(blobs(2048, 1));
  EXPECT_TRUE(trainer.stopped_at_budget());
  // The budget allows `steps` steps: the 111th would cross it (Opacus agrees: 110). The fourth
  // epoch (32 steps each) stops inside.
  int64_t steps = 0;
  {
    RDPAccountant a;
    while (true) {
      a.step(1.2, 64.0 / 2048, 1);
      if (a.spent(1e-4).epsilon > 1.5) break;
      ++steps;
    }
  }
  EXPECT_EQ(steps, 110);
  ASSERT_EQ(history.size(), 4u);
  RDPAccountant expected;
  expected.step(1.2, 64.0 / 2048, steps);
  EXPECT_DOUBLE_EQ(trainer.privacy_spent().epsilon, expected.spent(1e-4).epsilon);
  EXPECT_DOUBLE_EQ(history.back().epsilon, expected.spent(1e-4).epsilon);
  Trainer resumed(Model(MLP(MLPOptions(4, 2).hidden({16}))), options);
  resumed.resume(dir / "dp.ckpt");
  EXPECT_DOUBLE_EQ(resumed.privacy_spent().epsilon, trainer.privacy_spent().epsilon);
  EXPECT_TRUE(resumed.stopped_at_budget());
  EXPECT_TRUE(resumed.fit(blobs(2048, 1)).empty());
  // The PRV accountant is tighter: the same budget allows more steps, and the trainer takes
  // exactly as many as it allows.
  auto prv_options = options;
  prv_options.checkpoint("").privacy().accountant("prv");
  Trainer prv(Model(MLP(MLPOptions(4, 2).hidden({16}))), prv_options);
  prv.fit(blobs(2048, 1));
  EXPECT_TRUE(prv.stopped_at_budget());
  const auto prv_epsilon = [](int64_t k) {
    PRVAccountant a;
    a.step(1.2, 64.0 / 2048, k);
    return a.spent(1e-4).epsilon;
  };
  int64_t prv_steps = steps;
  while (prv_epsilon(prv_steps + 1) <= 1.5) ++prv_steps;
  EXPECT_GT(prv_steps, steps);
  EXPECT_NEAR(prv.privacy_spent().epsilon, prv_epsilon(prv_steps), 1e-9);
  // A checkpoint of non-private training cannot resume private training.
  auto plain = private_options().differential_privacy(false).checkpoint((dir / "plain.ckpt").string());
  plain.epochs(1);
  Trainer(Model(MLP(MLPOptions(4, 2).hidden({16}))), plain).fit(blobs(256, 1));
  Trainer dp_again(Model(MLP(MLPOptions(4, 2).hidden({16}))), private_options());
  EXPECT_BULWARK_ERROR(dp_again.resume(dir / "plain.ckpt"), "differentially private");
}

TEST_F(DPSGDTest, PrivateAndRobustTraining) {
  bulwark::manual_seed(2);
  MLP net(MLPOptions(4, 2).hidden({16}));
  Model model(net);
  auto options = private_options()
                     .epochs(2)
                     .strategy(StrategyOptions(StrategyKind::TRADES, 0.3).steps(3).box(InputBox(-10, 10)))
                     .eval_steps(5);
  Trainer trainer(model, options);
  const auto history = trainer.fit(blobs(2048, 1), blobs(300, 2));
  EXPECT_GT(history.back().robust_accuracy, 0.85);
  EXPECT_LE(history.back().epsilon, 2.0);
}

TEST_F(DPSGDTest, BadInputIsRejected) {
  nn::Linear net(4, 2);
  const Model model(net);
  EXPECT_BULWARK_ERROR(DPSGD(model, DPSGDOptions().noise_multiplier(-1)), "noise multiplier");
  EXPECT_BULWARK_ERROR(DPSGD(model, DPSGDOptions().max_grad_norm(0)), "max_grad_norm");
  EXPECT_BULWARK_ERROR(DPSGD(model, DPSGDOptions().delta(1.0)), "delta", "(0, 1)");
  EXPECT_BULWARK_ERROR(DPSGD(model, DPSGDOptions().accountant("moments")), "accountant");
  EXPECT_BULWARK_ERROR(DPSGD(model, DPSGDOptions().physical_batch_size(-2)), "physical");
  nn::Sequential bn(nn::Linear(4, 4), nn::BatchNorm1d(4), nn::Linear(4, 2));
  EXPECT_BULWARK_ERROR(DPSGD(Model(bn), DPSGDOptions()), "batch normalization", "GroupNorm");
  EXPECT_BULWARK_ERROR(Trainer(Model(bn), private_options()), "batch normalization");
  DPSGD dp(model, DPSGDOptions());
  auto g = make_generator(0);
  EXPECT_BULWARK_ERROR(dp.gradient(-1, {}, 1.0, g), "batch size");
  EXPECT_BULWARK_ERROR(dp.gradient(0, {}, 0.0, g), "expected batch size");
  EXPECT_BULWARK_ERROR(PoissonSampler(10, 0.0), "sampling rate", "(0, 1]");
  EXPECT_BULWARK_ERROR(PoissonSampler(10, 1.5), "sampling rate");
  EXPECT_BULWARK_ERROR(PoissonSampler(0, 0.5), "dataset");
}

}  // namespace
}  // namespace bulwark
