// Feature squeezing, the consistency check, the learned detector, calibration and the adaptive
// attack, on small models whose behaviour is known.
#include <filesystem>

#include "attacks/attack_test_util.h"
#include "bulwark/attacks/pgd.h"
#include "bulwark/defenses/adaptive_attack.h"
#include "bulwark/defenses/consistency.h"
#include "bulwark/defenses/feature_squeezing.h"
#include "bulwark/defenses/learned_detector.h"
#include "bulwark/eval/detection.h"
#include "bulwark/models/model_zoo.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::LinearModel;
using testing::SeededTest;
class DetectorsTest : public SeededTest {};

// Two classes on 1×4×4 images: class 1 when the mean pixel exceeds 0.5 (scaled sharply).
LinearModel mean_threshold_model(double scale = 40.0) {
  auto w = torch::zeros({2, 16}, torch::kFloat);
  w[1].fill_(scale / 16.0);
  auto b = torch::tensor({0.0f, static_cast<float>(-scale * 0.5)});
  return LinearModel(w, b);
}

TEST_F(DetectorsTest, BitDepthReductionIsIdempotentAndOnTheGrid) {
  const auto x = torch::rand({8, 1, 6, 6}, torch::kDouble);
  for (const int64_t bits : {1, 3, 5, 8}) {
    const auto once = reduce_bit_depth(x, bits);
    EXPECT_TRUE(torch::equal(reduce_bit_depth(once, bits), once)) << bits << " bits";
    const double levels = std::ldexp(1.0, static_cast<int>(bits)) - 1;
    EXPECT_LE((once * levels - (once * levels).round()).abs().max().item<double>(), 1e-9);
    EXPECT_LE((once - x).abs().max().item<double>(), 0.5 / levels + 1e-12);
  }
  EXPECT_TRUE(torch::equal(std::get<0>(at::_unique(reduce_bit_depth(x, 1))),
                           torch::tensor({0.0, 1.0}, torch::kDouble)));
  // Another box: levels span [-1, 1].
  const auto y = reduce_bit_depth(torch::tensor({-1.0, -0.1, 0.2, 1.0}), 1, InputBox(-1, 1));
  EXPECT_TRUE(torch::allclose(y, torch::tensor({-1.0f, -1.0f, 1.0f, 1.0f})));
  EXPECT_BULWARK_ERROR(reduce_bit_depth(x, 0), "bits", "[1, 24]");
}

TEST_F(DetectorsTest, SqueezerSpecsParse) {
  EXPECT_EQ(Squeezer::parse("bits:4").to_string(), "bits:4");
  EXPECT_EQ(Squeezer::parse("median:2").kind, Squeezer::Kind::Median);
  EXPECT_BULWARK_ERROR(Squeezer::parse("blur:3"), "bits:<1-24>", "blur:3");
  EXPECT_BULWARK_ERROR(Squeezer::parse("median:x"), "median:x");
  EXPECT_BULWARK_ERROR(Squeezer::parse("median:12"), "window");
  EXPECT_BULWARK_ERROR(FeatureSqueezing(mean_threshold_model().model,
                                        FeatureSqueezingOptions().squeezers({})),
                       "squeezer");
}

