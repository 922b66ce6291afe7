#include "bulwark/core/model.h"

#include <torch/script.h>

#include "bulwark/models/small_cnn.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class ModelTest : public SeededTest {};

TEST_F(ModelTest, WrapsAModuleHolder) {
  SmallCNN net;
  Model model(net);
  const auto logits = model.forward(torch::rand({3, 1, 28, 28}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(model.parameters().size(), net->parameters().size());
  EXPECT_EQ(model.device(), torch::Device(torch::kCPU));
  EXPECT_EQ(model.module().get(), net.ptr().get());
  // Reports name it as the user writes it, not as C++ spells it (bulwark::SmallCNNImpl).
  EXPECT_EQ(model.name(), "SmallCNN");
  EXPECT_EQ(Model(torch::nn::Sequential(torch::nn::Flatten())).name(), "Sequential");
  EXPECT_EQ(Model(net, "mine").name(), "mine");
}

TEST_F(ModelTest, EvalModeGuardRestoresTheMode) {
  SmallCNN net;
  Model model(net);
  model.train(true);
  {
    EvalModeGuard guard(model);
    EXPECT_FALSE(model.is_training());
    EXPECT_FALSE(net->is_training());
  }
  EXPECT_TRUE(model.is_training());
  model.eval();
  {
    EvalModeGuard guard(model);
    EXPECT_FALSE(model.is_training());
  }
  EXPECT_FALSE(model.is_training());
}

TEST_F(ModelTest, RejectsOutputsThatAreNotLogits) {
  auto weight = torch::randn({4});
  auto model = Model::from_function([](const at::Tensor& x) { return x.sum(1); }, {weight});
  EXPECT_BULWARK_ERROR(model.forward(torch::rand({2, 3})), "logits [N, K]", "N = 2", "[2]");
  EXPECT_BULWARK_ERROR(model.forward(torch::Tensor()), "batch");
}

TEST_F(ModelTest, FunctionModelRecordsModeAndParameters) {
  auto weight = torch::randn({3, 2}, torch::requires_grad());
  auto model = Model::from_function([weight](const at::Tensor& x) { return x.matmul(weight); },
                                    {weight}, "linear");
  EXPECT_EQ(model.name(), "linear");
  EXPECT_EQ(model.parameters().size(), 1u);
  model.train(true);
  EXPECT_TRUE(model.is_training());
  EXPECT_EQ(model.forward(torch::rand({5, 3})).sizes(), (std::vector<int64_t>{5, 2}));
}

TEST_F(ModelTest, LoadsATorchScriptModelExportedFromPython) {
  auto model = Model::load_torchscript(testing::test_data("tiny_mlp.pt"));
  auto expected = torch::jit::load(testing::test_data("tiny_mlp_expected.pt"));
  const auto inputs = expected.attr("inputs").toTensor();
  const auto logits = expected.attr("logits").toTensor();
  EXPECT_TRUE(torch::allclose(model.forward(inputs), logits, 1e-5, 1e-6));
  EXPECT_EQ(model.parameters().size(), 4u);
  EXPECT_TRUE(model.name().find("tiny_mlp.pt") != std::string::npos);
  model.train(true);
  {
    EvalModeGuard guard(model);
    EXPECT_FALSE(model.is_training());
  }
  EXPECT_TRUE(model.is_training());
}

TEST_F(ModelTest, TorchScriptErrorsNameTheFile) {
  EXPECT_BULWARK_ERROR(Model::load_torchscript("/nonexistent/model.pt"), "/nonexistent/model.pt",
                       "does not exist");
  EXPECT_BULWARK_ERROR(Model::load_torchscript(testing::test_data("../../test_util.h")),
                       "test_util.h", "not a loadable TorchScript model");
}

}  // namespace
}  // namespace bulwark
