// `bulwark detect` and `bulwark certify`: runtime defenses measured on a data set, each
// detector against the plain attacks and against the adaptive attack that targets it.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>

#include "bulwark/bulwark.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/validators.h"
#include "cli/sealed_options.h"
#include "core/check.h"

namespace bulwark::cli {
namespace fs = std::filesystem;
namespace {

struct DetectArgs {
  DataOptions data{.name = "fashion-mnist", .directory = "", .limit = 1000};
  std::string model;
  SealedArgs sealed;
  std::string detector;
  AttackArgs attack{.attacks = {"fgsm", "pgd", "cw"}};
  double fpr = 0.05;
  double calibration_fraction = 0.5;
  int64_t batch_size = 256;
  std::string report, markdown;
  // Adaptive attack.
  bool no_adaptive = false;
  int64_t adaptive_steps = 50;
  double adaptive_weight = 1.0;
  double adaptive_kappa = 2.0;
  // Feature squeezing.
  std::vector<std::string> squeezers = {"bits:1", "median:2"};
  // Consistency.
  double sigma = 0.1;
  int64_t samples = 32;
  int64_t adaptive_samples = 8;
  // Learned detector.
  std::string detector_file;
  std::string save_detector;
  std::string layer;
  int64_t train_samples = 2000;
  int64_t detector_epochs = 10;
  // STRIP.
  int64_t overlays = 100;
  bool no_saturate = false;
  int64_t holdout_samples = 1000;
  // A backdoor trigger measured as one more attack (alone when --attacks is not given).
  std::string trigger;
  bool attacks_given = false;
};

// Trains a learned detector on PGD examples of the first train_samples training images.
LearnedDetector train_learned_detector(const DetectArgs& args, Model& model, uint64_t seed,
                                       bool quiet) {
  auto options = args.data;
  options.limit = args.train_samples;
  const auto train = load_data(options, Split::Train);
  const auto device = model.device();
  PGD pgd(PGDOptions(args.attack.epsilons.front()).steps(args.attack.steps).seed(seed));
  std::vector<at::Tensor> adversarial;
  Progress progress("detector training examples (pgd)", train.size(), quiet);
  for (int64_t start = 0; start < train.size(); start += args.batch_size) {
    const auto end = std::min(start + args.batch_size, train.size());
    adversarial.push_back(pgd.run(model, train.images.slice(0, start, end).to(device),
                                  train.labels.slice(0, start, end).to(device))
                              .adversarial);
    progress.update(end, fmt::format("{}/{}", end, train.size()));
  }
  progress.finish(fmt::format("{} images", train.size()));
  spdlog::info("training the learned detector on {} clean and {} PGD images", train.size(),
               train.size());
  return LearnedDetector::train(model, train.images.to(device), at::cat(adversarial),
                                LearnedDetectorOptions()
                                    .layer(args.layer)
                                    .epochs(args.detector_epochs)
                                    .seed(seed));
}

std::unique_ptr<Detector> make_detector(const DetectArgs& args, Model& model, uint64_t seed,
                                        bool quiet) {
  if (args.detector == "squeeze") {
    std::vector<Squeezer> squeezers;
    for (const auto& text : args.squeezers) squeezers.push_back(Squeezer::parse(text));
    return std::make_unique<FeatureSqueezing>(model, FeatureSqueezingOptions().squeezers(squeezers));
  }
  if (args.detector == "consistency") {
    return std::make_unique<ConsistencyCheck>(model, ConsistencyOptions()
                                                         .sigma(args.sigma)
                                                         .samples(args.samples)
                                                         .adaptive_samples(args.adaptive_samples)
                                                         .seed(seed));
  }
  if (args.detector == "strip") {
    // The defender's clean images: the first --holdout-samples of the training split.
    auto options = args.data;
    options.limit = args.holdout_samples;
    return std::make_unique<Strip>(model, load_data(options, Split::Train).images,
                                   StripOptions()
                                       .overlays(args.overlays)
                                       .adaptive_overlays(args.adaptive_samples)
                                       .saturate(!args.no_saturate)
                                       .seed(seed));
  }
  if (!args.detector_file.empty()) {
    return std::make_unique<LearnedDetector>(
        LearnedDetector::load(args.detector_file, model, model.device()));
  }
  auto detector = std::make_unique<LearnedDetector>(train_learned_detector(args, model, seed, quiet));
  if (!args.save_detector.empty()) {
    detector->save(args.save_detector);
    spdlog::info("wrote {}", args.save_detector);
  }
  return detector;
}

void run_detect(const GlobalOptions& global, const DetectArgs& args) {
  for (const auto& [option, path] : {std::pair{"--report", args.report},
                                     std::pair{"--markdown", args.markdown},
                                     std::pair{"--save-detector", args.save_detector}}) {
    if (!path.empty()) check_output_path(option, path);
  }
  BULWARK_CHECK(args.detector == "learned" || (args.detector_file.empty() && args.save_detector.empty()),
                "--detector-file and --save-detector belong to --detector learned");
  BULWARK_CHECK(args.attack.epsilons.size() == 1,
                "detect: give one --eps (the budget of the attacks and of the adaptive attack)");
  const auto device = resolve_device(global);
  auto attacks = make_attacks(args.attack, global.seed);
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
  const auto data = load_data(args.data, Split::Test);
  if (!args.trigger.empty()) {
    const auto trigger = Trigger::parse(args.trigger);
    trigger.apply(data.images.slice(0, 0, 1));  // refuses a trigger that does not fit
    if (!args.attacks_given) attacks.clear();
    attacks.push_back(std::make_shared<TriggerAttack>(trigger));
  }
  Dataset on_device(data.images.to(device), data.labels.to(device), data.num_classes, data.name);
  auto detector = make_detector(args, loaded.model, global.seed, global.quiet);

  auto options = DetectionEvaluationOptions()
                     .target_fpr(args.fpr)
                     .calibration_fraction(args.calibration_fraction)
                     .batch_size(args.batch_size);
  if (args.no_adaptive) {
    options.adaptive(std::nullopt);
  } else {
    options.adaptive(AdaptiveAttackOptions(args.attack.epsilons.front())
                         .norm(parse_norm(args.attack.norm))
                         .steps(args.adaptive_steps)
                         .detector_weight(args.adaptive_weight)
                         .kappa(args.adaptive_kappa)
                         .seed(global.seed));
  }
  std::unique_ptr<Progress> progress;
  std::string stage;
  const auto report = evaluate_detector(
      loaded.model, *detector, on_device, attacks, options,
      [&](const std::string& name, int64_t done, int64_t total) {
        if (name != stage) {
          if (progress) progress->finish("done");
          stage = name;
          progress = std::make_unique<Progress>(name, total, global.quiet);
        }
        progress->update(done, fmt::format("batch {}/{}", done, total));
      });
  if (progress) progress->finish("done");

  fmt::print("Bulwark detection report: {} on {}\n", report.detector, args.model);
  fmt::print("  threshold {:.4g} for {:.1f}% false positives ({} calibration images); test "
             "false-positive rate {:.1f}% on {} images; detector cost {:.2f}x a forward pass\n",
             report.threshold, 100 * report.target_fpr, report.calibration_samples,
             100 * report.test_fpr, report.test_samples, report.overhead_vs_forward);
  fmt::print("  {:<13} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>11}\n", "attack", "adaptive",
             "fooled", "ROC AUC", "TPR@1%", "TPR@5%", "detected", "undetected");
  for (const auto& r : report.results) {
    fmt::print("  {:<13} {:>9} {:>7} {:>8.3f} {:>8.1f}% {:>8.1f}% {:>8.1f}% {:>10.1f}%\n",
               r.attack, r.adaptive ? "yes" : "no", r.fooled, r.auc, 100 * r.tpr_at_1,
               100 * r.tpr_at_5, 100 * r.detection_rate, 100 * r.undetected_success);
  }
  if (!args.report.empty()) write_text_atomically(args.report, to_json(report) + "\n");
  if (!args.markdown.empty()) write_text_atomically(args.markdown, to_markdown(report));
}

struct CertifyArgs {
  DataOptions data{.name = "fashion-mnist", .directory = "", .limit = 100};
  std::string model;
  SealedArgs sealed;
  double sigma = 0.25;
  int64_t n0 = 100;
  int64_t n = 100000;
  double alpha = 0.001;
  int64_t batch_size = 1000;
  std::vector<double> radii = {0.0, 0.25, 0.5, 0.75, 1.0};
  std::string report, markdown;
  bool attack = false;
  int64_t attack_steps = 20;
  int64_t eot_draws = 8;
};

void run_certify(const GlobalOptions& global, const CertifyArgs& args) {
  if (!args.report.empty()) check_output_path("--report", args.report);
  if (!args.markdown.empty()) check_output_path("--markdown", args.markdown);
  const auto device = resolve_device(global);
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
  const auto data = load_data(args.data, Split::Test);
  Progress progress("certify", data.size(), global.quiet);
  const auto options = SmoothingOptions()
                           .sigma(args.sigma)
                           .n0(args.n0)
                           .n(args.n)
                           .alpha(args.alpha)
                           .batch_size(args.batch_size)
                           .seed(global.seed);
  const auto certified = certify_dataset(
      loaded.model, data, options, args.radii,
      [&](int64_t done, int64_t total) { progress.update(done, fmt::format("{}/{}", done, total)); });
  progress.finish(fmt::format("{} images", data.size()));
  auto report = certified;
  if (args.attack) {
    std::vector<double> radii;
    for (const double r : args.radii) {
      if (r > 0) radii.push_back(r);
    }
    spdlog::info("attacking the smoothed classifier (L2 PGD-{}, EOT over {} draws)",
                 args.attack_steps, args.eot_draws);
    report.empirical = smoothed_accuracy_under_attack(loaded.model, data, options, radii,
                                                      args.attack_steps, args.eot_draws);
  }
  fmt::print("Bulwark certification report: {} on {} images, sigma {}, n {}\n", args.model,
             data.size(), args.sigma, args.n);
  fmt::print("  base model clean accuracy {:.1f}%, abstained {:.1f}%, {:.0f} draws/s\n",
             100 * report.clean_accuracy_of_base, 100 * report.abstain_rate,
             report.draws_per_second);
  for (const auto& [r, acc] : report.curve) {
    fmt::print("  certified accuracy at L2 radius {:.2f}: {:.1f}%\n", r, 100 * acc);
  }
  for (const auto& [r, acc] : report.empirical) {
    fmt::print("  accuracy under the EOT attack at L2 radius {:.2f}: {:.1f}%\n", r, 100 * acc);
  }
  if (!args.report.empty()) write_text_atomically(args.report, to_json(report) + "\n");
  if (!args.markdown.empty()) write_text_atomically(args.markdown, to_markdown(report));
}

}  // namespace

Command add_detect_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<DetectArgs>();
  auto* cmd = app.add_subcommand(
      "detect", "Calibrate a detector of adversarial inputs and measure it against attacks, "
                "plain and adaptive");
  add_data_options(cmd, args->data);
  cmd->add_option("--model", args->model, "Model file")->required();
  add_sealed_options(cmd, args->sealed);
  cmd->add_option("--detector", args->detector, "Detector")
      ->required()
      ->check(CLI::IsMember({"squeeze", "learned", "consistency", "strip"}));
  add_attack_options(cmd, args->attack);
  cmd->add_option("--fpr", args->fpr, "False-positive rate the threshold is set for")
      ->check(in_interval(0.0, 1.0, Ends::OpenHigh));
  cmd->add_option("--calibration-fraction", args->calibration_fraction,
                  "Fraction of the images (the first ones) that calibrate the threshold")
      ->check(in_interval(0.01, 0.99));
  cmd->add_option("--batch-size", args->batch_size, "Batch size")->check(positive<int64_t>());
  cmd->add_option("--report", args->report, "Write the report (with ROC points) as JSON");
  cmd->add_option("--markdown", args->markdown, "Write the report as Markdown");
  cmd->add_flag("--no-adaptive", args->no_adaptive, "Skip the adaptive attack");
  cmd->add_option("--adaptive-steps", args->adaptive_steps, "PGD steps of the adaptive attack")
      ->check(positive<int64_t>());
  cmd->add_option("--adaptive-weight", args->adaptive_weight,
                  "Weight of the detector's score in the adaptive objective")
      ->check(non_negative<double>());
  cmd->add_option("--adaptive-kappa", args->adaptive_kappa,
                  "Logit margin the adaptive attack keeps before it only evades the detector")
      ->check(non_negative<double>());
  cmd->add_option("--squeezers", args->squeezers,
                  "squeeze: bits:<1-24> and median:<1-11>, comma-separated")
      ->delimiter(',');
  cmd->add_option("--sigma", args->sigma, "consistency: noise standard deviation")
      ->check(positive<double>());
  cmd->add_option("--samples", args->samples, "consistency: noisy copies per input")
      ->check(positive<int64_t>());
  cmd->add_option("--adaptive-samples", args->adaptive_samples,
                  "consistency, strip: noise draws or overlays per step of the adaptive attack "
                  "(EOT)")
      ->check(positive<int64_t>());
  cmd->add_option("--detector-file", args->detector_file,
                  "learned: load this detector instead of training one");
  cmd->add_option("--save-detector", args->save_detector, "learned: write the trained detector");
  cmd->add_option("--layer", args->layer,
                  "learned: read this layer's activations (e.g. net.features; default: the input)");
  cmd->add_option("--train-samples", args->train_samples,
                  "learned: training images (and as many PGD examples of them)")
      ->check(positive<int64_t>());
  cmd->add_option("--detector-epochs", args->detector_epochs, "learned: training epochs")
      ->check(positive<int64_t>());
  cmd->add_flag("--no-saturate", args->no_saturate,
                "strip: superimpose by an unclamped float sum (default: clamped into [0, 1], as "
                "the authors' sum of 8-bit images saturates)");
  cmd->add_option("--overlays", args->overlays,
                  "strip: clean images superimposed on each input (Gao et al.: 100)")
      ->check(positive<int64_t>());
  cmd->add_option("--holdout-samples", args->holdout_samples,
                  "strip: clean images the overlays are drawn from (the first of the training "
                  "split)")
      ->check(positive<int64_t>());
  cmd->add_option("--trigger", args->trigger,
                  "Also measure inputs stamped with this backdoor trigger (checkerboard:<size> or "
                  "square:<size>, optionally @<row>,<col>); alone unless --attacks is given");
  return {cmd, [&global, args, cmd] {
            args->attacks_given = cmd->get_option("--attacks")->count() > 0;
            run_detect(global, *args);
          }};
}

