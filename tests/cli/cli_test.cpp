// Runs the bulwark executable as a user would.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bulwark/data/image_io.h"
#include "bulwark/models/model_zoo.h"
#include "cli/run_cli.h"
#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::count_lines;
using testing::run_cli;
using testing::write_toy_mnist;

class CliTest : public testing::SeededTest {};

TEST_F(CliTest, InfoReportsTorchCudaAndThreads) {
  const auto r = run_cli("info --threads 2");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("LibTorch            2."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("GPU visible"), std::string::npos);
  EXPECT_NE(r.output.find("threads             2 intra-op"), std::string::npos) << r.output;
}

TEST_F(CliTest, ErrorsAreOneLineAndExitOne) {
  if (!torch::cuda::is_available()) {
    const auto r = run_cli("info --device cuda");
    // info needs no device; evaluate does.
    EXPECT_EQ(r.status, 0);
    const auto e = run_cli("evaluate --device cuda --model " + testing::test_data("tiny_mlp.pt"));
    EXPECT_EQ(e.status, 1) << e.output;
    EXPECT_EQ(count_lines(e.output), 1u) << e.output;
    EXPECT_NE(e.output.find("--device cuda"), std::string::npos) << e.output;
  }
  const auto missing = run_cli("evaluate --model /nonexistent.pt");
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(count_lines(missing.output), 1u) << missing.output;
  EXPECT_NE(missing.output.find("bulwark: error: load_model: '/nonexistent.pt'"),
            std::string::npos)
      << missing.output;
  const auto bad_flag = run_cli("train --epochs 0 --out x.pt");
  EXPECT_EQ(bad_flag.status, 1);
  EXPECT_EQ(count_lines(bad_flag.output), 1u) << bad_flag.output;
  EXPECT_NE(bad_flag.output.find("--epochs"), std::string::npos) << bad_flag.output;
  EXPECT_EQ(run_cli("--help").status, 0);
}

TEST_F(CliTest, BadOptionValuesSayWhatIsAllowed) {
  testing::TempDir dir;
  const auto out = " --out " + (dir / "model.pt").string();
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"train --eps -1" + out, "--eps must be >= 0, got -1"},
           {"train --epochs 0" + out, "--epochs must be > 0, got 0"},
           {"train --delta 2" + out, "--delta must be in (0, 1), got 2"},
           {"train --delta 0" + out, "--delta must be in (0, 1), got 0"},
           {"train --gamma 1.5" + out, "--gamma must be in (0, 1], got 1.5"},
           {"train --lr abc" + out, "--lr must be a number > 0, got 'abc'"},
           {"train --lr inf" + out, "--lr must be a number > 0, got 'inf'"},
           {"train --epochs 1.5" + out, "--epochs must be a whole number > 0, got '1.5'"},
           {"train --milestones 3,-1" + out, "--milestones must be >= 0, got -1"},
           {"evaluate --model /nonexistent.pt --eps 0.1,-0.5", "--eps must be >= 0, got -0.5"},
           {"certify --model /nonexistent.pt --alpha 1", "--alpha must be in (0, 1), got 1"},
           {"patch --model /nonexistent.pt --target -2" + out,
            "--target must be in [-1, 1000], got -2"},
           {"info --threads -2", "--threads must be >= 0, got -2"},
           {"info --seed -1", "--seed must be >= 0, got -1"},
           {"info --seed x1", "--seed must be a whole number >= 0, got 'x1'"}}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(r.output, "bulwark: error: " + message + " (see bulwark --help)\n") << args;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "model.pt"));
}

