// STRIP on small models whose behaviour is known: entropy's known answers, the separation of
// triggered from clean inputs on a backdoored linear model, seeding, and the trigger seen as an
// attack in a detector evaluation.
#include <cmath>
#include <numbers>

#include "attacks/attack_test_util.h"
#include "bulwark/defenses/strip.h"
#include "bulwark/eval/detection.h"
#include "bulwark/poisoning/trigger_attack.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::LinearModel;
using testing::SeededTest;
class StripTest : public SeededTest {};

// Three classes on 1×4×4 images. Class 0 is the backdoor: its logit 40·(x₀ − 0.8) is large only
// when pixel 0 reaches 1, which clean images (pixels in [0, 0.4]) never do, even summed with a
// clean overlay. Clean images are class 1 or 2 by the mean of their other pixels.
LinearModel backdoored_model() {
  auto w = torch::zeros({3, 16}, torch::kFloat);
  w[0][0] = 40.0f;
  w[1].slice(0, 1).fill_(12.0f / 15.0f);
  auto b = torch::tensor({-32.0f, -4.8f, 0.0f});
  return LinearModel(w, b);
}

at::Tensor clean_images(int64_t n) { return torch::rand({n, 1, 4, 4}) * 0.4; }

at::Tensor entropy_bits(const at::Tensor& logits) {
  const auto log_p = logits.log_softmax(-1).to(torch::kDouble);
  return -(log_p.exp() * log_p).sum(-1) / std::numbers::ln2;
}

TEST_F(StripTest, SaturationKeepsSuperimpositionsInTheBox) {
  // Bright images: the plain sum reaches up to 2, the saturating one stops at the box's top.
  float seen_max = 0;
  const auto recorder = Model::from_function(
      [&seen_max](const at::Tensor& x) {
        seen_max = std::max(seen_max, x.max().item<float>());
        return torch::zeros({x.size(0), 3});
      },
      {}, "recorder");
  const auto bright = 0.6 + 0.4 * torch::rand({8, 1, 4, 4});
  Strip(recorder, bright, StripOptions().overlays(4).saturate(false)).entropy(bright);
  EXPECT_GT(seen_max, 1.5f);
  seen_max = 0;
  Strip(recorder, bright, StripOptions().overlays(4)).entropy(bright);  // saturating by default
  EXPECT_FLOAT_EQ(seen_max, 1.0f);
  seen_max = 0;
  Strip(recorder, bright, StripOptions().overlays(4).saturate(true).box(InputBox(0, 1.2)))
      .entropy(bright);
  EXPECT_FLOAT_EQ(seen_max, 1.2f);
}

TEST_F(StripTest, EntropyHasItsKnownAnswers) {
  // A model that ignores its input: every superimposition has the same prediction.
  const auto logits = torch::tensor({2.0f, 0.5f, -1.0f, 0.0f});
  const auto constant = Model::from_function(
      [logits](const at::Tensor& x) { return logits.expand({x.size(0), 4}).clone(); }, {},
      "constant");
  Strip strip(constant, clean_images(10), StripOptions().overlays(7));
  const auto x = clean_images(5);
  const double expected = entropy_bits(logits).item<double>();
  EXPECT_TRUE(torch::allclose(strip.entropy(x), torch::full({5}, expected, torch::kDouble), 0,
                              1e-6));
  EXPECT_TRUE(torch::allclose(strip.score(x), torch::full({5}, 2.0 - expected, torch::kDouble),
                              0, 1e-6));
  // Uniform logits: the entropy is log2(4) = 2 bits and the score 0.
  const auto uniform = Model::from_function(
      [](const at::Tensor& x) { return torch::zeros({x.size(0), 4}); }, {}, "uniform");
  EXPECT_LT(Strip(uniform, clean_images(3)).score(x).abs().max().item<double>(), 1e-6);
  // Overlay weight 0: every superimposition is the input itself, so the entropy is the
  // model's on x.
  auto linear = backdoored_model();
  Strip plain(linear.model, clean_images(10), StripOptions().overlay_weight(0).overlays(3));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(plain.entropy(x), entropy_bits(linear.model.forward(x)), 0, 1e-5));
}

