#include "bulwark/models/model_zoo.h"

#include <fstream>

#include "bulwark/models/mlp.h"
#include "bulwark/models/normalize.h"
#include "bulwark/models/resnet.h"
#include "bulwark/models/small_cnn.h"
#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::TempDir;
class ModelZooTest : public testing::SeededTest {};

TEST_F(ModelZooTest, NetworksGiveLogits) {
  EXPECT_EQ(SmallCNN()->forward(torch::rand({2, 1, 28, 28})).sizes(),
            (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(MLP(MLPOptions(784, 10))->forward(torch::rand({2, 1, 28, 28})).sizes(),
            (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(ResNet()->forward(torch::rand({2, 3, 32, 32})).sizes(),
            (std::vector<int64_t>{2, 10}));
  EXPECT_BULWARK_ERROR(SmallCNN()->forward(torch::rand({2, 1, 32, 32})), "[N, 1, 28, 28]",
                       "[2, 1, 32, 32]");
  EXPECT_BULWARK_ERROR(ResNet(ResNetOptions().depth(21)), "6n + 2");
}

TEST_F(ModelZooTest, NormalizeIsPerChannel) {
  Normalize norm(std::vector<double>{0.5, 0.0}, std::vector<double>{0.5, 2.0});
  const auto x = torch::ones({1, 2, 2, 2});
  const auto y = norm->forward(x);
  EXPECT_FLOAT_EQ(y[0][0][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(y[0][1][1][1].item<float>(), 0.5f);
  EXPECT_BULWARK_ERROR(Normalize(std::vector<double>{0.5}, std::vector<double>{0.0}),
                       "std[0] must be > 0");
  EXPECT_TRUE(norm->parameters().empty());
}

TEST_F(ModelZooTest, SaveLoadIsBitIdentical) {
  TempDir dir;
  for (const auto& arch : model_architectures()) {
    ModelSpec spec;
    spec.arch = arch;
    if (arch == "resnet") spec.in_channels = 3, spec.image_size = 32;
    spec.mean.assign(spec.in_channels, 0.25);
    spec.std.assign(spec.in_channels, 0.5);
    auto model = make_model(spec);
    const auto path = dir / (arch + ".pt");
    save_model(model, spec, path);
    auto loaded = load_model(path);
    ASSERT_TRUE(loaded.spec.has_value());
    EXPECT_EQ(loaded.spec->to_json(), spec.to_json());
    const auto a = model.module()->named_parameters();
    const auto b = loaded.model.module()->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& item : a) {
      EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << arch << " " << item.key();
    }
    for (const auto& item : model.module()->named_buffers()) {
      EXPECT_TRUE(torch::equal(item.value(), loaded.model.module()->named_buffers()[item.key()]));
    }
    const auto x = torch::rand({2, spec.in_channels, spec.image_size, spec.image_size});
    model.eval();
    loaded.model.eval();
    EXPECT_TRUE(torch::equal(model.forward(x), loaded.model.forward(x)));
  }
}

TEST_F(ModelZooTest, LoadsTorchScriptThroughTheSameCall) {
  auto loaded = load_model(testing::test_data("tiny_mlp.pt"));
  EXPECT_FALSE(loaded.spec.has_value());
  EXPECT_EQ(loaded.model.forward(torch::rand({2, 1, 4, 4})).size(1), 3);
}

TEST_F(ModelZooTest, BadFilesAndSpecs) {
  TempDir dir;
  EXPECT_BULWARK_ERROR(load_model(dir / "missing.pt"), "missing.pt", "does not exist");
  std::ofstream(dir / "garbage.pt") << "not a model at all";
  EXPECT_BULWARK_ERROR(load_model(dir / "garbage.pt"), "garbage.pt", "not a model file");

  ModelSpec spec;
  auto model = make_model(spec);
  save_model(model, spec, dir / "good.pt");
  // Truncate a copy: a corrupt checkpoint is an error, never a crash.
  std::ifstream in(dir / "good.pt", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir / "cut.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_BULWARK_ERROR(load_model(dir / "cut.pt"), "cut.pt");

  spec.arch = "vgg";
  EXPECT_BULWARK_ERROR(make_model(spec), "unknown architecture 'vgg'", "small-cnn");
  EXPECT_BULWARK_ERROR(ModelSpec::from_json("{\"arch\": 3}"), "not a valid model spec");
  // Sizes must be JSON integers: a float is refused, never cast (found by the fuzzer).
  const std::string mlp = R"({"arch":"mlp","depth":20,"image_size":28,"in_channels":1,)"
                          R"("mean":[],"num_classes":10,"std":[],"hidden":)";
  EXPECT_BULWARK_ERROR(ModelSpec::from_json(mlp + "[3.3e50]}"), "'hidden' must be an integer");
  EXPECT_BULWARK_ERROR(ModelSpec::from_json(mlp + "[18446744073709551615]}"),
                       "'hidden' must be an integer");
  EXPECT_BULWARK_ERROR(ModelSpec::from_json(mlp + "8}"), "'hidden' must be an array");
  EXPECT_EQ(ModelSpec::from_json(mlp + "[8]}").hidden, std::vector<int64_t>{8});
  EXPECT_BULWARK_ERROR(save_model(Model::load_torchscript(testing::test_data("tiny_mlp.pt")),
                                  ModelSpec(), dir / "x.pt"),
                       "not a torch::nn module");
}

TEST_F(ModelZooTest, WeightsThatDoNotFitTheSpecAreRejected) {
  TempDir dir;
  // A checkpoint whose spec says small-cnn but whose weights come from an MLP.
  ModelSpec mlp_spec;
  mlp_spec.arch = "mlp";
  auto mlp = make_model(mlp_spec);
  torch::serialize::OutputArchive archive;
  mlp.module()->save(archive);
  archive.write("bulwark_model_spec", c10::IValue(ModelSpec().to_json()));
  archive.save_to((dir / "mismatch.pt").string());
  EXPECT_BULWARK_ERROR(load_model(dir / "mismatch.pt"), "mismatch.pt", "do not fit",
                       "small-cnn");
}

}  // namespace
}  // namespace bulwark