TEST_F(DetectorsTest, FeatureSqueezingScoresInputsNearTheBoundary) {
  auto linear = mean_threshold_model();
  FeatureSqueezing detector(linear.model,
                            FeatureSqueezingOptions().squeezers({Squeezer::bit_depth(1)}));
  // Pixels of 0.9 or 0.1 squeeze to 1 or 0 on the same side: no change in prediction.
  const auto confident = torch::cat({torch::full({2, 1, 4, 4}, 0.9), torch::full({2, 1, 4, 4}, 0.1)});
  EXPECT_LT(score_in_batches(detector, confident).max().item<double>(), 1e-3);
  // Mean 0.52 of pixels 0.52: predicted 1 weakly; squeezed to 1 → confident 1: a large move.
  // Mean 0.52 of pixels 0.4 and 0.64 mixed: squeezing flips it.
  auto mixed = torch::full({1, 1, 4, 4}, 0.4);
  mixed.view({-1}).slice(0, 0, 8).fill_(0.64);  // mean 0.52, squeezes to mean 0.5
  const auto score = detector.score(mixed).item<double>();
  EXPECT_GT(score, 0.3);
  EXPECT_LE(score, 2.0);
  // The adaptive score has a gradient (BPDA through the squeezer).
  auto x = mixed.clone().requires_grad_(true);
  detector.adaptive_score(x).sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0);
  EXPECT_NEAR(detector.adaptive_score(mixed).item<double>(), score, 1e-5);
  EXPECT_BULWARK_ERROR(detector.score(torch::rand({2, 16})), "[N, C, H, W]");
}

TEST_F(DetectorsTest, CalibrationReachesItsTargetFalsePositiveRateOnHeldOutData) {
  // Threshold arithmetic: at most floor(fpr·n) scores lie above it.
  const auto ramp = torch::arange(1, 101, torch::kDouble);
  EXPECT_EQ(threshold_for_fpr(ramp, 0.05), 95.0);
  EXPECT_EQ(threshold_for_fpr(ramp, 0.0), 100.0);
  // A real detector: calibrate on 3000 clean inputs, measure on 3000 others.
  auto linear = mean_threshold_model(8.0);
  ConsistencyCheck detector(linear.model, ConsistencyOptions().sigma(0.05).samples(16).seed(3));
  FeatureSqueezing squeeze(linear.model, FeatureSqueezingOptions().squeezers({Squeezer::bit_depth(3)}));
  const auto clean = torch::rand({6000, 1, 4, 4});
  const auto scores = score_in_batches(squeeze, clean);
  for (const double fpr : {0.01, 0.05, 0.2}) {
    squeeze.calibrate(scores.slice(0, 0, 3000), fpr);
    const double held_out = (scores.slice(0, 3000) > squeeze.threshold()).to(torch::kDouble).mean().item<double>();
    const double sd = std::sqrt(fpr * (1 - fpr) / 3000);
    EXPECT_NEAR(held_out, fpr, 4 * sd + 1.0 / 3000) << "target " << fpr;
  }
  EXPECT_BULWARK_ERROR(squeeze.calibrate(scores, 1.0), "[0, 1)");
  EXPECT_BULWARK_ERROR(squeeze.calibrate(torch::empty({0}), 0.05), "non-empty");
  EXPECT_BULWARK_ERROR(threshold_for_fpr(torch::tensor({0.1, std::nan("")}), 0.05), "NaN");
  // Uncalibrated: nothing is flagged.
  EXPECT_FALSE(detector.flag(clean.slice(0, 0, 10)).any().item<bool>());
}

TEST_F(DetectorsTest, ConsistencyFlagsInputsOnTheBoundaryAndIsSeeded) {
  auto linear = mean_threshold_model();
  ConsistencyCheck detector(linear.model, ConsistencyOptions().sigma(0.1).samples(200).seed(1));
  const auto far = torch::full({1, 1, 4, 4}, 0.9);
  const auto on_boundary = torch::full({1, 1, 4, 4}, 0.5);
  EXPECT_EQ(detector.agreement(far).item<double>(), 1.0);
  EXPECT_NEAR(detector.agreement(on_boundary).item<double>(), 0.5, 0.12);
  ConsistencyCheck a(linear.model, ConsistencyOptions().seed(7));
  ConsistencyCheck b(linear.model, ConsistencyOptions().seed(7));
  const auto x = torch::rand({5, 1, 4, 4}) * 0.2 + 0.4;
  EXPECT_TRUE(torch::equal(a.score(x), b.score(x)));
  auto input = on_boundary.clone().requires_grad_(true);
  detector.adaptive_score(input).sum().backward();
  EXPECT_TRUE(input.grad().defined());
  EXPECT_BULWARK_ERROR(ConsistencyCheck(linear.model, ConsistencyOptions().sigma(0)), "sigma");
  EXPECT_BULWARK_ERROR(ConsistencyCheck(linear.model, ConsistencyOptions().samples(0)), "samples");
}

