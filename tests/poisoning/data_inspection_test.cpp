#include <torch/torch.h>

#include <cmath>

#include "bulwark/core/seed.h"
#include "bulwark/defenses/learned_detector.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/poisoning/activation_clustering.h"
#include "bulwark/poisoning/spectral_signatures.h"
#include "test_util.h"

namespace bulwark {
namespace {

class DataInspectionTest : public testing::SeededTest {};

// Five classes of 200 isotropic Gaussian representations in 20 dimensions; in class 2 the
// first 20 samples (10%) are shifted by `shift` along one fixed direction: a planted outlier
// direction, and a second cluster when the shift is large.
struct Planted {
  at::Tensor x, y, poisoned;
  explicit Planted(double shift) {
    auto generator = make_generator(11);
    x = torch::randn({1000, 20}, generator, torch::kFloat);
    y = torch::arange(1000, torch::kLong).floor_divide(200);
    const auto u = torch::randn({20}, generator, torch::kFloat);
    poisoned = torch::arange(400, 420, torch::kLong);
    x.index_put_({poisoned}, x.index({poisoned}) + shift * u / u.norm());
  }
};

TEST_F(DataInspectionTest, SpectralSignaturesFindThePlantedDirectionAndLeaveCleanClassesAlone) {
  // Shifted by 6 standard deviations: every poisoned sample outscores the clean ones (at 4,
  // one of the 20 falls outside the top 30).
  const Planted p(6.0);
  const auto report =
      spectral_signatures(p.x, p.y, 5, SpectralSignatureOptions().expected_poison_rate(0.1));
  ASSERT_EQ(report.classes.size(), 5u);
  for (const auto& c : report.classes) {
    EXPECT_EQ(c.poisoned, c.label == 2) << "class " << c.label << " index " << c.statistic;
  }
  EXPECT_GT(report.classes[2].statistic, 2.0);
  // 1.5 × 10% of 200 = 30 removed, all 20 poisoned among them.
  EXPECT_EQ(report.flagged.numel(), 30);
  const auto score = score_detection(report.flagged, p.poisoned);
  EXPECT_EQ(score.true_positives, 20);
  EXPECT_DOUBLE_EQ(score.recall, 1.0);
  EXPECT_DOUBLE_EQ(score.precision, 20.0 / 30.0);
  // The paper's procedure removes 30 from every class.
  const auto every = spectral_signatures(p.x, p.y, 5, SpectralSignatureOptions().every_class(true));
  EXPECT_EQ(every.flagged.numel(), 150);
  // Without poison no class stands out.
  const Planted clean(0.0);
  const auto none = spectral_signatures(clean.x, clean.y, 5);
  EXPECT_EQ(none.flagged.numel(), 0);
}

TEST_F(DataInspectionTest, ActivationClusteringSplitsTwoClustersAndCallsOneClusterClean) {
  const Planted p(10.0);
  const auto report = activation_clustering(p.x, p.y, 5, ActivationClusteringOptions().seed(3));
  ASSERT_EQ(report.classes.size(), 5u);
  for (const auto& c : report.classes) {
    EXPECT_EQ(c.poisoned, c.label == 2) << "class " << c.label << " silhouette " << c.statistic;
  }
  EXPECT_TRUE(torch::equal(report.flagged, p.poisoned));
  // Same seed, same verdicts.
  const auto again = activation_clustering(p.x, p.y, 5, ActivationClusteringOptions().seed(3));
  EXPECT_TRUE(torch::equal(again.flagged, report.flagged));
}

// A nearest-class-mean classifier fitted on whatever it is trained on (images [N, 1, 1, 2]).
Model nearest_mean(const Dataset& train, uint64_t) {
  const auto x = train.images.flatten(1);
  auto means = torch::zeros({train.num_classes, 2});
  for (int64_t c = 0; c < train.num_classes; ++c) {
    const auto mine = train.labels.eq(c);
    if (mine.any().item<bool>()) means[c] = x.index({mine}).mean(0);
  }
  return Model::from_function(
      [means](const at::Tensor& input) { return -torch::cdist(input.flatten(1), means); }, {},
      "nearest-mean");
}

TEST_F(DataInspectionTest, ExclusionaryReclassificationConfirmsPoisonAndClearsSubpopulations) {
  // Class 0 at (0, 0) with a legitimate subpopulation at (0, 4); class 1 at (10, 0); twenty
  // class-1 points relabelled 0 (poison); class 2 at (0, -10).
  auto point = [](double a, double b, int64_t n) {
    return torch::tensor({a, b}).to(torch::kFloat).expand({n, 2}) + 0.3 * torch::randn({n, 2});
  };
  const auto x = torch::cat({point(0, 0, 60), point(0, 4, 20), point(10, 0, 60),
                             point(10, 0, 20), point(0, -10, 60)});
  auto y = torch::cat({torch::zeros({80}, torch::kLong), torch::ones({60}, torch::kLong),
                       torch::zeros({20}, torch::kLong), torch::full({60}, 2, torch::kLong)});
  const Dataset data(x.view({-1, 1, 1, 2}), y, 3, "toy");
  // The suspects of an inspection: the subpopulation (60..79) and the poison (140..159), both
  // of class 0.
  InspectionReport suspects;
  suspects.method = "activation-clustering";
  suspects.flagged = torch::cat({torch::arange(60, 80), torch::arange(140, 160)});
  suspects.classes = {{0, 100, true, 0.5, 40}, {1, 60, false, 0.1, 0}, {2, 60, false, 0.1, 0}};
  const auto confirmed = exclusionary_reclassification(suspects, data, nearest_mean);
  EXPECT_EQ(confirmed.method, "activation-clustering+exclusionary-reclassification");
  // Class 0's suspects: 20 are classified 0 (the subpopulation) and 20 as 1 (the poison): l / p
  // = 1, at the threshold, so the class is confirmed and all 40 stay flagged...
  EXPECT_TRUE(confirmed.classes[0].poisoned);
  EXPECT_DOUBLE_EQ(confirmed.classes[0].statistic, 1.0);
  // ...while with the subpopulation alone the class is cleared.
  suspects.flagged = torch::arange(60, 80);
  suspects.classes[0].flagged = 20;
  const auto cleared = exclusionary_reclassification(suspects, data, nearest_mean);
  EXPECT_FALSE(cleared.classes[0].poisoned);
  EXPECT_EQ(cleared.flagged.numel(), 0);
  EXPECT_TRUE(std::isinf(cleared.classes[0].statistic));
  // And with the poison alone it is confirmed: every suspect goes to class 1.
  suspects.flagged = torch::arange(140, 160);
  const auto poison = exclusionary_reclassification(suspects, data, nearest_mean);
  EXPECT_TRUE(poison.classes[0].poisoned);
  EXPECT_DOUBLE_EQ(poison.classes[0].statistic, 0.0);
  EXPECT_TRUE(torch::equal(poison.flagged, torch::arange(140, 160)));
  EXPECT_TRUE(std::isnan(poison.classes[1].statistic));
  suspects.flagged = torch::tensor({500}, torch::kLong);
  EXPECT_BULWARK_ERROR(exclusionary_reclassification(suspects, data, nearest_mean), "[0, 220)");
}

TEST_F(DataInspectionTest, DetectionScoreKnownAnswers) {
  const auto s = score_detection(torch::tensor({1, 2, 3, 4}, torch::kLong),
                                 torch::tensor({3, 4, 5}, torch::kLong));
  EXPECT_EQ(s.true_positives, 2);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.recall, 2.0 / 3.0);
  const auto empty = score_detection(torch::empty({0}, torch::kLong), torch::tensor({1}));
  EXPECT_DOUBLE_EQ(empty.precision, 1.0);
  EXPECT_DOUBLE_EQ(empty.recall, 0.0);
}

TEST_F(DataInspectionTest, RemoveSamplesKeepsTheOthersInTheirOrder) {
  const Dataset data(torch::arange(6, torch::kFloat).view({6, 1, 1, 1}),
                     torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong), 3, "six");
  const auto left = remove_samples(data, torch::tensor({4, 1, 4}, torch::kLong));
  EXPECT_TRUE(torch::equal(left.images.flatten(), torch::tensor({0.f, 2.f, 3.f, 5.f})));
  EXPECT_TRUE(torch::equal(left.labels, torch::tensor({0, 2, 0, 2}, torch::kLong)));
  EXPECT_EQ(left.num_classes, 3);
  EXPECT_EQ(remove_samples(data, torch::empty({0}, torch::kLong)).size(), 6);
  EXPECT_BULWARK_ERROR(remove_samples(data, torch::tensor({6}, torch::kLong)), "[0, 6)");
  EXPECT_BULWARK_ERROR(remove_samples(data, torch::arange(6, torch::kLong)),
                       "every one of the 6 samples");
}

