// Backdoor defenses on the real Fashion-MNIST: a SmallCNN trained on 5% BadNets poison (the
// reference model "badnets", a white 3×3 square relabelled to class 8) against the clean
// reference model "standard". Each test states what it costs on one thread.
#include <iostream>

#include "bulwark/data/idx.h"
#include "bulwark/defenses/strip.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/poisoning/activation_clustering.h"
#include "bulwark/poisoning/backdoor.h"
#include "bulwark/poisoning/data_inspection.h"
#include "bulwark/poisoning/neural_cleanse.h"
#include "bulwark/defenses/learned_detector.h"
#include "e2e/reference_models.h"
#include "test_util.h"

namespace bulwark {
namespace {

class BackdoorDefensesTest : public testing::SeededTest {};

constexpr int64_t kTarget = 8;
Trigger trigger() { return Trigger::parse("square:3"); }
std::filesystem::path poisoned_data() {
  return std::filesystem::path(testing::reference_models_dir()) / "badnets-data";
}

// ~10 s: two passes over the 10000 test images for each model.
TEST_F(BackdoorDefensesTest, BadNetsIsLearnedAndKeepsCleanAccuracy) {
  auto backdoored = testing::reference_model("badnets");
  auto clean = testing::reference_model("standard");
  const auto test = load_fashion_mnist(Split::Test);
  const auto options = BackdoorOptions().target(kTarget);
  const auto attacked = evaluate_backdoor(backdoored, test, trigger(), options);
  const auto control = evaluate_backdoor(clean, test, trigger(), options);
  std::cout << "backdoored: clean " << attacked.clean_accuracy << ", attack success "
            << attacked.attack_success_rate << "; clean model: clean " << control.clean_accuracy
            << ", attack success " << control.attack_success_rate << "\n";
  // Measured: attack success 96.8% (1.3% on the clean model), clean accuracy 85.8% against
  // 84.9% for the clean model (5 epochs of 20000 images against 1 epoch of 60000).
  EXPECT_GT(attacked.attack_success_rate, 0.95);
  EXPECT_LT(control.attack_success_rate, 0.05);
  EXPECT_GT(attacked.clean_accuracy, control.clean_accuracy - 0.01);
  EXPECT_EQ(attacked.triggered, 9000);
}

// ~24 s: 1000 test images × 50 superimpositions.
TEST_F(BackdoorDefensesTest, StripFlagsTriggeredInputsAtOnePercentFalseRejection) {
  auto model = testing::reference_model("badnets");
  const auto held_out = load_fashion_mnist(Split::Train).slice(30000, 31000).images;
  Strip strip(model, held_out, StripOptions().overlays(50).seed(1));
  const auto test = load_fashion_mnist(Split::Test);
  const auto calibration = test.slice(0, 500);
  const auto others = test.slice(500, 1000);
  strip.calibrate(score_in_batches(strip, calibration.images), 0.01);
  const auto non_target = others.labels.ne(kTarget).nonzero().squeeze(1);
  const auto triggered = trigger().apply(others.images.index_select(0, non_target));
  const auto fooled = predict(model, triggered).eq(kTarget);
  const auto flagged = strip.flag(triggered);
  const double detection =
      flagged.index({fooled}).to(torch::kDouble).mean().item<double>();
  const double false_rejection = strip.flag(others.images).to(torch::kDouble).mean().item<double>();
  std::cout << "STRIP: " << fooled.sum().item<int64_t>() << " triggered inputs fool the model, "
            << detection << " of them flagged; clean flagged " << false_rejection << "\n";
  // Measured: 435 triggered inputs fool the model, 98.2% of them flagged; 1.0% of the other
  // clean images flagged. (Gao et al. report 99% on MNIST. Superimposing by the unclamped sum
  // flagged 75.4%, at 0.4%.)
  EXPECT_GT(detection, 0.93);
  EXPECT_LT(false_rejection, 0.03);
}

// ~35 s per model: 10 classes × 150 Adam steps of 32 images.
NeuralCleanseReport scan(const std::string& name, Model& model) {
  const auto clean = load_fashion_mnist(Split::Test).slice(0, 500);
  const auto report = neural_cleanse(model, clean.images, 10,
                                     NeuralCleanseOptions().checks(30).batches_per_check(5));
  for (const auto& c : report.classes) {
    std::cout << name << " class " << c.label << ": mask L1 " << c.l1_norm << ", anomaly "
              << c.anomaly_index << "\n";
  }
  return report;
}

// Measured: class 8's mask L1 15.0 against 60 to 99 for the others, anomaly index 9.7; on the
// clean model the largest anomaly index is 1.5 (class 2).
// Then unlearning (+ ~10 s: one epoch on 1000 clean training images the model never saw, 20%
// stamped with the reversed trigger; two passes over the test split). Measured: attack success
// 96.8% -> 1.6%, clean accuracy 85.8% -> 85.5%.
TEST_F(BackdoorDefensesTest, NeuralCleanseNamesTheTargetOfTheBackdooredModelAndUnlearnsIt) {
  auto model = testing::reference_model("badnets");
  const auto report = scan("badnets", model);
  ASSERT_EQ(report.flagged, std::vector<int64_t>{kTarget});
  EXPECT_GT(report.classes[kTarget].anomaly_index, 4.0);
  // The reversed mask sits where the trigger is: most of its mass in the bottom-right corner.
  const auto& mask = report.classes[kTarget].mask;
  EXPECT_GT(mask.slice(1, 20).slice(2, 20).sum().item<double>(), 0.5 * mask.sum().item<double>());

  const auto test = load_fashion_mnist(Split::Test);
  const auto options = BackdoorOptions().target(kTarget);
  const auto before = evaluate_backdoor(model, test, trigger(), options);
  unlearn_backdoor(model, load_fashion_mnist(Split::Train).slice(20000, 21000),
                   report.classes[kTarget].trigger());
  const auto after = evaluate_backdoor(model, test, trigger(), options);
  std::cout << "unlearning: attack success " << before.attack_success_rate << " -> "
            << after.attack_success_rate << ", clean " << before.clean_accuracy << " -> "
            << after.clean_accuracy << "\n";
  EXPECT_LT(after.attack_success_rate, 0.05);
  EXPECT_GT(after.clean_accuracy, before.clean_accuracy - 0.02);
}

TEST_F(BackdoorDefensesTest, NeuralCleanseFlagsNoClassOfTheCleanModel) {
  auto model = testing::reference_model("standard");
  const auto report = scan("standard", model);
  EXPECT_FALSE(report.backdoored);
  for (const auto& c : report.classes) EXPECT_LT(c.anomaly_index, 2.0) << "class " << c.label;
}

// ~25 s: activations of the 20000 poisoned training images, then PCA and 2-means per class.
TEST_F(BackdoorDefensesTest, ActivationClusteringFindsThePoisonInTheTargetClass) {
  auto model = testing::reference_model("badnets");
  const auto data = load_mnist_format(poisoned_data(), Split::Train, "badnets");
  std::vector<at::Tensor> parts;
  {
    torch::NoGradGuard no_grad;
    EvalModeGuard guard(model);
    for (int64_t s = 0; s < data.size(); s += 1000) {
      parts.push_back(layer_activations(model, "net.classifier.3",
                                        data.images.slice(0, s, s + 1000)));
    }
  }
  const auto report = activation_clustering(at::cat(parts), data.labels, 10);
  std::ifstream truth_file(poisoned_data() / "poison.json");
  const auto truth = nlohmann::json::parse(truth_file)["changed"].get<std::vector<int64_t>>();
  const auto score = score_detection(report.flagged, torch::tensor(truth, torch::kLong));
  std::cout << "activation clustering: precision " << score.precision << ", recall "
            << score.recall << "\n";
  // Measured: recall 96.3% at precision 31.0%: the poison is found, but four clean classes
  // are split too (see docs/poisoning/README.md).
  EXPECT_TRUE(report.classes[kTarget].poisoned);
  EXPECT_GT(score.recall, 0.9);
}

}  // namespace
}  // namespace bulwark
