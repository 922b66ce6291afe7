// End to end on the real Fashion-MNIST (Debian's dataset-fashion-mnist).
#include <iostream>

#include "bulwark/attacks/fgsm.h"
#include "bulwark/attacks/pgd.h"
#include "bulwark/data/idx.h"
#include "bulwark/defenses/trainer.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/eval/robustness.h"
#include "bulwark/models/model_zoo.h"
#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

class FashionMnistTest : public testing::SeededTest {};

TEST_F(FashionMnistTest, RealDataLoads) {
  const auto train = load_fashion_mnist(Split::Train);
  const auto test = load_fashion_mnist(Split::Test);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  // Balanced classes: 6000 and 1000 per class.
  EXPECT_TRUE(torch::equal(torch::bincount(train.labels), torch::full({10}, 6000, torch::kLong)));
  EXPECT_TRUE(torch::equal(torch::bincount(test.labels), torch::full({10}, 1000, torch::kLong)));
  EXPECT_GE(train.images.min().item<float>(), 0.0f);
  EXPECT_LE(train.images.max().item<float>(), 1.0f);
}

// SmallCNN trained once for the whole suite: 2 epochs on the first 12000 training images.
class TrainedSmallCnnTest : public testing::SeededTest {
 protected:
  static void SetUpTestSuite() {
    bulwark::manual_seed(0);
    spec_ = new ModelSpec();  // SmallCNN for 1×28×28, 10 classes
    model_ = new Model(make_model(*spec_));
    test_ = new Dataset(load_fashion_mnist(Split::Test).head(2000));
    Trainer trainer(*model_, TrainerOptions().epochs(2).batch_size(64).seed(0));
    trainer.fit(load_fashion_mnist(Split::Train).head(12000));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete test_;
    delete spec_;
  }
  static ModelSpec* spec_;
  static Model* model_;
  static Dataset* test_;
};
ModelSpec* TrainedSmallCnnTest::spec_ = nullptr;
Model* TrainedSmallCnnTest::model_ = nullptr;
Dataset* TrainedSmallCnnTest::test_ = nullptr;

TEST_F(TrainedSmallCnnTest, LearnsFromASubsetAndSurvivesASaveLoad) {
  const auto accuracy = clean_accuracy(*model_, *test_).accuracy;
  // Measured 0.78 with these settings (PyTorch, same net and optimizer: 0.735 after one
  // epoch of 12000); chance is 0.10.
  std::cout << "clean accuracy " << accuracy << "\n";
  EXPECT_GT(accuracy, 0.75) << accuracy;

  testing::TempDir dir;
  save_model(*model_, *spec_, dir / "smallcnn.pt");
  auto loaded = load_model(dir / "smallcnn.pt");
  EXPECT_DOUBLE_EQ(clean_accuracy(loaded.model, *test_).accuracy, accuracy);
}

TEST_F(TrainedSmallCnnTest, FgsmAndPgdDriveRobustAccuracyFarBelowClean) {
  const auto data = test_->head(500);
  std::vector<std::shared_ptr<Attack>> attacks = {
      std::make_shared<FGSM>(FGSMOptions(0.1)),
      std::make_shared<PGD>(PGDOptions(0.1).steps(20).seed(0))};
  const auto full = evaluate(*model_, data, attacks, {0.1},
                             EvaluationOptions().early_stop(false).sanity_samples(50));
  const auto early = evaluate(*model_, data, attacks, {0.1},
                              EvaluationOptions().early_stop(true).sanity_samples(0));
  const auto& fgsm = full.results[0];
  const auto& pgd = full.results[1];
  std::cout << "clean " << full.clean_accuracy << ", fgsm " << fgsm.robust_accuracy << ", pgd-20 "
            << pgd.robust_accuracy << ", pgd-20 early stop " << early.results[1].robust_accuracy
            << " with " << early.results[1].gradient_evaluations << " vs "
            << pgd.gradient_evaluations << " gradient evaluations\n";
  // Measured on this model (first 500 test images): clean 0.792, FGSM 0.094, PGD-20 0.014,
  // early-stopped PGD-20 0.014 with 5x fewer gradient evaluations.
  EXPECT_GT(full.clean_accuracy, 0.7);
  EXPECT_LT(fgsm.robust_accuracy, 0.3);
  EXPECT_LT(pgd.robust_accuracy, 0.1);
  EXPECT_LE(pgd.robust_accuracy, fgsm.robust_accuracy);
  EXPECT_TRUE(full.warnings.empty()) << full.warnings.front();
  EXPECT_LE(early.results[1].robust_accuracy, pgd.robust_accuracy);
  EXPECT_LT(3 * early.results[1].gradient_evaluations, pgd.gradient_evaluations);
}

}  // namespace
}  // namespace bulwark