TEST_F(DataInspectionTest, CollectActivationsEqualsOnePassInEvalMode) {
  ModelSpec spec;
  spec.arch = "mlp";
  spec.image_size = 8;
  spec.hidden = {16};
  auto model = make_model(spec);
  model.train();
  const auto images = torch::rand({7, 1, 8, 8}, torch::kFloat);
  std::vector<int64_t> progress;
  const auto batched = collect_activations(model, "net.layers.2", images, 3,
                                           [&](int64_t done) { progress.push_back(done); });
  EXPECT_EQ(progress, (std::vector<int64_t>{3, 6, 7}));
  EXPECT_TRUE(model.is_training());  // restored
  model.eval();
  const auto whole = layer_activations(model, "net.layers.2", images).flatten(1);
  EXPECT_EQ(batched.sizes(), whole.sizes());
  EXPECT_TRUE(torch::allclose(batched, whole, 1e-6, 1e-6));
  EXPECT_FALSE(batched.requires_grad());
  EXPECT_BULWARK_ERROR(collect_activations(model, "net.layers.2", images, 0), "batch_size must be >= 1");
  EXPECT_BULWARK_ERROR(collect_activations(model, "net.nowhere", images), "nowhere");
}

TEST_F(DataInspectionTest, BadInputIsRefused) {
  const Planted p(4.0);
  EXPECT_BULWARK_ERROR(spectral_signatures(p.x, p.y.slice(0, 0, 10), 5), "agree in length");
  EXPECT_BULWARK_ERROR(spectral_signatures(p.x, p.y, 4), "labels must be in [0, 4)");
  EXPECT_BULWARK_ERROR(
      spectral_signatures(p.x, p.y, 5, SpectralSignatureOptions().expected_poison_rate(1.0)),
      "expected_poison_rate must be in (0, 1)");
  auto one = p.y.clone();
  one[0] = 5;
  EXPECT_BULWARK_ERROR(activation_clustering(p.x, one, 6), "class 5 has 1 sample");
  auto nan = p.x.clone();
  nan[3][3] = NAN;
  EXPECT_BULWARK_ERROR(activation_clustering(nan, p.y, 5), "not finite");
  EXPECT_BULWARK_ERROR(
      activation_clustering(p.x, p.y, 5, ActivationClusteringOptions().size_threshold(0.7)),
      "size_threshold must be in (0, 0.5]");
  EXPECT_BULWARK_ERROR(
      activation_clustering(p.x, p.y, 5, ActivationClusteringOptions().components(0)),
      "components must be >= 1");
  EXPECT_BULWARK_ERROR(score_detection(torch::tensor({-1}), torch::tensor({1})), ">= 0");
}

}  // namespace
}  // namespace bulwark
