#include "bulwark/defenses/trainer.h"

#include "bulwark/eval/accuracy.h"
#include "bulwark/models/mlp.h"
#include "data/data_test_util.h"
#include "test_util.h"

#include <fstream>
#include <limits>

namespace bulwark {
namespace {

class TrainerTest : public testing::SeededTest {};

// Two Gaussian blobs in 4-D, linearly separable with margin.
Dataset blobs(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed);
  const auto labels = torch::randint(0, 2, {n}, gen, torch::kLong);
  const auto centers = (labels.to(torch::kFloat) * 2 - 1).unsqueeze(1) * torch::ones({1, 4});
  const auto x = centers + 0.5 * torch::randn({n, 4}, gen, torch::TensorOptions());
  return Dataset(x, labels, 2, "blobs");
}

std::vector<at::Tensor> train_once(uint64_t seed, std::vector<EpochMetrics>* history = nullptr) {
  bulwark::manual_seed(7);
  MLP net(MLPOptions(4, 2).hidden({16}));
  Model model(net);
  Trainer trainer(model, TrainerOptions().epochs(3).batch_size(32).learning_rate(0.01).seed(seed));
  auto h = trainer.fit(blobs(512, 1));
  if (history) *history = h;
  std::vector<at::Tensor> weights;
  for (const auto& p : net->parameters()) weights.push_back(p.detach().clone());
  return weights;
}

TEST_F(TrainerTest, LearnsASeparableProblem) {
  bulwark::manual_seed(3);
  MLP net(MLPOptions(4, 2).hidden({16}));
  Model model(net);
  Trainer trainer(model, TrainerOptions().epochs(3).batch_size(32).learning_rate(0.01));
  int batches = 0, epochs = 0;
  trainer.on_batch([&](const BatchProgress& p) {
    EXPECT_EQ(p.batches, 16);
    ++batches;
  });
  trainer.on_epoch([&](const EpochMetrics&) { ++epochs; });
  const auto before = clean_accuracy(model, blobs(1000, 2)).accuracy;
  model.eval();
  const auto history = trainer.fit(blobs(512, 1));
  EXPECT_EQ(batches, 48);
  EXPECT_EQ(epochs, 3);
  EXPECT_LT(history.back().train_loss, history.front().train_loss);
  const auto after = clean_accuracy(model, blobs(1000, 2)).accuracy;
  EXPECT_GT(after, 0.97) << "accuracy before training was " << before;
  EXPECT_FALSE(model.is_training());
}

TEST_F(TrainerTest, SameSeedSameWeights) {
  const auto a = train_once(11);
  const auto b = train_once(11);
  const auto c = train_once(12);
  bool any_difference = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i]));
    any_difference |= !torch::equal(a[i], c[i]);
  }
  EXPECT_TRUE(any_difference) << "a different batch-order seed should change the weights";
}

TEST_F(TrainerTest, EachStrategyTrainsWithItsMeasuredRecipeAndGivenValuesWin) {
  const auto standard = default_recipe(StrategyKind::Standard, false);
  EXPECT_EQ(standard.batch_size, 128);
  EXPECT_EQ(standard.optimizer, OptimizerKind::Adam);
  EXPECT_EQ(standard.learning_rate, 1e-3);
  EXPECT_EQ(standard.schedule.kind(), ScheduleKind::Constant);
  for (const auto kind :
       {StrategyKind::FastAT, StrategyKind::PGDAT, StrategyKind::TRADES, StrategyKind::MART}) {
    const auto adversarial = default_recipe(kind, false);
    EXPECT_EQ(adversarial.batch_size, 100) << to_string(kind);
    EXPECT_EQ(adversarial.optimizer, OptimizerKind::Adam);
    EXPECT_EQ(adversarial.learning_rate, 5e-3);
    EXPECT_EQ(adversarial.schedule.kind(), ScheduleKind::OneCycle);
    EXPECT_NE(adversarial.source.find("Wong"), std::string::npos);
  }
  const auto dp = default_recipe(StrategyKind::FastAT, true);  // DP-SGD's, whatever the strategy
  EXPECT_EQ(dp.batch_size, 1024);
  EXPECT_EQ(dp.optimizer, OptimizerKind::SGD);
  EXPECT_EQ(dp.learning_rate, 1.0);

  // A value given wins; the rest stays the strategy's.
  const auto options =
      TrainerOptions().strategy(StrategyOptions(StrategyKind::FastAT, 0.1)).batch_size(64);
  const auto mixed = options.recipe();
  EXPECT_EQ(mixed.batch_size, 64);
  EXPECT_EQ(mixed.learning_rate, 5e-3);
  EXPECT_EQ(mixed.schedule.kind(), ScheduleKind::OneCycle);
  EXPECT_NE(mixed.source.find("given"), std::string::npos);

  // The trainer follows it: 512 blobs in batches of 64, the rate rising to 5e-3 at 40% of
  // training and falling to 0 (one-cycle), Adam.
  MLP net(MLPOptions(4, 2).hidden({16}));
  Model model(net);
  Trainer trainer(model, TrainerOptions()
                             .epochs(2)
                             .strategy(StrategyOptions(StrategyKind::FastAT, 0.1)
                                           .box(InputBox(-10, 10)))
                             .batch_size(64));
  EXPECT_EQ(trainer.recipe().batch_size, 64);
  std::vector<double> rates;
  trainer.on_batch([&](const BatchProgress& p) {
    EXPECT_EQ(p.batches, 8);
    rates.push_back(p.learning_rate);
  });
  trainer.fit(blobs(512, 1));
  ASSERT_EQ(rates.size(), 16u);
  const auto peak = std::max_element(rates.begin(), rates.end());
  EXPECT_NEAR(*peak, 5e-3, 5e-3 / 6);
  EXPECT_LT(rates.front(), 5e-3 / 2);
  EXPECT_LT(rates.back(), 5e-3 / 4);
  // Steps 5 and 6 (0-based) of 16 straddle 40% of training and share the highest rate.
  EXPECT_EQ(peak - rates.begin(), 5);
  EXPECT_DOUBLE_EQ(rates[6], rates[5]);
}

