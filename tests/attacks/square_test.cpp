#include "bulwark/attacks/square.h"

#include "attacks/attack_test_util.h"
#include "bulwark/attacks/apgd.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::expect_valid;
class SquareTest : public testing::SeededTest {};

TEST(SquareScheduleTest, FractionHalvesAtTheReferenceIterations) {
  const double p = 0.8;
  EXPECT_EQ(Square::fraction(0, p, 5000, false), p);
  EXPECT_EQ(Square::fraction(10, p, 5000, false), p);
  EXPECT_EQ(Square::fraction(11, p, 5000, false), p / 2);
  EXPECT_EQ(Square::fraction(50, p, 5000, false), p / 2);
  EXPECT_EQ(Square::fraction(51, p, 5000, false), p / 4);
  EXPECT_EQ(Square::fraction(501, p, 5000, false), p / 16);
  EXPECT_EQ(Square::fraction(4001, p, 5000, false), p / 128);
  EXPECT_EQ(Square::fraction(4999, p, 5000, false), p / 128);
  EXPECT_EQ(Square::fraction(8001, p, 10000, false), p / 512);
  // Rescaled: iteration 2500 of 5000 reads the schedule at 5000 of 10000.
  EXPECT_EQ(Square::fraction(2500, p, 5000, true), p / 128);
}

TEST(SquareScheduleTest, SidesMatchTheReference) {
  // 32×32 (CIFAR-10), L∞: 29, 20, 14, 10, 7, 5, 4, 3 over the first eight stages.
  const std::vector<int64_t> expected = {29, 20, 14, 10, 7, 5, 4, 3};
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(Square::side(0.8 / std::pow(2.0, static_cast<double>(k)), 32, 32, Norm::Linf),
              expected[k]);
  }
  EXPECT_EQ(Square::side(0.8, 28, 28, Norm::Linf), 25);
  EXPECT_EQ(Square::side(1e-4, 28, 28, Norm::Linf), 1);
  // L2: odd and at least 3.
  EXPECT_EQ(Square::side(0.8 / 64, 32, 32, Norm::L2), 5);
  EXPECT_EQ(Square::side(1e-4, 28, 28, Norm::L2), 3);
  EXPECT_EQ(Square::side(1.0, 28, 20, Norm::L2), 20);
  EXPECT_BULWARK_ERROR(Square::side(0.0, 28, 28, Norm::Linf), "p in (0, 1]", "got p 0");
  EXPECT_BULWARK_ERROR(Square::side(0.5, 0, 28, Norm::Linf), "at least 1×1");
  EXPECT_BULWARK_ERROR(Square::fraction(-1, 0.8, 5000, false), "it >= 0");
  EXPECT_BULWARK_ERROR(Square::fraction(0, 0.8, 0, true), "queries >= 1");
}

// A model that records every input it is queried with.
struct RecordingModel {
  std::shared_ptr<std::vector<at::Tensor>> seen = std::make_shared<std::vector<at::Tensor>>();
  at::Tensor weight = torch::randn({10, 3 * 8 * 8}, torch::kDouble);
  Model model = Model::from_function(
      [seen = seen, w = weight](const at::Tensor& x) {
        seen->push_back(x.detach().clone());
        return torch::matmul(x.flatten(1), w.t());
      },
      {}, "recording");
};

TEST_F(SquareTest, EveryQueryStaysInTheBallAndTheBox) {
  for (const auto norm : {Norm::Linf, Norm::L2}) {
    RecordingModel recording;
    // One image repeated, with pixels near both box edges, so that every query can be checked
    // against it.
    auto image = torch::rand({1, 3, 8, 8}, torch::kDouble);
    image = torch::where(image > 0.5, 0.97 + 0.03 * image, 0.03 * image);
    const auto x = image.expand({6, 3, 8, 8}).contiguous();
    const auto y = torch::matmul(x.flatten(1), recording.weight.t()).argmax(1);
    const double eps = norm == Norm::Linf ? 0.05 : 0.5;
    const auto r = Square(SquareOptions(eps).norm(norm).queries(200).seed(3))
                       .run(recording.model, x, y);
    expect_valid(r, x, eps, norm);
    ASSERT_GT(recording.seen->size(), 50u);
    for (const auto& q : *recording.seen) {
      const auto delta = q - image;
      EXPECT_LE(per_sample_norm(delta, norm).max().item<double>(), eps * (1 + 1e-9));
      EXPECT_GE(q.min().item<double>(), 0.0);
      EXPECT_LE(q.max().item<double>(), 1.0);
    }
    // Queries are counted: the clean pass, the search, the judging pass.
    EXPECT_EQ(r.gradient_evaluations, 0);
    EXPECT_GT(r.forward_evaluations, 6 * 2);
  }
}

// A model that squeezes its input to one bit before a linear layer: its gradient is zero
// everywhere, so gradient attacks see nothing, while Square searches the outputs.
TEST_F(SquareTest, FindsWhatGradientAttacksMissOnAMaskedModel) {
  const auto w = torch::randn({10, 3 * 8 * 8}, torch::kDouble);
  auto masked = Model::from_function(
      [w](const at::Tensor& x) { return torch::matmul(torch::round(x).flatten(1), w.t()); }, {},
      "one-bit");
  const auto x = 0.35 + 0.3 * torch::rand({40, 3, 8, 8}, torch::kDouble);
  const auto y = torch::matmul(torch::round(x).flatten(1), w.t()).argmax(1);
  const double eps = 0.2;
  const auto apgd = APGD(APGDOptions(eps).steps(20)).run(masked, x, y);
  const auto square = Square(SquareOptions(eps).queries(300)).run(masked, x, y);
  expect_valid(square, x, eps, Norm::Linf);
  const double apgd_rate = apgd.success.to(torch::kDouble).mean().item<double>();
  const double square_rate = square.success.to(torch::kDouble).mean().item<double>();
  EXPECT_GT(square_rate, 0.9);
  EXPECT_GT(square_rate, apgd_rate + 0.3);
}

TEST_F(SquareTest, SameSeedSameResultAndBadInputIsRejected) {
  RecordingModel recording;
  const auto x = torch::rand({4, 3, 8, 8}, torch::kDouble);
  const auto y = torch::matmul(x.flatten(1), recording.weight.t()).argmax(1);
  const auto a = Square(SquareOptions(0.03).queries(50).seed(9)).run(recording.model, x, y);
  const auto b = Square(SquareOptions(0.03).queries(50).seed(9)).run(recording.model, x, y);
  EXPECT_TRUE(torch::equal(a.adversarial, b.adversarial));
  EXPECT_THROW(Square(SquareOptions(-1)), Error);
  EXPECT_THROW(Square(SquareOptions(0.1).queries(0)), Error);
  EXPECT_THROW(Square(SquareOptions(0.1).p_init(0)), Error);
  auto flat = Model::from_function([](const at::Tensor& in) { return in.narrow(1, 0, 3); }, {},
                                   "flat");
  EXPECT_BULWARK_ERROR(Square(SquareOptions(0.1)).run(flat, torch::rand({2, 6}),
                                                      torch::zeros({2}, torch::kLong)),
                       "needs images [N, C, H, W]");
  auto tiny = Model::from_function([](const at::Tensor& in) { return in.flatten(1).narrow(1, 0, 3); },
                                   {}, "tiny");
  EXPECT_BULWARK_ERROR(Square(SquareOptions(0.1).norm(Norm::L2)).run(
                           tiny, torch::rand({2, 1, 4, 4}), torch::zeros({2}, torch::kLong)),
                       "at least 5×5");
}

}  // namespace
}  // namespace bulwark
