#include <torch/torch.h>

#include "bulwark/core/seed.h"
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
