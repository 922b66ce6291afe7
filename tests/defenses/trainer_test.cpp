#include "bulwark/defenses/trainer.h"

#include "bulwark/eval/accuracy.h"
#include "bulwark/models/mlp.h"
#include "test_util.h"

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

TEST_F(TrainerTest, RejectsBadOptions) {
  MLP net(MLPOptions(4, 2));
  Model model(net);
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().epochs(0)), "epochs must be >= 1", "0");
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().learning_rate(-1)), "learning_rate");
  EXPECT_BULWARK_ERROR(Trainer(model, TrainerOptions().batch_size(0)), "batch_size");
  auto no_params = Model::from_function([](const at::Tensor& x) { return x; }, {});
  EXPECT_BULWARK_ERROR(Trainer(no_params, TrainerOptions()), "no trainable parameters");
  EXPECT_BULWARK_ERROR(parse_optimizer("rmsprop"), "'rmsprop'");
  Trainer trainer(model, TrainerOptions().learning_rate(1e6).optimizer(OptimizerKind::SGD));
  EXPECT_BULWARK_ERROR(trainer.fit(blobs(3, 1).slice(0, 0)), "empty");
}

}  // namespace
}  // namespace bulwark
