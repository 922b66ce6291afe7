// End to end on the real Fashion-MNIST (Debian's dataset-fashion-mnist).
#include <iostream>

#include "bulwark/attacks/fgsm.h"
#include "bulwark/attacks/pgd.h"
#include "bulwark/data/idx.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/eval/robustness.h"
#include "bulwark/models/model_zoo.h"
#include "data/data_test_util.h"
#include "e2e/reference_models.h"
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

// The standard reference model (the demo's: one epoch of all 60000 images), loaded once.
class TrainedSmallCnnTest : public testing::SeededTest {
 protected:
  static void SetUpTestSuite() {
    model_ = new Model(testing::reference_model("standard"));
    test_ = new Dataset(load_fashion_mnist(Split::Test).head(2000));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete test_;
  }
  static Model* model_;
  static Dataset* test_;
};
Model* TrainedSmallCnnTest::model_ = nullptr;
Dataset* TrainedSmallCnnTest::test_ = nullptr;

TEST_F(TrainedSmallCnnTest, LearnsAndSurvivesASaveLoad) {
  const auto accuracy = clean_accuracy(*model_, *test_).accuracy;
  // Measured 0.855 on these 2000 images; chance is 0.10.
  std::cout << "clean accuracy " << accuracy << "\n";
  EXPECT_GT(accuracy, 0.8) << accuracy;

  testing::TempDir dir;
  const auto spec = *load_model(testing::reference_model_path("standard")).spec;
  save_model(*model_, spec, dir / "smallcnn.pt");
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
  // Measured on the standard reference model (first 500 test images): clean 0.874, FGSM 0.048,
  // PGD-20 0.002, early-stopped PGD-20 0.002 with 7.6x fewer gradient evaluations.
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