Command add_certify_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<CertifyArgs>();
  auto* cmd = app.add_subcommand(
      "certify", "Certified L2 robustness by randomized smoothing (Cohen et al. 2019)");
  add_data_options(cmd, args->data);
  cmd->add_option("--model", args->model, "Base model file (train it with --strategy gaussian)")
      ->required();
  add_sealed_options(cmd, args->sealed);
  cmd->add_option("--sigma", args->sigma, "Noise level")->check(positive<double>());
  cmd->add_option("--n0", args->n0, "Draws that select the class")->check(positive<int64_t>());
  cmd->add_option("--n", args->n, "Draws that bound its probability (Cohen et al.: 100000)")
      ->check(positive<int64_t>());
  cmd->add_option("--alpha", args->alpha, "Failure probability")
      ->check(in_interval(0.0, 1.0, Ends::Open));
  cmd->add_option("--batch-size", args->batch_size, "Noisy copies per forward pass")
      ->check(positive<int64_t>());
  cmd->add_option("--radii", args->radii, "L2 radii of the certified-accuracy curve")
      ->delimiter(',')
      ->check(non_negative<double>());
  cmd->add_flag("--attack", args->attack,
                "Also attack the smoothed classifier at each radius > 0 (L2 PGD with EOT over the "
                "noise) and report its accuracy next to the certified one");
  cmd->add_option("--attack-steps", args->attack_steps, "PGD steps of --attack")
      ->check(positive<int64_t>());
  cmd->add_option("--eot-draws", args->eot_draws, "Noise draws per PGD step of --attack")
      ->check(positive<int64_t>());
  cmd->add_option("--report", args->report, "Write the report (the curve, every certificate) as JSON");
  cmd->add_option("--markdown", args->markdown, "Write the report as Markdown");
  return {cmd, [&global, args] { run_certify(global, *args); }};
}

}  // namespace bulwark::cli
