// `bulwark poison` and `bulwark inspect-data`: plant label flips or a backdoor in a copy of a
// data set, and inspect a (possibly poisoned) training set for them.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
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

constexpr const char* kGroundTruthFile = "poison.json";

std::vector<int64_t> to_vector(const at::Tensor& t) {
  const auto c = t.cpu().to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// Writes a split in the format --data reads: CIFAR-10 binary batches or MNIST's IDX files.
void save_data(const DataOptions& format, const Dataset& data, const fs::path& out, Split split) {
  if (format.name == "cifar10") {
    save_cifar10(data, out, split);
  } else {
    save_mnist_format(data, out, split);
  }
}

// Creates `out` and fills it with `write`; when that fails, removes what it created, so a
// failed run leaves no half-written data set behind.
void write_directory(const fs::path& out, const std::function<void()>& write) {
  const bool existed = fs::exists(out);
  fs::create_directories(out);
  try {
    write();
  } catch (...) {
    std::error_code ignored;
    if (existed) {
      for (const auto& entry : fs::directory_iterator(out, ignored)) fs::remove_all(entry, ignored);
    } else {
      fs::remove_all(out, ignored);
    }
    throw;
  }
}

struct PoisonArgs {
  DataOptions data;
  std::string out;
  std::string attack = "badnets";
  double rate = 0.05;
  int64_t target = 0;
  int64_t source = -1;
  std::string mode = "all-to-one";
  std::string trigger = "checkerboard:3";
  double blend_alpha = 0.1;
  std::string model;
  SealedArgs sealed;
  double eps = CleanLabelOptions().eps();
  int64_t steps = CleanLabelOptions().steps();
};

PoisonedDataset poison(const GlobalOptions& global, const PoisonArgs& args, const Dataset& train,
                       std::string& description) {
  const auto backdoor = BackdoorOptions()
                            .rate(args.rate)
                            .target(args.target)
                            .mode(args.mode == "all-to-all" ? BackdoorMode::AllToAll
                                                            : BackdoorMode::AllToOne)
                            .seed(global.seed);
  if (args.attack == "badnets" || args.attack == "blend") {
    Trigger trigger = Trigger::parse(args.trigger);
    if (args.attack == "blend") {
      // Chen et al.'s random-noise pattern, seeded, mixed into the whole image.
      auto generator = make_generator(global.seed);
      trigger = Trigger::blend(
          at::rand({1, train.images.size(2), train.images.size(3)}, generator), args.blend_alpha);
    }
    description = fmt::format("{} ({}, {} to class {})", args.attack, trigger.describe(),
                              args.mode, args.target);
    return plant_backdoor(train, trigger, backdoor);
  }
  if (args.attack == "clean-label") {
    BULWARK_CHECK(!args.model.empty(),
                  "--attack clean-label needs --model (a clean proxy model the PGD perturbation "
                  "is computed on)");
    auto proxy = load_model(args.model, resolve_device(global), unseal_options(args.sealed));
    const auto trigger = Trigger::parse(args.trigger);
    description = fmt::format("clean-label backdoor ({}, class {}, PGD eps {:.4g} on {})",
                              trigger.describe(), args.target, args.eps, args.model);
    return plant_clean_label_backdoor(proxy.model, train, trigger,
                                      CleanLabelOptions()
                                          .rate(args.rate)
                                          .target(args.target)
                                          .eps(args.eps)
                                          .steps(args.steps)
                                          .seed(global.seed));
  }
  const auto flips = LabelFlipOptions().rate(args.rate).seed(global.seed);
  if (args.attack == "flip-uniform") {
    description = "uniform label flips";
    return flip_labels_uniform(train, flips);
  }
  if (args.attack == "flip-targeted") {
    BULWARK_CHECK(args.source >= 0, "--attack flip-targeted needs --source (the class flipped)");
    description = fmt::format("label flips from class {} to class {}", args.source, args.target);
    return flip_labels_targeted(train, args.source, args.target, flips);
  }
  BULWARK_CHECK(!args.model.empty(),
                "--attack flip-loss needs --model (a clean model that ranks the samples by loss)");
  auto loaded = load_model(args.model, resolve_device(global), unseal_options(args.sealed));
  description = fmt::format("label flips of the highest-loss samples under {}", args.model);
  return flip_labels_by_loss(loaded.model, train, flips);
}

void run_poison(const GlobalOptions& global, const PoisonArgs& args) {
  const fs::path out(args.out);
  BULWARK_CHECK(!fs::exists(out) || (fs::is_directory(out) && fs::is_empty(out)),
                "--out: '{}' exists and is not an empty directory", out.string());
  BULWARK_CHECK(out.has_parent_path() ? fs::is_directory(out.parent_path()) : true,
                "--out: directory '{}' does not exist", out.parent_path().string());
  const auto train = load_data(args.data, Split::Train);
  const auto test = load_data(args.data, Split::Test);
  std::string description;
  const auto poisoned = poison(global, args, train, description);
  const nlohmann::json truth = {
      {"attack", args.attack},
      {"description", description},
      {"rate", args.rate},
      {"target", args.target},
      {"seed", global.seed},
      {"samples", train.size()},
      {"changed", to_vector(poisoned.changed)},
      {"original_labels", to_vector(poisoned.original_labels)},
  };
  write_directory(out, [&] {
    save_data(args.data, poisoned.data, out, Split::Train);
    save_data(args.data, test, out, Split::Test);
    // The ground truth comes last: its presence says the copy is complete.
    write_text_atomically(out / kGroundTruthFile, truth.dump() + "\n");
  });
  fmt::print("poisoned {} of {} training images: {}; wrote {} (train and test sets, {})\n",
             poisoned.changed.numel(), train.size(), description, out.string(), kGroundTruthFile);
}

struct InspectArgs {
  DataOptions data;
  std::string model;
  SealedArgs sealed;
  std::string method = "spectral";
  std::string layer = "net.features";
  std::string ground_truth;
  std::string report;
  std::string sanitized;
  double expected_poison_rate = 0.1;
  bool every_class = false;
  int64_t k = 10;
  double agreement = 0.5;
  int64_t folds = 3;
  int64_t cv_epochs = 1;
  bool confirm = false;
  int64_t batch_size = 500;
};

at::Tensor activations(Model& model, const std::string& layer, const Dataset& data,
                       int64_t batch_size, bool quiet) {
  Progress progress("activations of " + layer, data.size(), quiet);
  auto out = collect_activations(model, layer, data.images, batch_size, [&](int64_t done) {
    progress.update(done, fmt::format("{}/{}", done, data.size()));
  });
  progress.finish(fmt::format("{} images", data.size()));
  return out;
}

at::Tensor ground_truth_indices(const std::string& path, int64_t samples) {
  std::ifstream in(path);
  BULWARK_CHECK(in.good(), "--ground-truth: cannot read '{}'", path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("--ground-truth: '{}' is not JSON: {}", path, e.what()));
  }
  BULWARK_CHECK(j.is_object() && j.contains("changed") && j["changed"].is_array(),
                "--ground-truth: '{}' has no \"changed\" list (write it with bulwark poison)", path);
  std::vector<int64_t> changed;
  for (const auto& v : j["changed"]) {
    BULWARK_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < samples,
                  "--ground-truth: '{}' lists an index outside the {} training samples", path,
                  samples);
    changed.push_back(v.get<int64_t>());
  }
  return torch::tensor(changed, torch::kLong);
}