TEST_F(CliTest, FailedRunsLeaveNoFileBehind) {
  testing::TempDir dir;
  const auto out = dir / "model.pt";
  // The data directory is missing: training fails before anything is written.
  auto r = run_cli("train --quiet --data mnist --data-dir " + (dir / "nodata").string() +
                   " --out " + out.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
  r = run_cli("train --quiet --out " + (dir / "no" / "such" / "dir.pt").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            0);
}

TEST_F(CliTest, TrainsAndEvaluatesOnSmallData) {
  testing::TempDir dir;
  write_toy_mnist(dir);
  const auto model = dir / "mlp.pt";
  auto r = run_cli("train --data mnist --data-dir " + dir.path().string() +
                   " --arch mlp --epochs 3 --lr 0.01 --out " + model.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(model));
  const auto loaded = load_model(model);
  ASSERT_TRUE(loaded.spec.has_value());
  EXPECT_EQ(loaded.spec->arch, "mlp");

  const auto report = dir / "report.json";
  r = run_cli("evaluate --data mnist --data-dir " + dir.path().string() + " --model " +
              model.string() + " --report " + report.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("clean accuracy"), std::string::npos) << r.output;
  // It says it measured clean accuracy only, and how to ask for robustness.
  EXPECT_NE(r.output.find("clean accuracy only: no --attacks given"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--attacks autoattack-fast --eps 0.1"), std::string::npos);
  const std::string json = testing::read_file(report);
  EXPECT_NE(json.find("\"clean_accuracy\""), std::string::npos);
  EXPECT_NE(json.find("\"samples\": 200"), std::string::npos) << json;
}

// 12 test images of 4x4 in IDX files, for tiny_mlp.pt ([N, 1, 4, 4] inputs, 3 classes).
void write_tiny_test_set(const std::filesystem::path& dir) {
  const int n = 12;
  std::vector<uint8_t> images = {0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 4, 0, 0, 0, 4};
  std::vector<uint8_t> labels = {0, 0, 8, 1, 0, 0, 0, n};
  for (int i = 0; i < n; ++i) {
    labels.push_back(static_cast<uint8_t>(i % 3));
    images.insert(images.end(), 16, static_cast<uint8_t>(i * 20));
  }
  testing::write_bytes(dir / "t10k-images-idx3-ubyte", images);
  testing::write_bytes(dir / "t10k-labels-idx1-ubyte", labels);
}

TEST_F(CliTest, EvaluatesATorchScriptModelFromPythonWithEveryAttack) {
  testing::TempDir dir;
  write_tiny_test_set(dir.path());
  const auto r = run_cli("evaluate --quiet --data mnist --data-dir " + dir.path().string() +
                         " --model " + testing::test_data("tiny_mlp.pt"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("torchscript:tiny_mlp.pt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(12 samples)"), std::string::npos) << r.output;
  // Attacks run on the TorchScript model too: gradients flow through the scripted module.
  const auto report = dir / "attacked.json";
  const auto a = run_cli("evaluate --quiet --data mnist --data-dir " + dir.path().string() +
                         " --model " + testing::test_data("tiny_mlp.pt") + " --attacks fgsm,pgd "
                         "--eps 0.1,0.5 --steps 3 --report " + report.string());
  EXPECT_EQ(a.status, 0) << a.output;
  EXPECT_NE(a.output.find("pgd    linf       0.5"), std::string::npos) << a.output;
  EXPECT_TRUE(std::filesystem::exists(report));
  // AutoAttack's components that work with 3 classes, and the fast mode's report.
  const auto components = run_cli(
      "evaluate --quiet --data mnist --data-dir " + dir.path().string() +
      " --model " + testing::test_data("tiny_mlp.pt") + " --attacks apgd-ce,apgd-dlr,fab-t,square "
      "--eps 0.1 --report " + report.string());
  EXPECT_EQ(components.status, 0) << components.output;
  const auto json = testing::read_file(report);
  for (const char* name : {"\"apgd-ce\"", "\"apgd-dlr\"", "\"fab-t\"", "\"square\"",
                           "\"forward_equivalents\""}) {
    EXPECT_NE(json.find(name), std::string::npos) << name << "\n" << json;
  }
  // APGD-T's targeted DLR loss needs 4 classes: one line saying so, no report.
  const auto refused = run_cli("evaluate --quiet --data mnist --data-dir " + dir.path().string() +
                               " --model " + testing::test_data("tiny_mlp.pt") + " --attacks "
                               "autoattack --eps 0.1 --report " + (dir / "aa.json").string());
  EXPECT_EQ(refused.status, 1) << refused.output;
  EXPECT_EQ(count_lines(refused.output), 1u) << refused.output;
  EXPECT_NE(refused.output.find("apgd-t needs at least 4 classes"), std::string::npos)
      << refused.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "aa.json"));
  // `evaluate --version` is AutoAttack's version, not the program's: rand needs 3 classes.
  const auto rand = run_cli("evaluate --quiet --data mnist --data-dir " + dir.path().string() +
                            " --model " + testing::test_data("tiny_mlp.pt") + " --attacks "
                            "autoattack --version rand --eps 0.1");
  EXPECT_EQ(rand.status, 0) << rand.output;
  EXPECT_NE(rand.output.find("autoattack-rand"), std::string::npos) << rand.output;
  const auto version = run_cli("evaluate --quiet --data mnist --data-dir " + dir.path().string() +
                               " --model " + testing::test_data("tiny_mlp.pt") + " --attacks "
                               "autoattack --version fastest");
  EXPECT_EQ(version.status, 1) << version.output;
  EXPECT_NE(version.output.find("--version"), std::string::npos) << version.output;
}

TEST_F(CliTest, EvaluateBracketWritesReportsAndPlotAndRefusesWhatItCannotBracket) {
  testing::TempDir dir;
  write_tiny_test_set(dir.path());
  const std::string base = "evaluate --quiet --data mnist --data-dir " + dir.path().string() +
                           " --model " + testing::test_data("tiny_mlp.pt") + " ";
  const auto json = dir / "bracket.json", md = dir / "bracket.md", svg = dir / "bracket.svg";
  const auto r = run_cli(base + "--attacks pgd --norm l2 --eps 0.5,1 --steps 3 --bracket --n 50 "
                         "--n0 10 --smoothed-steps 2 --eot-draws 2 --report " + json.string() +
                         " --markdown " + md.string() + " --plot " + svg.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("smoothed certified"), std::string::npos) << r.output;
  const auto report = testing::read_file(json);
  for (const char* field : {"\"bracket\"", "\"smoothed_under_attack\"", "\"certified\"",
                            "\"base_under_attack\"", "\"certification\""}) {
    EXPECT_NE(report.find(field), std::string::npos) << field;
  }
  EXPECT_NE(testing::read_file(md).find("| 0.5 |"), std::string::npos);
  EXPECT_EQ(testing::read_file(svg).rfind("<svg", 0), 0u);
  // What the bracket cannot compare: L-inf attacks, no attack, a plot without the bracket.
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--attacks pgd --eps 0.1 --bracket", "--norm l2"},
           {"--norm l2 --eps 0.1 --bracket", "--attacks"},
           {"--attacks pgd --norm l2 --eps 0.1 --plot " + (dir / "p.svg").string(),
            "--plot needs --bracket"}}) {
    const auto refused = run_cli(base + args);
    EXPECT_EQ(refused.status, 1) << args << "\n" << refused.output;
    EXPECT_EQ(count_lines(refused.output), 1u) << refused.output;
    EXPECT_NE(refused.output.find(says), std::string::npos) << refused.output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "p.svg"));
}