TEST_F(TrainerTest, RejectsBadOptions) {
  MLP net(MLPOptions(4, 2));
  Model model(net);
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().epochs(0)), "epochs must be >= 1", "0");
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().learning_rate(-1)), "learning_rate");
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().batch_size(0)), "batch_size");
  auto no_params = Model::from_function([](const at::Tensor& x) { return x; }, {});
  EXPECT_BULWARK_ERROR(Trainer(no_params, TrainerOptions()), "no trainable parameters");
  EXPECT_BULWARK_ERROR(parse_optimizer("rmsprop"), "'rmsprop'");
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().strategy(StrategyOptions(StrategyKind::PGDAT, -0.1))),
                       "eps must be finite and >= 0");
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().schedule(ScheduleOptions().gamma(0))),
                       "gamma must lie in (0, 1]");
  Trainer trainer(model, TrainerOptions().learning_rate(1e6).optimizer(OptimizerKind::SGD));
  EXPECT_BULWARK_ERROR(trainer.fit(blobs(3, 1).slice(0, 0)), "empty");
}

// PGD-AT on the blobs with a per-epoch validation, writing `checkpoint`.
TrainerOptions adversarial_options(const std::filesystem::path& checkpoint) {
  return TrainerOptions()
      .epochs(3)
      .batch_size(32)
      .learning_rate(0.01)
      .seed(5)
      .strategy(StrategyOptions(StrategyKind::PGDAT, 0.3)
                    .steps(3)
                    .warmup_epochs(1)
                    .box(InputBox(-10, 10)))  // the blobs are not images
      .schedule(ScheduleOptions(ScheduleKind::Cosine))
      .eval_steps(5)
      .checkpoint(checkpoint.string());
}

std::vector<at::Tensor> weights_of(MLP& net) {
  std::vector<at::Tensor> weights;
  for (const auto& p : net->parameters()) weights.push_back(p.detach().clone());
  return weights;
}

TEST_F(TrainerTest, ResumingAfterAnInterruptionGivesTheSameWeightsBitForBit) {
  testing::TempDir dir;
  const auto train = blobs(256, 1), validation = blobs(100, 2);
  bulwark::manual_seed(7);
  MLP uninterrupted(MLPOptions(4, 2).hidden({16}));
  Trainer a(Model(uninterrupted), adversarial_options(dir / "a.ckpt"));
  a.fit(train, validation);

  bulwark::manual_seed(7);
  MLP first(MLPOptions(4, 2).hidden({16}));
  Trainer b(Model(first), adversarial_options(dir / "b.ckpt"));
  struct Interrupted {};
  b.on_epoch([](const EpochMetrics& m) {
    if (m.epoch == 0) throw Interrupted{};
  });
  EXPECT_THROW(b.fit(train, validation), Interrupted);

  // A new process: a freshly initialized model, a new trainer, the checkpoint.
  bulwark::manual_seed(99);
  MLP resumed(MLPOptions(4, 2).hidden({16}));
  Trainer c(Model(resumed), adversarial_options(dir / "b.ckpt"));
  c.resume(dir / "b.ckpt");
  ASSERT_EQ(c.history().size(), 1u);
  const auto ran = c.fit(train, validation);
  EXPECT_EQ(ran.size(), 2u);
  EXPECT_EQ(c.history().size(), 3u);
  EXPECT_EQ(c.best_epoch(), a.best_epoch());
  const auto wa = weights_of(uninterrupted), wc = weights_of(resumed);
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wc[i])) << i;
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(a.history()[e].robust_accuracy, c.history()[e].robust_accuracy);
    EXPECT_EQ(a.history()[e].train_loss, c.history()[e].train_loss);
  }
}