void run_inspect(const GlobalOptions& global, const InspectArgs& args) {
  BULWARK_CHECK(!args.every_class || args.method == "spectral",
                "--every-class belongs to --method spectral, not {}", args.method);
  if (!args.report.empty()) check_output_path("--report", args.report);
  if (!args.sanitized.empty()) {
    const fs::path out(args.sanitized);
    BULWARK_CHECK(!fs::exists(out) || (fs::is_directory(out) && fs::is_empty(out)),
                  "--sanitized: '{}' exists and is not an empty directory", out.string());
  }
  const auto device = resolve_device(global);
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
  const auto train = load_data(args.data, Split::Train);
  const auto truth =
      args.ground_truth.empty() ? at::Tensor() : ground_truth_indices(args.ground_truth, train.size());

  nlohmann::json report = {{"model", args.model}, {"data", train.name}, {"samples", train.size()},
                           {"method", args.method}};
  const Dataset on_device(train.images.to(device), train.labels.to(device), train.num_classes,
                          train.name);
  // Copies of the model's architecture trained by the CLI's standard recipe for --cv-epochs:
  // the models exclusionary reclassification and confident learning need.
  const auto retrainer = [&](std::function<void()> trained) -> ModelTrainer {
    BULWARK_CHECK(loaded.spec.has_value(),
                  "--method {} trains copies of the model's architecture: '{}' is TorchScript, "
                  "give a Bulwark model file",
                  args.method, args.model);
    const auto spec = *loaded.spec;
    return [&, spec, trained](const Dataset& subset, uint64_t seed) {
      manual_seed(seed);
      auto model = make_model(spec);
      model.to(device);
      Trainer(model, TrainerOptions().epochs(args.cv_epochs).seed(seed).keep_best(false))
          .fit(subset);
      trained();
      return model;
    };
  };
  at::Tensor flagged;
  std::optional<Dataset> sanitized;
  if (args.method == "spectral" || args.method == "clustering") {
    const auto features = activations(loaded.model, args.layer, train, args.batch_size, global.quiet);
    auto inspection =
        args.method == "spectral"
            ? spectral_signatures(features, train.labels, train.num_classes,
                                  SpectralSignatureOptions()
                                      .expected_poison_rate(args.expected_poison_rate)
                                      .every_class(args.every_class))
            : activation_clustering(features, train.labels, train.num_classes,
                                    ActivationClusteringOptions().seed(global.seed));
    if (args.confirm) {
      BULWARK_CHECK(args.method == "clustering",
                    "--confirm (exclusionary reclassification) belongs to --method clustering");
      spdlog::info("exclusionary reclassification: training a model without the {} flagged samples",
                   inspection.flagged.numel());
      inspection = exclusionary_reclassification(
          inspection, on_device, retrainer([] {}),
          ExclusionaryReclassificationOptions().seed(global.seed).batch_size(args.batch_size));
    }
    flagged = inspection.flagged;
    auto classes = nlohmann::json::array();
    for (const auto& c : inspection.classes) {
      classes.push_back({{"label", c.label}, {"samples", c.samples}, {"poisoned", c.poisoned},
                         {"statistic", c.statistic}, {"flagged", c.flagged}});
      if (c.poisoned) {
        fmt::print("  class {}: poisoned ({} of {} samples flagged, statistic {:.3g})\n",
                   train.class_label(c.label), c.flagged, c.samples, c.statistic);
      }
    }
    report["layer"] = args.layer;
    report["classes"] = classes;
    report["seconds"] = inspection.seconds;
    if (!args.sanitized.empty()) sanitized = remove_samples(train, flagged);
  } else {
    LabelSanitization result;
    if (args.method == "knn") {
      const auto features =
          activations(loaded.model, args.layer, train, args.batch_size, global.quiet);
      result = knn_label_sanitization(
          features, train.labels, train.num_classes,
          KnnSanitizationOptions().k(args.k).agreement(args.agreement));
      report["layer"] = args.layer;
    } else {
      Progress progress("cross-validation models", args.folds, global.quiet);
      int64_t done = 0;
      const auto trainer = retrainer([&] {
        ++done;
        progress.update(done, fmt::format("{}/{}", done, args.folds));
      });
      const auto p = cross_validated_probabilities(on_device, args.folds, trainer, global.seed,
                                                   args.batch_size);
      progress.finish(fmt::format("{} folds", args.folds));
      result = confident_learning(p, train.labels);
    }
    flagged = result.flagged;
    report["proposed_labels"] = to_vector(result.proposed_labels);
    report["seconds"] = result.seconds;
    sanitized = Dataset(train.images, result.sanitized_labels, train.num_classes, train.name);
  }
  report["flagged"] = to_vector(flagged);
  fmt::print("Bulwark data inspection ({}): {} of {} training samples flagged\n", args.method,
             flagged.numel(), train.size());
  if (truth.defined()) {
    const auto score = score_detection(flagged, truth);
    report["score"] = {{"true_positives", score.true_positives}, {"flagged", score.flagged},
                       {"poisoned", score.poisoned}, {"precision", score.precision},
                       {"recall", score.recall}};
    fmt::print("  against the ground truth: precision {:.1f}%, recall {:.1f}% ({} of {} poisoned "
               "samples found)\n",
               100 * score.precision, 100 * score.recall, score.true_positives, score.poisoned);
  }
  if (!args.sanitized.empty()) {
    const fs::path out(args.sanitized);
    write_directory(out, [&] {
      save_data(args.data, *sanitized, out, Split::Train);
      save_data(args.data, load_data(args.data, Split::Test), out, Split::Test);
    });
    fmt::print("  wrote the sanitized training set ({} samples{}) to {}\n", sanitized->size(),
               args.method == "knn" || args.method == "confident-learning" ? ", relabelled"
                                                                          : ", flagged removed",
               out.string());
  }
  if (!args.report.empty()) write_text_atomically(args.report, report.dump(2) + "\n");
}

}  // namespace

