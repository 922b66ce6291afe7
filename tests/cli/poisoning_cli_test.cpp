// `bulwark poison`, `bulwark inspect-data` and STRIP through `bulwark detect`, run as a user
// would on a toy data set (a suite of its own, so ctest runs it beside CliTest).
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bulwark/data/cifar10.h"
#include "bulwark/data/idx.h"
#include "bulwark/poisoning/trigger.h"
#include "cli/run_cli.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::count_lines;
using testing::run_cli;
namespace fs = std::filesystem;

class PoisoningCliTest : public testing::SeededTest {};

nlohmann::json read_json(const fs::path& path) {
  return nlohmann::json::parse(testing::read_file(path));
}

// The toy data set in `dir` and an MLP trained on it for 2 epochs at `model`; returns the data
// options that name the set.
std::string toy_data_and_model(const testing::TempDir& dir, const fs::path& model) {
  testing::write_toy_mnist(dir);
  const auto data = " --data mnist --data-dir " + dir.path().string();
  const auto r = run_cli("train --quiet" + data + " --arch mlp --epochs 2 --out " + model.string());
  EXPECT_EQ(r.status, 0) << r.output;
  return data;
}

TEST_F(PoisoningCliTest, PoisonWritesACopyAndItsGroundTruth) {
  testing::TempDir dir;
  testing::write_toy_mnist(dir);
  const auto data = " --data mnist --data-dir " + dir.path().string();
  const auto out = dir / "badnets";
  auto r = run_cli("poison --quiet --seed 3" + data + " --attack badnets --rate 0.1 --target 0 "
                   "--trigger checkerboard:3 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("poisoned 20 of 200"), std::string::npos) << r.output;
  const auto truth = read_json(out / "poison.json");
  const auto changed = truth["changed"].get<std::vector<int64_t>>();
  ASSERT_EQ(changed.size(), 20u);
  const auto original = load_mnist_format(dir.path(), Split::Train);
  const auto poisoned = load_mnist_format(out, Split::Train);
  auto is_changed = torch::zeros({200}, torch::kBool);
  for (const auto i : changed) is_changed[i] = true;
  // Changed: the target label and the trigger; the rest bitwise the original.
  const auto idx = torch::tensor(changed, torch::kLong);
  EXPECT_TRUE(poisoned.labels.index_select(0, idx).eq(0).all().item<bool>());
  const auto stamped = Trigger::checkerboard(3).apply(original.images.index_select(0, idx));
  EXPECT_TRUE(torch::equal(poisoned.images.index_select(0, idx), stamped));
  const auto kept = is_changed.logical_not().nonzero().squeeze(1);
  EXPECT_TRUE(torch::equal(poisoned.images.index_select(0, kept),
                           original.images.index_select(0, kept)));
  EXPECT_TRUE(torch::equal(poisoned.labels.index_select(0, kept),
                           original.labels.index_select(0, kept)));
  // The test split is copied unchanged; the same seed gives the same copy.
  EXPECT_TRUE(torch::equal(load_mnist_format(out, Split::Test).images,
                           load_mnist_format(dir.path(), Split::Test).images));
  const auto again = dir / "again";
  ASSERT_EQ(run_cli("poison --quiet --seed 3" + data + " --attack badnets --rate 0.1 --out " +
                    again.string()).status, 0);
  EXPECT_EQ(testing::read_file(again / "train-images-idx3-ubyte"),
            testing::read_file(out / "train-images-idx3-ubyte"));

  // The backdoor measured by evaluate --trigger (a model trained on the poisoned copy).
  const auto model = dir / "badnets.pt";
  ASSERT_EQ(run_cli("train --quiet --data mnist --data-dir " + out.string() +
                    " --arch mlp --epochs 2 --out " + model.string()).status, 0);
  r = run_cli("evaluate --quiet" + data + " --model " + model.string() +
              " --trigger checkerboard:3 --target 0 --report " + (dir / "bd.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("attack success"), std::string::npos) << r.output;
  EXPECT_EQ(read_json(dir / "bd.json")["backdoor"]["triggered"], 180);  // 200 less class 0's 20
  const auto refused = run_cli("evaluate --quiet" + data + " --model " + model.string() +
                               " --trigger checkerboard:3 --attacks fgsm");
  EXPECT_EQ(refused.status, 1) << refused.output;

  // Label flips: labels change, images do not.
  const auto flips = dir / "flips";
  ASSERT_EQ(run_cli("poison --quiet" + data + " --attack flip-targeted --source 3 --target 5 "
                    "--rate 0.5 --out " + flips.string()).status, 0);
  const auto flipped = load_mnist_format(flips, Split::Train);
  EXPECT_TRUE(torch::equal(flipped.images, original.images));
  EXPECT_EQ(read_json(flips / "poison.json")["changed"].size(), 10u);  // half of class 3's 20

  // Bad input: one line, status 1, nothing written.
  for (const auto& args : {
           "poison" + data + " --attack badnets --out " + out.string(),  // exists, not empty
           "poison" + data + " --attack flip-targeted --out " + (dir / "x").string(),
           "poison" + data + " --attack badnets --trigger circle:3 --out " + (dir / "x").string(),
           "poison" + data + " --attack badnets --rate 2 --out " + (dir / "x").string(),
           "poison" + data + " --attack badnets --target 10 --out " + (dir / "x").string(),
           "poison" + data + " --attack flip-loss --out " + (dir / "x").string(),
           "poison" + data + " --attack clean-label --out " + (dir / "x").string(),
       }) {
    const auto bad = run_cli(args);
    EXPECT_EQ(bad.status, 1) << args << "\n" << bad.output;
    EXPECT_EQ(count_lines(bad.output), 1u) << args << "\n" << bad.output;
  }
  EXPECT_FALSE(fs::exists(dir / "x"));
}

TEST_F(PoisoningCliTest, PoisonWritesCifar10InItsOwnFormat) {
  // 20 training and 5 test images of CIFAR-10's binary format.
  testing::TempDir dir;
  const auto write_records = [](const std::filesystem::path& path, int n, int offset) {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < n; ++i) {
      bytes.push_back(static_cast<uint8_t>((i + offset) % 10));
      for (int j = 0; j < 3072; ++j) bytes.push_back(static_cast<uint8_t>((7 * i + j) % 200));
    }
    testing::write_bytes(path, bytes);
  };
  for (int f = 1; f <= 5; ++f) {
    write_records(dir / fmt::format("data_batch_{}.bin", f), 4, f);
  }
  write_records(dir / "test_batch.bin", 5, 0);
  const auto out = dir / "badnets";
  const auto r = run_cli("poison --quiet --seed 1 --data cifar10 --data-dir " +
                         dir.path().string() + " --attack badnets --rate 0.25 --target 3 "
                         "--trigger square:4 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto original = load_cifar10(dir.path(), Split::Train);
  const auto poisoned = load_cifar10(out, Split::Train);
  const auto changed = read_json(out / "poison.json")["changed"].get<std::vector<int64_t>>();
  ASSERT_EQ(changed.size(), 5u);
  const auto idx = torch::tensor(changed, torch::kLong);
  EXPECT_TRUE(poisoned.labels.index_select(0, idx).eq(3).all().item<bool>());
  EXPECT_TRUE(torch::equal(poisoned.images.index_select(0, idx),
                           Trigger::parse("square:4").apply(original.images.index_select(0, idx))));
  auto kept = torch::ones({20}, torch::kBool);
  kept.index_fill_(0, idx, false);
  EXPECT_TRUE(torch::equal(poisoned.images.index({kept}), original.images.index({kept})));
  EXPECT_EQ(testing::read_file(out / "test_batch.bin"), testing::read_file(dir / "test_batch.bin"));
}

TEST_F(PoisoningCliTest, InspectDataScoresAgainstTheGroundTruthAndWritesASanitizedCopy) {
  testing::TempDir dir;
  testing::write_toy_mnist(dir);
  const auto flips = dir / "flips";
  ASSERT_EQ(run_cli("poison --quiet --data mnist --data-dir " + dir.path().string() +
                    " --attack flip-uniform --rate 0.1 --out " + flips.string()).status, 0);
  const auto data = " --data mnist --data-dir " + flips.string();
  const auto model = dir / "mlp.pt";
  ASSERT_EQ(run_cli("train --quiet" + data + " --arch mlp --epochs 2 --out " + model.string())
                .status, 0);
  // kNN on the hidden layer: the images of a class are identical, so their neighbours outvote
  // every flipped label.
  const auto common = "inspect-data --quiet" + data + " --model " + model.string() +
                      " --ground-truth " + (flips / "poison.json").string();
  auto r = run_cli(common + " --method knn --k 5 --layer net.layers.2 --report " +
                   (dir / "knn.json").string() + " --sanitized " + (dir / "clean").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("precision 100.0%, recall 100.0%"), std::string::npos) << r.output;
  const auto report = read_json(dir / "knn.json");
  EXPECT_EQ(report["flagged"].size(), 20u);
  EXPECT_EQ(report["score"]["recall"].get<double>(), 1.0);
  // The sanitized copy has the original labels back.
  EXPECT_TRUE(torch::equal(load_mnist_format(dir / "clean", Split::Train).labels,
                           load_mnist_format(dir.path(), Split::Train).labels));
  // Spectral signatures and activation clustering report per-class verdicts.
  for (const auto* method : {"spectral", "clustering"}) {
    const auto path = dir / (std::string(method) + ".json");
    r = run_cli(common + " --method " + method + " --layer net.layers.2 --report " + path.string());
    ASSERT_EQ(r.status, 0) << method << "\n" << r.output;
    EXPECT_EQ(read_json(path)["classes"].size(), 10u) << method;
  }
  // The paper's procedure: 1.5 × 10% of every class removed.
  r = run_cli(common + " --method spectral --every-class --layer net.layers.2 --report " +
              (dir / "every.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto every = read_json(dir / "every.json");
  size_t expected = 0;
  for (const auto& c : every["classes"]) {
    EXPECT_TRUE(c["poisoned"].get<bool>());
    expected += static_cast<size_t>(std::llround(0.15 * c["samples"].get<double>()));
  }
  EXPECT_EQ(every["flagged"].size(), expected);
  EXPECT_GT(expected, 20u);
  // Exclusionary reclassification confirms the clusters with a model trained without them.
  r = run_cli(common + " --method clustering --confirm --layer net.layers.2");
  ASSERT_EQ(r.status, 0) << r.output;
  // A clean-label backdoor through the trained model as proxy: class 1's images keep labels.
  r = run_cli("poison --quiet --data mnist --data-dir " + dir.path().string() +
              " --attack clean-label --model " + model.string() + " --rate 0.5 --target 1 "
              "--steps 2 --out " + (dir / "clean-label").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_json(dir / "clean-label" / "poison.json")["changed"].size(), 10u);
  EXPECT_TRUE(torch::equal(load_mnist_format(dir / "clean-label", Split::Train).labels,
                           load_mnist_format(dir.path(), Split::Train).labels));
  // Confident learning trains one model per fold on the other folds.
  r = run_cli(common + " --method confident-learning --folds 2 --report " +
              (dir / "cl.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(read_json(dir / "cl.json").contains("proposed_labels"));

  for (const auto& args : {common + " --method spectral --layer net.nope",
                           common + " --method knn --k 0",
                           common + " --method spectral --confirm",
                           common + " --method knn --every-class",
                           "inspect-data --quiet" + data + " --model " + model.string() +
                               " --ground-truth " + (dir / "knn.json").string()}) {
    const auto bad = run_cli(args + " --report " + (dir / "bad.json").string());
    EXPECT_EQ(bad.status, 1) << args << "\n" << bad.output;
    EXPECT_EQ(count_lines(bad.output), 1u) << args << "\n" << bad.output;
    EXPECT_FALSE(fs::exists(dir / "bad.json")) << args;
  }
}

TEST_F(PoisoningCliTest, DetectMeasuresStripOnTriggeredInputs) {
  testing::TempDir dir;
  const auto model = dir / "mlp.pt";
  const auto data = toy_data_and_model(dir, model);
  const auto json = dir / "strip.json";
  const auto r = run_cli("detect --quiet" + data + " --model " + model.string() +
                         " --detector strip --overlays 4 --holdout-samples 50 --no-adaptive "
                         "--trigger checkerboard:3 --fpr 0.01 --report " + json.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("strip"), std::string::npos) << r.output;
  const auto report = read_json(json);
  EXPECT_EQ(report["detector"], "strip");
  ASSERT_EQ(report["results"].size(), 1u) << report.dump();
  EXPECT_EQ(report["results"][0]["attack"], "trigger");
  const auto bad = run_cli("detect --quiet" + data + " --model " + model.string() +
                           " --detector strip --trigger square:40");
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find("larger than"), std::string::npos) << bad.output;
}

TEST_F(PoisoningCliTest, ScanModelWritesTriggersReportAndAnUnlearnedModel) {
  testing::TempDir dir;
  const auto model = dir / "mlp.pt";
  const auto data = toy_data_and_model(dir, model);
  const auto common = "scan-model --quiet" + data + " --model " + model.string() +
                      " --clean-samples 40 --checks 3 --batches-per-check 2";
  // A tiny threshold flags the classes below the median, so the unlearning path runs.
  auto r = run_cli(common + " --anomaly-threshold 1e-9 --triggers " + (dir / "triggers").string() +
                   " --report " + (dir / "scan.json").string() + " --unlearned " +
                   (dir / "unlearned.pt").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("BACKDOORED"), std::string::npos) << r.output;
  const auto report = read_json(dir / "scan.json");
  EXPECT_EQ(report["classes"].size(), 10u);
  EXPECT_TRUE(report["backdoored"].get<bool>());
  for (int c = 0; c < 10; ++c) {
    EXPECT_TRUE(fs::exists(dir / "triggers" / ("class-" + std::to_string(c) + "-mask.png")));
    EXPECT_TRUE(fs::exists(dir / "triggers" / ("class-" + std::to_string(c) + "-trigger.png")));
  }
  EXPECT_TRUE(fs::exists(dir / "unlearned.pt"));
  // Bad input: one line, nothing written.
  for (const auto& args : {common + " --checks 0", common + " --anomaly-threshold -1",
                           common + " --triggers " + (dir / "scan.json").string()}) {
    const auto bad = run_cli(args + " --report " + (dir / "bad.json").string());
    EXPECT_EQ(bad.status, 1) << args << "\n" << bad.output;
    EXPECT_EQ(count_lines(bad.output), 1u) << args << "\n" << bad.output;
    EXPECT_FALSE(fs::exists(dir / "bad.json")) << args;
  }
}

}  // namespace
}  // namespace bulwark