TEST_F(StripTest, SeparatesTriggeredFromCleanInputsAndIsSeeded) {
  auto linear = backdoored_model();
  const auto held_out = clean_images(200);
  Strip strip(linear.model, held_out, StripOptions().overlays(32).seed(5));
  const auto clean = clean_images(400);
  auto triggered = clean_images(400);
  triggered.select(2, 0).select(2, 0).fill_(1.0);  // pixel (0, 0)
  torch::NoGradGuard no_grad;
  // The backdoor works: triggered inputs go to class 0, clean ones never do.
  EXPECT_TRUE((linear.model.forward(triggered).argmax(1) == 0).all().item<bool>());
  EXPECT_FALSE((linear.model.forward(clean).argmax(1) == 0).any().item<bool>());
  const auto clean_scores = strip.score(clean);
  const auto triggered_scores = strip.score(triggered);
  EXPECT_EQ(roc_curve(clean_scores, triggered_scores).auc, 1.0);
  // At a 1% false-rejection rate on clean inputs, every triggered input is flagged, and about
  // 1% of fresh clean ones.
  strip.calibrate(clean_scores, 0.01);
  EXPECT_TRUE(strip.flag(triggered).all().item<bool>());
  const double rejected = strip.flag(clean_images(2000)).to(torch::kDouble).mean().item<double>();
  EXPECT_LT(rejected, 0.03);
  // Same seed, same scores; another seed, other overlays.
  Strip again(linear.model, held_out, StripOptions().overlays(32).seed(5));
  Strip other(linear.model, held_out, StripOptions().overlays(32).seed(6));
  const auto x = clean_images(20);
  const auto first = again.score(x);
  EXPECT_TRUE(torch::equal(Strip(linear.model, held_out, StripOptions().overlays(32).seed(5))
                               .score(x),
                           first));
  EXPECT_FALSE(torch::equal(other.score(x), first));
  // Cutting the inputs into smaller forward passes changes nothing.
  EXPECT_TRUE(torch::allclose(
      Strip(linear.model, held_out, StripOptions().overlays(32).seed(5).batch_size(40)).score(x),
      first, 0, 1e-6));
}

TEST_F(StripTest, AdaptiveScoreIsDifferentiableAndMatchesTheScoreWithoutOverlays) {
  auto linear = backdoored_model();
  Strip strip(linear.model, clean_images(50),
              StripOptions().overlay_weight(0).overlays(4).adaptive_overlays(4));
  auto x = clean_images(6).requires_grad_(true);
  const auto adaptive = strip.adaptive_score(x);
  adaptive.sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0);
  EXPECT_TRUE(torch::allclose(adaptive.detach().to(torch::kDouble), strip.score(x.detach()), 0,
                              1e-5));
}

TEST_F(StripTest, RejectsBadInput) {
  auto linear = backdoored_model();
  const auto held_out = clean_images(10);
  EXPECT_BULWARK_ERROR(Strip(linear.model, held_out, StripOptions().overlays(0)), "overlays",
                       ">= 1");
  EXPECT_BULWARK_ERROR(Strip(linear.model, held_out, StripOptions().input_weight(0).overlay_weight(0)),
                       "weights");
  EXPECT_BULWARK_ERROR(Strip(linear.model, torch::empty({0, 1, 4, 4})), "held_out",
                       "at least one");
  EXPECT_BULWARK_ERROR(Strip(linear.model, torch::full({2, 1, 4, 4}, std::nan(""))), "held_out");
  Strip strip(linear.model, held_out);
  EXPECT_BULWARK_ERROR(strip.score(torch::rand({2, 1, 5, 5})), "x", "[N, 1, 4, 4]");
  EXPECT_BULWARK_ERROR(strip.score(torch::full({2, 1, 4, 4}, std::nan(""))), "x");
  EXPECT_EQ(strip.score(torch::rand({0, 1, 4, 4})).numel(), 0);
}

TEST_F(StripTest, TriggerAttackStampsTheTriggerAndDetectionEvaluationMeasuresStrip) {
  auto linear = backdoored_model();
  auto pattern = torch::ones({1, 1, 1});
  TriggerAttack attack(Trigger::patch(pattern, 0, 0));
  const auto x = clean_images(64);
  torch::NoGradGuard no_grad;
  const auto y = linear.model.forward(x).argmax(1);
  const auto result = attack.run(linear.model, x, y);
  EXPECT_TRUE(torch::equal(result.adversarial, Trigger::patch(pattern, 0, 0).apply(x)));
  EXPECT_TRUE(result.success.all().item<bool>());  // every image now answers class 0
  EXPECT_EQ(result.gradient_evaluations, 0);
  EXPECT_TRUE(std::isinf(attack.eps()));
  EXPECT_EQ(attack.with_budget(0.1, true)->name(), "trigger");
  // The evaluation calibrates STRIP on clean images and scores the triggered ones.
  Strip strip(linear.model, clean_images(100), StripOptions().overlays(16).seed(2));
  const auto images = clean_images(200);
  const auto labels = linear.model.forward(images).argmax(1);
  Dataset data(images, labels, 3, "toy");
  std::vector<std::shared_ptr<Attack>> attacks{std::make_shared<TriggerAttack>(attack)};
  const auto report = evaluate_detector(linear.model, strip, data, attacks,
                                        DetectionEvaluationOptions().target_fpr(0.01).adaptive(
                                            std::nullopt));
  ASSERT_EQ(report.results.size(), 1u);
  EXPECT_EQ(report.detector, "strip");
  EXPECT_EQ(report.results[0].attack, "trigger");
  EXPECT_EQ(report.results[0].fooled, report.results[0].attacked);
  EXPECT_EQ(report.results[0].detection_rate, 1.0);
  EXPECT_EQ(report.results[0].auc, 1.0);
}

}  // namespace
}  // namespace bulwark
