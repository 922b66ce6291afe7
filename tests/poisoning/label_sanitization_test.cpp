// Label sanitization: kNN relabelling on clusters whose flips are known, confident learning on
// probabilities of a known noise process, and their refusals.
#include "bulwark/poisoning/label_sanitization.h"

#include "bulwark/poisoning/data_inspection.h"
#include "test_util.h"

namespace bulwark {
namespace {

class LabelSanitizationTest : public testing::SeededTest {};

// Three tight clusters far apart, 40 samples each, labelled by cluster.
std::pair<at::Tensor, at::Tensor> clusters() {
  const auto centres = torch::tensor({{0.0, 0.0}, {10.0, 0.0}, {0.0, 10.0}});
  const auto y = torch::arange(3, torch::kLong).repeat_interleave(40);
  const auto x = centres.index_select(0, y) + 0.5 * torch::randn({120, 2}, torch::kDouble);
  return {x, y};
}

TEST_F(LabelSanitizationTest, KnnRelabelsExactlyTheFlippedSamples) {
  const auto [x, y] = clusters();
  auto noisy = y.clone();
  const auto flipped = torch::tensor({3, 17, 50, 101}, torch::kLong);
  noisy.index_put_({flipped}, torch::tensor({1, 2, 0, 1}, torch::kLong));
  const auto result = knn_label_sanitization(x, noisy, 3);
  EXPECT_EQ(result.method, "knn");
  EXPECT_TRUE(torch::equal(result.flagged, flipped));
  EXPECT_TRUE(torch::equal(result.proposed_labels, y.index_select(0, flipped)));
  EXPECT_TRUE(torch::equal(result.sanitized_labels, y));
  // Blocks of any size give the same answer.
  const auto blocked =
      knn_label_sanitization(x, noisy, 3, KnnSanitizationOptions().block_size(7));
  EXPECT_TRUE(torch::equal(blocked.flagged, flipped));
  // Clean labels: nothing to relabel.
  EXPECT_EQ(knn_label_sanitization(x, y, 3).flagged.numel(), 0);
}

TEST_F(LabelSanitizationTest, KnnAgreementDecidesBorderlineSamples) {
  // Sample 0 sits between two points of class 1 and one of class 2 (k = 3): 2/3 agree.
  const auto x = torch::tensor({{0.0}, {1.0}, {-1.0}, {1.5}, {10.0}, {11.0}, {12.0}});
  const auto y = torch::tensor({0, 1, 1, 2, 0, 0, 0}, torch::kLong);
  const auto loose = knn_label_sanitization(x, y, 3, KnnSanitizationOptions().k(3).agreement(0.6));
  ASSERT_GE(loose.flagged.numel(), 1);
  EXPECT_EQ(loose.flagged[0].item<int64_t>(), 0);
  EXPECT_EQ(loose.proposed_labels[0].item<int64_t>(), 1);
  const auto strict = knn_label_sanitization(x, y, 3, KnnSanitizationOptions().k(3).agreement(0.7));
  EXPECT_FALSE(strict.flagged.eq(0).any().item<bool>());
}

TEST_F(LabelSanitizationTest, ConfidentLearningFindsFlipsOfAKnownNoiseProcess) {
  // 2000 samples of 4 classes; out-of-sample probabilities put 0.7 on the true class and
  // spread the rest; 10% of the given labels are flipped to a random other class.
  const int64_t n = 2000, k = 4;
  const auto truth = torch::randint(0, k, {n}, torch::kLong);
  auto logits = 0.8 * torch::randn({n, k}, torch::kDouble);
  logits.scatter_add_(1, truth.unsqueeze(1), torch::full({n, 1}, 2.5, torch::kDouble));
  const auto p = logits.softmax(1);
  const auto flipped = torch::randperm(n, torch::kLong).slice(0, 0, n / 10);
  auto given = truth.clone();
  given.index_put_({flipped},
                   (truth.index_select(0, flipped) + torch::randint(1, k, {n / 10}, torch::kLong))
                       .remainder(k));
  const auto result = confident_learning(p, given);
  const auto score = score_detection(result.flagged, std::get<0>(flipped.sort()));
  EXPECT_GT(score.precision, 0.85) << score.flagged << " flagged";
  EXPECT_GT(score.recall, 0.75) << score.true_positives << " of " << score.poisoned;
  // Relabelled to the model's guess, which is mostly the truth.
  const double right = result.proposed_labels.eq(truth.index_select(0, result.flagged))
                           .to(torch::kDouble).mean().item<double>();
  EXPECT_GT(right, 0.9);
  // With the true labels given, only samples the model confidently gets wrong are flagged:
  // under 5%, and far fewer than with the flips.
  const auto clean = confident_learning(p, truth);
  EXPECT_LT(clean.flagged.numel(), n / 20);
  EXPECT_LT(2 * clean.flagged.numel(), result.flagged.numel());
}

TEST_F(LabelSanitizationTest, CrossValidationPredictsEachSampleWithAModelThatNeverSawIt) {
  // The "model" memorises its training set: it answers a sample it saw with certainty and any
  // other with the uniform distribution. Out of sample, every row must be uniform.
  const int64_t n = 30;
  const auto images = torch::arange(n, torch::kFloat).view({n, 1, 1, 1});
  const Dataset data(images, torch::arange(n, torch::kLong).remainder(3), 3, "toy");
  std::vector<uint64_t> seeds;
  const ModelTrainer memorise = [&](const Dataset& train, uint64_t seed) {
    seeds.push_back(seed);
    const auto seen = train.images.flatten().to(torch::kLong);
    const auto labels = train.labels;
    EXPECT_LT(train.size(), n);
    return Model::from_function(
        [seen, labels](const at::Tensor& x) {
          auto logits = torch::zeros({x.size(0), 3});
          const auto ids = x.flatten().to(torch::kLong);
          for (int64_t i = 0; i < x.size(0); ++i) {
            const auto hit = seen.eq(ids[i]).nonzero();
            if (hit.numel() > 0) logits[i][labels[hit[0][0]].item<int64_t>()] = 50.0f;
          }
          return logits;
        },
        {}, "memorise");
  };
  const auto p = cross_validated_probabilities(data, 4, memorise, 7);
  EXPECT_EQ(seeds.size(), 4u);
  EXPECT_TRUE(torch::allclose(p, torch::full({n, 3}, 1.0 / 3, torch::kDouble)));
  EXPECT_TRUE(torch::equal(cross_validated_probabilities(data, 4, memorise, 7), p));
  EXPECT_BULWARK_ERROR(cross_validated_probabilities(data, 1, memorise), "folds", "[2, 30]");
}

TEST_F(LabelSanitizationTest, RefusesBadInput) {
  const auto [x, y] = clusters();
  EXPECT_BULWARK_ERROR(knn_label_sanitization(x, y.slice(0, 0, 5), 3), "labels", "N = 120");
  EXPECT_BULWARK_ERROR(knn_label_sanitization(x, y, 2), "labels must lie in [0, 2)");
  EXPECT_BULWARK_ERROR(knn_label_sanitization(x, y, 3, KnnSanitizationOptions().k(120)), "k",
                       "[1, 120)");
  EXPECT_BULWARK_ERROR(knn_label_sanitization(x, y, 3, KnnSanitizationOptions().agreement(0)),
                       "agreement");
  auto bad = x.clone();
  bad[0][0] = std::nan("");
  EXPECT_BULWARK_ERROR(knn_label_sanitization(bad, y, 3), "not finite");
  const auto p = torch::full({4, 2}, 0.5, torch::kDouble);
  EXPECT_BULWARK_ERROR(confident_learning(p, torch::tensor({0, 1, 2, 0}, torch::kLong)),
                       "[0, 2)");
  EXPECT_BULWARK_ERROR(confident_learning(torch::full({4, 2}, 0.7, torch::kDouble),
                                          torch::tensor({0, 1, 1, 0}, torch::kLong)),
                       "distribution");
  EXPECT_BULWARK_ERROR(confident_learning(torch::rand({4}), torch::zeros({4}, torch::kLong)),
                       "[N, K]");
}

}  // namespace
}  // namespace bulwark