TEST_F(TrainerTest, WarmUpScheduleAndValidationAreReported) {
  testing::TempDir dir;
  bulwark::manual_seed(7);
  MLP net(MLPOptions(4, 2).hidden({16}));
  Trainer trainer(Model(net), adversarial_options(dir / "c.ckpt"));
  std::vector<BatchProgress> batches;
  trainer.on_batch([&](const BatchProgress& p) { batches.push_back(p); });
  const auto history = trainer.fit(blobs(256, 1), blobs(100, 2));
  ASSERT_EQ(batches.size(), 24u);
  // eps rises linearly over the first epoch (8 batches), then stays.
  EXPECT_DOUBLE_EQ(batches[0].eps, 0.3 / 8);
  EXPECT_DOUBLE_EQ(batches[3].eps, 0.3 * 4 / 8);
  EXPECT_DOUBLE_EQ(batches[7].eps, 0.3);
  EXPECT_DOUBLE_EQ(batches[20].eps, 0.3);
  // Cosine from 0.01 towards 0.
  EXPECT_DOUBLE_EQ(batches[0].learning_rate, 0.01);
  for (size_t i = 1; i < batches.size(); ++i) {
    EXPECT_LT(batches[i].learning_rate, batches[i - 1].learning_rate);
  }
  for (const auto& m : history) {
    EXPECT_GE(m.clean_accuracy, m.robust_accuracy);
    EXPECT_GE(m.robust_accuracy, 0.0);
  }
  EXPECT_GT(history.back().clean_accuracy, 0.9);
  EXPECT_GE(trainer.best_epoch(), 0);
  EXPECT_TRUE(history[static_cast<size_t>(trainer.best_epoch())].best);
}

TEST_F(TrainerTest, CheckpointsOfAnotherArchitectureOrCorruptOnesAreRejected) {
  testing::TempDir dir;
  bulwark::manual_seed(7);
  MLP net(MLPOptions(4, 2).hidden({16}));
  auto options = adversarial_options(dir / "ok.ckpt");
  Trainer(Model(net), options.epochs(1)).fit(blobs(64, 1), blobs(20, 2));

  MLP wider(MLPOptions(4, 2).hidden({32}));
  const auto before = weights_of(wider);
  Trainer other(Model(wider), adversarial_options(dir / "x.ckpt"));
  EXPECT_BULWARK_ERROR(other.resume(dir / "ok.ckpt"), "another architecture", "ok.ckpt");
  const auto after = weights_of(wider);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));

  testing::write_bytes(dir / "junk.ckpt", {1, 2, 3, 4, 5});
  MLP same(MLPOptions(4, 2).hidden({16}));
  Trainer reader(Model(same), adversarial_options(dir / "x.ckpt"));
  EXPECT_BULWARK_ERROR(reader.resume(dir / "junk.ckpt"), "corrupt", "junk.ckpt");
  EXPECT_BULWARK_ERROR(reader.resume(dir / "missing.ckpt"), "does not exist");
}

TEST_F(TrainerTest, AFailedEpochLeavesTheLastCheckpointIntact) {
  testing::TempDir dir;
  const auto path = dir / "run.ckpt";
  bulwark::manual_seed(7);
  MLP net(MLPOptions(4, 2).hidden({16}));
  auto options = adversarial_options(path).epochs(2);
  Trainer(Model(net), TrainerOptions(options).epochs(1)).fit(blobs(64, 1));
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_FALSE(bytes.empty());
  // Resume into a run whose data turn the loss into NaN.
  Trainer failing(Model(net), options);
  failing.resume(path);
  auto poisoned = blobs(64, 1);
  poisoned.images[0][0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_BULWARK_ERROR(failing.fit(poisoned), "loss became", "nan");
  std::ifstream again(path, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), {}), bytes);
}

}  // namespace
}  // namespace bulwark