Command add_poison_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<PoisonArgs>();
  auto* cmd = app.add_subcommand(
      "poison", "Write a poisoned copy of a data set (label flips or a backdoor) and the ground "
                "truth of which training samples were changed");
  add_data_options(cmd, args->data);
  cmd->add_option("--out", args->out,
                  "Directory to create for the copy (in the format of --data) and poison.json")
      ->required();
  cmd->add_option("--attack", args->attack, "Poisoning attack")
      ->check(CLI::IsMember(
          {"badnets", "blend", "clean-label", "flip-uniform", "flip-targeted", "flip-loss"}));
  cmd->add_option("--rate", args->rate,
                  "Fraction poisoned: of the training set (of the source class for "
                  "flip-targeted, of the target class for clean-label)")
      ->check(in_interval(0.0, 1.0));
  cmd->add_option("--target", args->target, "Target class of the backdoor or targeted flips")
      ->check(non_negative<int64_t>());
  cmd->add_option("--source", args->source, "flip-targeted: the class whose labels are flipped")
      ->check(non_negative<int64_t>());
  cmd->add_option("--mode", args->mode, "Backdoor labels: all-to-one (the target) or all-to-all "
                                        "(class y to y + 1)")
      ->check(CLI::IsMember({"all-to-one", "all-to-all"}));
  cmd->add_option("--trigger", args->trigger,
                  "badnets, clean-label: checkerboard:<size> or square:<size>, optionally "
                  "@<row>,<col> "
                  "(default: the bottom-right corner)");
  cmd->add_option("--blend-alpha", args->blend_alpha,
                  "blend: weight of the seeded random pattern mixed into the image")
      ->check(in_interval(0.0, 1.0, Ends::OpenLow));
  cmd->add_option("--model", args->model,
                  "flip-loss: the clean model ranking samples by loss; clean-label: the clean "
                  "proxy model of the PGD perturbation");
  cmd->add_option("--eps", args->eps, "clean-label: L-inf budget of the PGD perturbation")
      ->check(non_negative<double>());
  cmd->add_option("--steps", args->steps, "clean-label: PGD steps")->check(positive<int64_t>());
  add_sealed_options(cmd, args->sealed);
  return {cmd, [&global, args] { run_poison(global, *args); }};
}

