#include "bulwark/core/input_box.h"

#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class InputBoxTest : public SeededTest {};

TEST_F(InputBoxTest, RejectsEmptyOrNonFiniteBox) {
  EXPECT_BULWARK_ERROR(InputBox(1.0, 1.0), "lower < upper", "[1, 1]");
  EXPECT_BULWARK_ERROR(InputBox(0.0, std::numeric_limits<double>::infinity()), "finite");
  EXPECT_NO_THROW(InputBox(-1.0, 1.0));
}

TEST_F(InputBoxTest, ContainsAndClamp) {
  const InputBox box;
  EXPECT_TRUE(box.contains(torch::rand({3, 4})));
  EXPECT_FALSE(box.contains(torch::tensor({0.5, 1.5})));
  EXPECT_FALSE(box.contains(torch::tensor({0.5, std::nan("")})));
  EXPECT_TRUE(box.contains(torch::empty({0, 3})));
  const auto clamped = box.clamp(torch::tensor({-0.5, 0.5, 2.0}));
  EXPECT_TRUE(torch::equal(clamped, torch::tensor({0.0, 0.5, 1.0})));
}

TEST_F(InputBoxTest, CheckContainsNamesTheArgument) {
  const InputBox box;
  EXPECT_BULWARK_ERROR(box.check_contains("pgd", "x", torch::tensor({0.5, 1.5})), "pgd", "x",
                       "[0, 1]", "1.5");
  EXPECT_BULWARK_ERROR(box.check_contains("pgd", "x", torch::tensor({0.5, std::nan("")})),
                       "NaN");
  EXPECT_BULWARK_ERROR(box.check_contains("pgd", "x", torch::tensor({1, 2})), "floating-point");
}

}  // namespace
}  // namespace bulwark