TEST_F(CliTest, AdversarialTrainingCheckpointsResumesAndRejectsBadCheckpoints) {
  testing::TempDir dir;
  write_toy_mnist(dir);
  const auto data = " --data mnist --data-dir " + dir.path().string();
  const auto out = dir / "robust.pt";
  const auto checkpoint = dir / "robust.ckpt";
  const auto base = "train --quiet" + data + " --arch mlp --strategy trades --eps 0.05 " +
                    "--attack-steps 2 --validation-samples 50 --eval-steps 3 --schedule cosine " +
                    "--out " + out.string();
  const auto common = base + " --checkpoint " + checkpoint.string();
  auto r = run_cli(common + " --epochs 1 --report " + (dir / "history.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(out));
  EXPECT_TRUE(std::filesystem::exists(checkpoint));
  const auto history = testing::read_file(dir / "history.json");
  EXPECT_NE(history.find("\"validation_robust_accuracy\""), std::string::npos) << history;
  EXPECT_NE(history.find("\"strategy\": \"trades\""), std::string::npos) << history;
  // TRADES' recipe (Adam, one-cycle to 5e-3, batch 100) with the given schedule in its place.
  const auto recipe = nlohmann::json::parse(history);
  EXPECT_EQ(recipe.at("optimizer"), "adam");
  EXPECT_EQ(recipe.at("learning_rate"), 5e-3);
  EXPECT_EQ(recipe.at("batch_size"), 100);
  EXPECT_EQ(recipe.at("schedule"), "cosine");
  // Two more epochs from the checkpoint.
  r = run_cli(common + " --epochs 3 --resume --report " + (dir / "history.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(testing::read_file(dir / "history.json").find("\"epoch\": 3"), std::string::npos);

  // A checkpoint of another architecture, and a corrupt one: one line, nothing overwritten.
  const auto before = testing::read_file(checkpoint);
  r = run_cli("train --quiet" + data + " --arch small-cnn --epochs 1 --resume --out " +
              (dir / "other.pt").string() + " --checkpoint " + checkpoint.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("another architecture"), std::string::npos) << r.output;
  EXPECT_EQ(testing::read_file(checkpoint), before);
  EXPECT_FALSE(std::filesystem::exists(dir / "other.pt"));
  testing::write_bytes(dir / "bad.ckpt", {0, 1, 2, 3});
  r = run_cli(base + " --epochs 2 --resume --checkpoint " + (dir / "bad.ckpt").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("corrupt"), std::string::npos) << r.output;
  r = run_cli(common + " --epochs 2 --eps -1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--eps"), std::string::npos) << r.output;
}

TEST_F(CliTest, PatchAndStickerWritePngsReportsAndGrids) {
  testing::TempDir dir;
  write_toy_mnist(dir);
  const auto data = " --data mnist --data-dir " + dir.path().string();
  const auto model = dir / "mlp.pt";
  ASSERT_EQ(run_cli("train --quiet" + data + " --arch mlp --epochs 2 --out " + model.string()).status, 0);
  const auto common = data + " --model " + model.string() +
                      " --steps 4 --batch-size 8 --train-samples 60 --test-samples 40 --views 2";
  auto r = run_cli("patch --quiet" + common + " --target 3 --size 0.05,0.1 --shape circle --out " +
                   (dir / "patch.png").string() + " --report " + (dir / "patch.json").string() +
                   " --grid " + (dir / "grid.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const auto* name : {"patch-size0.05.png", "patch-size0.1.png", "grid-size0.1.png"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / name)) << name;
  }
  const auto patch = read_png(dir / "patch-size0.1.png");
  EXPECT_EQ(patch.size(0), 1);
  const auto report = testing::read_file(dir / "patch.json");
  for (const auto* key : {"\"area_fraction\"", "\"baseline_success_rate\"", "\"range_factor\": 2.0",
                          "\"target\": 3", "\"shape\": \"circle\""}) {
    EXPECT_NE(report.find(key), std::string::npos) << key << " in " << report;
  }
  EXPECT_NE(r.output.find("covering 10.00% of the image"), std::string::npos) << r.output;

  auto mask = torch::zeros({1, 28, 28});
  mask.slice(1, 10, 14).fill_(1);
  write_png(dir / "mask.png", mask);
  std::ofstream(dir / "palette.txt") << "# printable greys\n0.0\n0.5\n1.0\n";
  r = run_cli("sticker --quiet" + common + " --mask " + (dir / "mask.png").string() +
              " --palette " + (dir / "palette.txt").string() +
              " --out " + (dir / "sticker.png").string() + " --report " +
              (dir / "sticker.json").string() + " --grid " + (dir / "sgrid.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "sticker.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "sgrid.png"));
  EXPECT_NE(testing::read_file(dir / "sticker.json").find("\"mask_fraction\""), std::string::npos);
}

TEST_F(CliTest, PatchAndStickerBadInputIsOneLineAndWritesNothing) {
  testing::TempDir dir;
  write_toy_mnist(dir);
  const auto data = " --data mnist --data-dir " + dir.path().string();
  const auto model = dir / "mlp.pt";
  ASSERT_EQ(run_cli("train --quiet" + data + " --arch mlp --epochs 1 --out " + model.string()).status, 0);
  const auto common = data + " --model " + model.string() + " --steps 2 --train-samples 20 --test-samples 20";
  const auto out = dir / "out.png";
  write_png(dir / "small-mask.png", torch::ones({1, 20, 28}));
  write_png(dir / "empty-mask.png", torch::zeros({1, 28, 28}));
  for (const auto& [args, expected] : std::vector<std::pair<std::string, std::string>>{
           {"patch" + common + " --size 1 --shape circle", "larger than the image"},
           {"patch" + common + " --target 10", "target class must be in [0, 10)"},
           {"sticker" + common + " --mask " + (dir / "small-mask.png").string(), "mask must be [H, W] = [28, 28]"},
           {"sticker" + common + " --mask " + (dir / "empty-mask.png").string(), "mask is empty"},
           {"sticker" + common + " --mask " + (dir / "missing.png").string(), "cannot read"}}) {
    const auto r = run_cli(args + " --out " + out.string());
    EXPECT_EQ(r.status, 1) << args << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}


TEST_F(CliTest, DetectAndCertifyWriteReportsAndRejectBadInput) {
  testing::TempDir dir;
  write_toy_mnist(dir);
  const auto data = " --data mnist --data-dir " + dir.path().string();
  const auto model = dir / "mlp.pt";
  ASSERT_EQ(run_cli("train --quiet" + data + " --arch mlp --epochs 3 --lr 0.01 --out " + model.string()).status, 0);
  const auto common = "detect --quiet" + data + " --model " + model.string() +
                      " --attacks fgsm,pgd --steps 3 --adaptive-steps 3";
  auto r = run_cli(common + " --detector squeeze --squeezers bits:2,median:3 --report " +
                   (dir / "squeeze.json").string() + " --markdown " + (dir / "squeeze.md").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("adaptive-pgd"), std::string::npos) << r.output;
  const auto json = testing::read_file(dir / "squeeze.json");
  for (const auto* key : {"\"roc\"", "\"tpr_at_5_fpr\"", "\"threshold\"", "\"adaptive\": true",
                          "\"test_fpr\"", "\"detector\": \"feature-squeezing\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
  EXPECT_NE(testing::read_file(dir / "squeeze.md").find("| fgsm |"), std::string::npos);

  r = run_cli(common + " --detector learned --train-samples 100 --detector-epochs 2 --save-detector " +
              (dir / "detector.pt").string());
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(std::filesystem::exists(dir / "detector.pt"));
  r = run_cli(common + " --detector learned --no-adaptive --detector-file " + (dir / "detector.pt").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("adaptive-pgd"), std::string::npos) << r.output;
  r = run_cli(common + " --detector consistency --samples 4 --adaptive-samples 2");
  ASSERT_EQ(r.status, 0) << r.output;

  r = run_cli("certify --quiet" + data + " --model " + model.string() +
              " --limit 10 --n0 10 --n 100 --radii 0,0.25 --attack --attack-steps 2 --eot-draws 2"
              " --report " + (dir / "certify.json").string() +
              " --markdown " + (dir / "certify.md").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto certify = testing::read_file(dir / "certify.json");
  EXPECT_NE(certify.find("\"certified_accuracy\""), std::string::npos) << certify;
  EXPECT_NE(certify.find("\"pa_lower\""), std::string::npos);
  EXPECT_NE(certify.find("\"accuracy_under_attack\""), std::string::npos) << certify;

  // An ensemble of the model with a second one, attacked as one model.
  const auto second = dir / "second.pt";
  ASSERT_EQ(run_cli("train --quiet --seed 5" + data + " --arch mlp --epochs 2 --lr 0.01 --out " + second.string()).status, 0);
  r = run_cli("evaluate --quiet" + data + " --model " + model.string() + " --ensemble " +
              second.string() + " --ensemble-mode mean-probabilities --attacks pgd --steps 3");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ensemble(mean-probabilities:"), std::string::npos) << r.output;

  // Bad input: one line, non-zero status, no report.
  for (const auto& args :
       {common + " --detector squeeze --squeezers blur:3",
        common + " --detector squeeze --detector-file " + (dir / "detector.pt").string(),
        common + " --detector learned --detector-file " + model.string(),
        common + " --detector squeeze --eps 0.1,0.2",
        "certify --quiet" + data + " --model " + model.string() + " --sigma 0",
        "certify --quiet" + data + " --model " + model.string() + " --alpha 1.5"}) {
    const auto bad = run_cli(args + " --report " + (dir / "bad.json").string());
    EXPECT_NE(bad.status, 0) << args;
    EXPECT_FALSE(std::filesystem::exists(dir / "bad.json")) << args;
    EXPECT_LE(std::count(bad.output.begin(), bad.output.end(), '\n'), 2) << bad.output;
  }
}

TEST_F(CliTest, PrivateTrainingReportsEpsilonAndAuditPrivacyWritesReports) {
  testing::TempDir dir;
  write_toy_mnist(dir);
  const auto data = " --data mnist --data-dir " + dir.path().string();
  const auto model = dir / "private.pt";
  auto r = run_cli("train --quiet" + data +
                   " --arch tanh-cnn --dp --target-epsilon 3 --delta 1e-3 --max-grad-norm 1 "
                   "--physical-batch-size 16 --epochs 2 --batch-size 32 --optimizer sgd --lr 0.5 "
                   "--validation-samples 0 --eps 0 --out " + model.string() + " --report " +
                   (dir / "train.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto history = nlohmann::json::parse(testing::read_file(dir / "train.json"));
  const auto& privacy = history.at("privacy");
  EXPECT_LE(privacy.at("epsilon").get<double>(), 3.0);
  EXPECT_GT(privacy.at("epsilon").get<double>(), 2.9);
  EXPECT_NEAR(privacy.at("sample_rate").get<double>(), 32.0 / 200, 1e-12);
  EXPECT_GT(privacy.at("noise_multiplier").get<double>(), 0.5);
  EXPECT_LT(history.at("epochs")[0].at("epsilon").get<double>(),
            history.at("epochs")[1].at("epsilon").get<double>());

  r = run_cli("audit-privacy --quiet" + data + " --model " + model.string() +
              " --members 50 --shadow-models 2 --shadow-epochs 1 --report " +
              (dir / "audit.json").string() + " --markdown " + (dir / "audit.md").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("lira-offline"), std::string::npos) << r.output;
  const auto audit = nlohmann::json::parse(testing::read_file(dir / "audit.json"));
  EXPECT_EQ(audit.at("members").get<int64_t>(), 50);
  EXPECT_EQ(audit.at("attacks").size(), 2u);
  EXPECT_NE(testing::read_file(dir / "audit.md").find("| loss-threshold |"), std::string::npos);

  // Bad input: one line, non-zero status, nothing written.
  for (const auto& args :
       {"train --quiet" + data + " --arch resnet --dp --epochs 1 --out " + (dir / "bad.pt").string(),
        "train --quiet" + data + " --arch mlp --dp --delta 2 --epochs 1 --out " + (dir / "bad.pt").string(),
        "audit-privacy --quiet" + data + " --model " + model.string() + " --train-samples 500" +
            " --out-unused 1",
        "audit-privacy --quiet" + data + " --model " + model.string() + " --train-samples 500"}) {
    const auto bad = run_cli(args + " --report " + (dir / "bad.json").string());
    EXPECT_NE(bad.status, 0) << args;
    EXPECT_FALSE(std::filesystem::exists(dir / "bad.json")) << args;
    EXPECT_FALSE(std::filesystem::exists(dir / "bad.pt")) << args;
    EXPECT_LE(std::count(bad.output.begin(), bad.output.end(), '\n'), 2) << bad.output;
  }
}

}  // namespace
}  // namespace bulwark