Command add_inspect_data_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand(
      "inspect-data", "Inspect a training set for poison through a model trained on it: "
                      "spectral signatures, activation clustering, kNN or confident-learning "
                      "label sanitization");
  add_data_options(cmd, args->data);
  cmd->add_option("--model", args->model, "Model trained on the data set")->required();
  add_sealed_options(cmd, args->sealed);
  cmd->add_option("--method", args->method, "Inspection")
      ->check(CLI::IsMember({"spectral", "clustering", "knn", "confident-learning"}));
  cmd->add_option("--layer", args->layer,
                  "Layer whose activations are inspected (spectral, clustering, knn)");
  cmd->add_option("--expected-poison-rate", args->expected_poison_rate,
                  "spectral: expected poisoned fraction of a class; 1.5x of it is removed")
      ->check(in_interval(0.0, 1.0, Ends::Open));
  cmd->add_flag("--every-class", args->every_class,
                "spectral: remove from every class, without the per-class test (the paper's "
                "procedure)");
  cmd->add_option("--k", args->k, "knn: neighbours consulted (Paudice et al.: 10)")
      ->check(positive<int64_t>());
  cmd->add_option("--agreement", args->agreement,
                  "knn: fraction of the neighbours that must agree to relabel")
      ->check(in_interval(0.0, 1.0, Ends::OpenLow));
  cmd->add_option("--folds", args->folds,
                  "confident-learning: cross-validation folds (one model trained per fold)")
      ->check(in_interval<int64_t>(2, 100));
  cmd->add_option("--cv-epochs", args->cv_epochs,
                  "confident-learning, --confirm: epochs of each model trained (the CLI's "
                  "standard recipe, on the model's architecture)")
      ->check(positive<int64_t>());
  cmd->add_flag("--confirm", args->confirm,
                "clustering: confirm the flagged clusters by exclusionary reclassification (a "
                "model trained without them must not give them back their labels)");
  cmd->add_option("--batch-size", args->batch_size, "Batch size of the forward passes")
      ->check(positive<int64_t>());
  cmd->add_option("--ground-truth", args->ground_truth,
                  "poison.json of bulwark poison: report precision and recall");
  cmd->add_option("--report", args->report, "Write the flagged samples and verdicts as JSON");
  cmd->add_option("--sanitized", args->sanitized,
                  "Directory to create for the training set with the flagged samples removed "
                  "(spectral, clustering) or relabelled (knn, confident-learning)");
  return {cmd, [&global, args] { run_inspect(global, *args); }};
}

}  // namespace bulwark::cli
