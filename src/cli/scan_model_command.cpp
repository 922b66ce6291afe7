// `bulwark scan-model`: Neural Cleanse on a model, the reversed triggers as PNG, and unlearning
// of the flagged class's trigger.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "bulwark/bulwark.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/sealed_options.h"
#include "cli/validators.h"
#include "core/check.h"

namespace bulwark::cli {
namespace fs = std::filesystem;
namespace {

struct ScanArgs {
  DataOptions data;
  std::string model;
  SealedArgs sealed;
  int64_t clean_samples = 1000;
  int64_t checks = NeuralCleanseOptions().checks();
  int64_t batches_per_check = NeuralCleanseOptions().batches_per_check();
  double anomaly_threshold = NeuralCleanseOptions().anomaly_threshold();
  std::string triggers;
  std::string report;
  std::string unlearned;
  int64_t unlearn_epochs = UnlearningOptions().epochs();
  double unlearn_lr = UnlearningOptions().learning_rate();
};

void run_scan(const GlobalOptions& global, const ScanArgs& args) {
  if (!args.report.empty()) check_output_path("--report", args.report);
  if (!args.unlearned.empty()) check_output_path("--unlearned", args.unlearned);
  if (!args.triggers.empty()) {
    BULWARK_CHECK(!fs::exists(args.triggers) || fs::is_directory(args.triggers),
                  "--triggers: '{}' exists and is not a directory", args.triggers);
  }
  const auto device = resolve_device(global);
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
  BULWARK_CHECK(args.unlearned.empty() || loaded.spec.has_value(),
                "--unlearned saves a Bulwark model file: '{}' is TorchScript", args.model);
  // The defender's clean images: the first --clean-samples of the test split.
  auto options = args.data;
  options.limit = args.clean_samples;
  const auto clean = load_data(options, Split::Test);
  Progress progress("reverse-engineering triggers", clean.num_classes, global.quiet);
  const auto report = neural_cleanse(
      loaded.model, clean.images.to(device), clean.num_classes,
      NeuralCleanseOptions()
          .checks(args.checks)
          .batches_per_check(args.batches_per_check)
          .anomaly_threshold(args.anomaly_threshold)
          .seed(global.seed),
      [&](int64_t done, int64_t total) { progress.update(done, fmt::format("class {}/{}", done, total)); });
  progress.finish(fmt::format("{} classes in {:.1f}s", clean.num_classes, report.seconds));

  fmt::print("Bulwark model scan (Neural Cleanse) of {}: {}\n", args.model,
             report.backdoored ? fmt::format("BACKDOORED, target class {}", [&] {
               std::vector<std::string> targets;
               for (const auto label : report.flagged) targets.push_back(clean.class_label(label));
               return fmt::format("{}", fmt::join(targets, ", "));
             }())
                               : "no backdoor found");
  fmt::print("  {:<16} {:>9} {:>9} {:>8} {:>8}\n", "class", "mask L1", "success", "anomaly",
             "flagged");
  auto classes = nlohmann::json::array();
  for (const auto& c : report.classes) {
    fmt::print("  {:<16} {:>9.2f} {:>8.1f}% {:>8.2f} {:>8}\n", clean.class_label(c.label), c.l1_norm,
               100 * c.attack_success, c.anomaly_index, c.flagged ? "yes" : "");
    classes.push_back({{"label", c.label}, {"l1_norm", c.l1_norm},
                       {"attack_success", c.attack_success}, {"reached", c.reached},
                       {"anomaly_index", c.anomaly_index}, {"flagged", c.flagged},
                       {"steps", c.steps}});
  }
  if (!args.triggers.empty()) {
    fs::create_directories(args.triggers);
    for (const auto& c : report.classes) {
      // The mask, and the pattern where the mask lets it through (transparent elsewhere).
      const auto stem = fs::path(args.triggers) / fmt::format("class-{}", c.label);
      write_png(stem.string() + "-mask.png", c.mask, {}, 4);
      write_png(stem.string() + "-trigger.png",
                (c.pattern - InputBox().lower) / (InputBox().upper - InputBox().lower),
                c.mask[0], 4);
    }
  }
  if (!args.unlearned.empty()) {
    BULWARK_CHECK(report.backdoored, "--unlearned: no class was flagged, there is nothing to "
                                     "unlearn (the model is left as it is)");
    const auto train = load_data(options, Split::Train);
    for (const auto label : report.flagged) {
      spdlog::info("unlearning the reversed trigger of class {} on {} clean training images",
                   label, train.size());
      unlearn_backdoor(loaded.model,
                       Dataset(train.images.to(device), train.labels.to(device),
                               train.num_classes, train.name),
                       report.classes[static_cast<size_t>(label)].trigger(),
                       UnlearningOptions()
                           .epochs(args.unlearn_epochs)
                           .learning_rate(args.unlearn_lr)
                           .seed(global.seed));
    }
    save_model(loaded.model, *loaded.spec, args.unlearned, loaded.metadata);
    fmt::print("  wrote the unlearned model to {}\n", args.unlearned);
  }
  if (!args.report.empty()) {
    const nlohmann::json j = {{"model", args.model}, {"backdoored", report.backdoored},
                              {"flagged", report.flagged}, {"classes", classes},
                              {"seconds", report.seconds}};
    write_text_atomically(args.report, j.dump(2) + "\n");
  }
}

}  // namespace

Command add_scan_model_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<ScanArgs>();
  auto* cmd = app.add_subcommand(
      "scan-model", "Scan a model for a backdoor (Neural Cleanse): reverse-engineer the smallest "
                    "trigger for each class, flag outliers, optionally unlearn");
  add_data_options(cmd, args->data);
  cmd->add_option("--model", args->model, "Model file")->required();
  add_sealed_options(cmd, args->sealed);
  cmd->add_option("--clean-samples", args->clean_samples,
                  "Clean images (the first of the test split) the triggers are optimised on; "
                  "with --unlearned, also the training images fine-tuned on")
      ->check(positive<int64_t>());
  cmd->add_option("--checks", args->checks, "Cost-schedule checks per class (the authors: 1000)")
      ->check(positive<int64_t>());
  cmd->add_option("--batches-per-check", args->batches_per_check,
                  "Adam steps between two checks (the authors: 31)")
      ->check(positive<int64_t>());
  cmd->add_option("--anomaly-threshold", args->anomaly_threshold,
                  "Flag a class whose anomaly index exceeds this")
      ->check(positive<double>());
  cmd->add_option("--triggers", args->triggers,
                  "Directory to write each class's reversed mask and trigger as PNG");
  cmd->add_option("--report", args->report, "Write the per-class norms and verdicts as JSON");
  cmd->add_option("--unlearned", args->unlearned,
                  "Fine-tune the model to unlearn each flagged trigger (20% of --clean-samples "
                  "training images stamped, true labels) and write it here");
  cmd->add_option("--unlearn-epochs", args->unlearn_epochs, "Epochs of the unlearning fine-tune")
      ->check(positive<int64_t>());
  cmd->add_option("--unlearn-lr", args->unlearn_lr,
                  "Adam's learning rate of the unlearning fine-tune")
      ->check(positive<double>());
  return {cmd, [&global, args] { run_scan(global, *args); }};
}


}  // namespace bulwark::cli