TEST_F(DetectorsTest, RocCurveAndAuc) {
  const auto curve = roc_curve(torch::tensor({0.1, 0.4}), torch::tensor({0.35, 0.8}));
  EXPECT_DOUBLE_EQ(curve.auc, 0.75);
  EXPECT_EQ(curve.fpr.front(), 0.0);
  EXPECT_EQ(curve.tpr.back(), 1.0);
  EXPECT_DOUBLE_EQ(tpr_at_fpr(curve, 0.0), 0.5);
  EXPECT_DOUBLE_EQ(tpr_at_fpr(curve, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(roc_curve(torch::tensor({0.0, 0.1}), torch::tensor({0.5, 0.9})).auc, 1.0);
  EXPECT_DOUBLE_EQ(roc_curve(torch::tensor({0.3, 0.3}), torch::tensor({0.3})).auc, 0.5);
  const auto random = roc_curve(torch::rand({4000}), torch::rand({4000}));
  EXPECT_NEAR(random.auc, 0.5, 0.03);
  EXPECT_BULWARK_ERROR(roc_curve(torch::empty({0}), torch::rand({3})), "at least one");
  EXPECT_BULWARK_ERROR(tpr_at_fpr(curve, 1.5), "fpr", "[0, 1]");
  EXPECT_BULWARK_ERROR(tpr_at_fpr(RocCurve(), 0.05), "curve");
}

// Flags bright images: the score is the mean pixel. The adaptive attack must lower it.
class BrightnessDetector : public Detector {
 public:
  std::string name() const override { return "brightness"; }
  at::Tensor score(const at::Tensor& x) override {
    return x.flatten(1).mean(1).to(at::kDouble).cpu();
  }
  at::Tensor adaptive_score(const at::Tensor& x) override { return x.flatten(1).mean(1); }
};

TEST_F(DetectorsTest, AdaptiveAttackFoolsTheModelAndLowersTheScoreInsideTheBall) {
  // Class 1 when pixel 0 exceeds 0.5; the detector watches the mean brightness.
  auto w = torch::zeros({2, 16});
  w[1][0] = 20.0;
  LinearModel linear(w, torch::tensor({0.0f, -10.0f}));
  const auto x = torch::full({16, 1, 4, 4}, 0.45);
  const auto y = torch::zeros({16}, torch::kLong);
  BrightnessDetector detector;
  const double eps = 0.1;
  const auto adversarial =
      adaptive_attack(linear.model, detector, x, y, AdaptiveAttackOptions(eps).steps(40).seed(2));
  EXPECT_LE((adversarial - x).abs().max().item<double>(), eps + 1e-6);
  EXPECT_GE(adversarial.min().item<double>(), 0.0);
  // Fooled: pixel 0 pushed up to 0.55 …
  EXPECT_TRUE((linear.model.forward(adversarial).argmax(1) == 1).all().item<bool>());
  // … while every other pixel went down: darker than the clean image, unlike plain PGD.
  EXPECT_LT(detector.score(adversarial).max().item<double>(), detector.score(x).min().item<double>() - 0.05);
  PGD pgd(PGDOptions(eps).steps(40));
  const auto plain = pgd.run(linear.model, x, y).adversarial;
  EXPECT_GT(detector.score(plain).mean().item<double>(), detector.score(adversarial).mean().item<double>());
  EXPECT_BULWARK_ERROR(adaptive_attack(linear.model, detector, x, y, AdaptiveAttackOptions(-1)),
                       "eps");
}

// Clean: smooth images; "adversarial": the same with ±0.1 sign noise (what L∞ attacks add).
std::pair<at::Tensor, at::Tensor> clean_and_noisy(int64_t n) {
  const auto clean = (torch::rand({n, 1, 1, 1}) * 0.6 + 0.2).expand({n, 1, 16, 16}).contiguous();
  const auto noise = 0.1 * (torch::randint(0, 2, {n, 1, 16, 16}).to(torch::kFloat) * 2 - 1);
  return {clean, (clean + noise).clamp(0, 1)};
}

TEST_F(DetectorsTest, LearnedDetectorSeparatesNoisyFromCleanAndRoundTrips) {
  ModelSpec spec;
  spec.arch = "mlp";
  spec.image_size = 16;
  spec.hidden = {32};
  auto classifier = make_model(spec);
  const auto [clean, noisy] = clean_and_noisy(600);
  auto detector = LearnedDetector::train(classifier, clean, noisy,
                                         LearnedDetectorOptions().epochs(8).hidden({64}).seed(1));
  const auto [test_clean, test_noisy] = clean_and_noisy(300);
  const auto curve = roc_curve(score_in_batches(detector, test_clean), score_in_batches(detector, test_noisy));
  EXPECT_GT(curve.auc, 0.95);
  detector.calibrate(score_in_batches(detector, test_clean), 0.05);

  const auto path = std::filesystem::temp_directory_path() / "bulwark_learned_detector_test.pt";
  detector.save(path);
  auto loaded = LearnedDetector::load(path, classifier);
  EXPECT_EQ(loaded.threshold(), detector.threshold());
  EXPECT_TRUE(torch::allclose(loaded.score(test_noisy), detector.score(test_noisy)));
  // A plain model file is not a detector.
  save_model(classifier, spec, path);
  EXPECT_BULWARK_ERROR(LearnedDetector::load(path, classifier), "not a detector");
  std::filesystem::remove(path);

  // On a layer: the MLP's hidden activations.
  auto on_layer = LearnedDetector::train(classifier, clean, noisy,
                                         LearnedDetectorOptions().layer("net.layers.2").epochs(3));
  EXPECT_EQ(on_layer.score(test_noisy).size(0), 300);
  auto x = test_noisy.slice(0, 0, 4).clone().requires_grad_(true);
  on_layer.adaptive_score(x).sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0);
  EXPECT_BULWARK_ERROR(LearnedDetector::train(classifier, clean, noisy,
                                              LearnedDetectorOptions().layer("net.nothing")),
                       "no child 'nothing'", "layers");
  EXPECT_BULWARK_ERROR(LearnedDetector::train(classifier, clean, noisy.slice(2, 0, 8)),
                       "same input shape");
  EXPECT_BULWARK_ERROR(LearnedDetector::train(classifier, clean, noisy,
                                              LearnedDetectorOptions().epochs(0)),
                       "epochs");
}

TEST_F(DetectorsTest, LayerActivationsFollowTheSequentialPath) {
  ModelSpec spec;  // small-cnn on 28×28
  auto model = make_model(spec);
  const auto x = torch::rand({3, 1, 28, 28});
  torch::NoGradGuard no_grad;
  const auto features = layer_activations(model, "net.features", x);
  EXPECT_EQ(features.sizes(), (std::vector<int64_t>{3, 1024}));
  // Running the rest of the network on the features gives the logits.
  const auto logits = layer_activations(model, "net.classifier", x);
  EXPECT_TRUE(torch::allclose(logits, model.forward(x)));
  EXPECT_TRUE(torch::equal(layer_activations(model, "", x), x));
  auto function_model = Model::from_function([](const at::Tensor& t) { return t.flatten(1); }, {});
  EXPECT_BULWARK_ERROR(layer_activations(function_model, "net", x), "not a torch::nn module");
}

}  // namespace
}  // namespace bulwark
