// `bulwark evaluate`: clean accuracy, or robustness against a list of attacks and budgets, of a
// model or an ensemble, as text, JSON, Markdown and an image grid.
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>

#include "bulwark/bulwark.h"
#include "cli/cli_common.h"
#include "cli/progress.h"
#include "cli/validators.h"
#include "cli/sealed_options.h"

namespace bulwark::cli {
namespace {

struct EvaluateArgs {
  DataOptions data;
  std::string model;
  SealedArgs sealed;
  std::string split = "test";
  std::string report;
  std::string markdown;
  std::string grid;
  int64_t batch_size = 500;
  AttackArgs attack;
  bool no_early_stop = false;
  std::vector<std::string> ensemble;
  std::string ensemble_mode = "mean-logits";
  // --bracket: the L2 robustness bracket with randomized smoothing.
  bool bracket = false;
  std::string plot;
  double sigma = 0.25;
  int64_t n0 = 100;
  int64_t n = 10000;
  double alpha = 0.001;
  int64_t smoothed_steps = 20;
  int64_t eot_draws = 8;
  // --trigger: a backdoor's attack success next to clean accuracy.
  std::string trigger;
  int64_t target = 0;
};

void print_robustness(const RobustnessReport& report) {
  fmt::print("  {:<6} {:<5} {:>8} {:>16} {:>15} {:>10}\n", "attack", "norm", "eps",
             "robust accuracy", "attack success", "samples/s");
  for (const auto& r : report.results) {
    fmt::print("  {:<6} {:<5} {:>8.4g} {:>15.2f}% {:>14.2f}% {:>10.0f}\n", r.attack, r.norm, r.eps,
               100 * r.robust_accuracy, 100 * r.attack_success_rate, r.samples_per_second);
  }
  for (const auto& w : report.worst_case) {
    fmt::print("  worst case over all attacks at eps {:.4g}: {:.2f}% robust\n", w.eps,
               100 * w.robust_accuracy);
  }
  // By class, when there are few enough to read.
  if (!report.worst_case.empty() && report.per_class.size() <= 20) {
    fmt::print("  {:<18} {:>7} {:>7}", "by class", "samples", "clean");
    for (const auto& w : report.worst_case) fmt::print(" {:>10}", fmt::format("eps {:.4g}", w.eps));
    fmt::print("\n");
    for (const auto& c : report.per_class) {
      if (c.samples == 0) continue;
      fmt::print("  {:<18} {:>7} {:>6.1f}%",
                 c.name.empty() ? std::to_string(c.label)
                                : fmt::format("{} {}", c.label, c.name),
                 c.samples, 100 * c.clean_accuracy);
      for (const double r : c.robust_accuracy) fmt::print(" {:>9.1f}%", 100 * r);
      fmt::print("\n");
    }
  }
  for (const auto& w : report.warnings) fmt::print("  WARNING: {}\n", w);
}

// --bracket: the attacks on the base model, and the smoothed classifier attacked and certified,
// at each eps (all L2).
void run_bracket(const GlobalOptions& global, const EvaluateArgs& args, Model& model,
                 const std::string& model_path, const Dataset& data,
                 const std::vector<std::shared_ptr<Attack>>& attacks) {
  const auto options =
      BracketOptions()
          .smoothing(SmoothingOptions()
                         .sigma(args.sigma)
                         .n0(args.n0)
                         .n(args.n)
                         .alpha(args.alpha)
                         .seed(global.seed))
          .evaluation(EvaluationOptions().batch_size(args.batch_size).early_stop(!args.no_early_stop))
          .smoothed_attack_steps(args.smoothed_steps)
          .eot_draws(args.eot_draws);
  spdlog::info("bracket: attacking the base model, then certifying and attacking its smoothed "
               "classifier (sigma {}, n {}) on {} images",
               args.sigma, args.n, data.size());
  const auto bracket = robustness_bracket(model, data, attacks, args.attack.epsilons, options);
  fmt::print("Bulwark L2 robustness bracket: {} ({}) on {} ({} samples), sigma {}, n {}\n",
             model_path, model.name(), data.name, data.size(), args.sigma, args.n);
  fmt::print("  {:>8} {:>14} {:>20} {:>22} {:>8}\n", "eps", "base attacked",
             "smoothed certified", "smoothed attacked", "width");
  for (const auto& p : bracket.points) {
    fmt::print("  {:>8.4g} {:>13.2f}% {:>19.2f}% {:>21.2f}% {:>8.2f}\n", p.eps,
               100 * p.base_under_attack, 100 * p.certified, 100 * p.smoothed_under_attack,
               100 * p.width());
  }
  for (const auto& w : bracket.warnings) fmt::print("  WARNING: {}\n", w);
  // Each option its own format, whatever the file's extension.
  using Writer = std::string (*)(const RobustnessBracket&);
  const std::vector<std::pair<std::string, Writer>> outputs = {
      {args.report, &to_json}, {args.markdown, &to_markdown}, {args.plot, &to_svg}};
  for (const auto& [path, text] : outputs) {
    if (!path.empty()) {
      write_text_atomically(path, text(bracket));
      spdlog::info("wrote {}", path);
    }
  }
}

void run_evaluate(const GlobalOptions& global, const EvaluateArgs& args) {
  if (args.bracket) {
    if (args.attack.attacks.empty() || args.attack.norm != "l2") {
      throw Error("--bracket needs --attacks and --norm l2 (it compares with L2 certificates)");
    }
    if (!args.grid.empty() || !args.ensemble.empty()) {
      throw Error("--bracket does not take --grid or --ensemble");
    }
  } else if (!args.plot.empty()) {
    throw Error("--plot needs --bracket");
  }
  if (!args.trigger.empty() && (args.bracket || !args.attack.attacks.empty())) {
    throw Error("--trigger measures a backdoor beside clean accuracy: it does not take "
                "--attacks or --bracket");
  }
  if (!args.plot.empty()) check_output_path("--plot", args.plot);
  if (!args.report.empty()) check_output_path("--report", args.report);
  if (!args.markdown.empty()) check_output_path("--markdown", args.markdown);
  if (!args.grid.empty()) check_output_path("--grid", args.grid);
  const auto device = resolve_device(global);
  const auto attacks = make_attacks(args.attack, global.seed);
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
  if (!args.ensemble.empty()) {
    // The model and the others, combined into one model that the attacks attack as a whole.
    std::vector<Model> members = {loaded.model};
    for (const auto& path : args.ensemble) {
      members.push_back(load_model(path, device, unseal_options(args.sealed)).model);
    }
    loaded.model = make_ensemble(members, parse_ensemble_mode(args.ensemble_mode));
  }
  const auto data = load_data(args.data, args.split == "train" ? Split::Train : Split::Test);
  if (args.bracket) {
    run_bracket(global, args, loaded.model, args.model, data, attacks);
    return;
  }
  if (!attacks.empty()) {
    std::unique_ptr<Progress> progress;
    auto robustness = evaluate(
        loaded.model, data, attacks, args.attack.epsilons,
        EvaluationOptions().batch_size(args.batch_size).early_stop(!args.no_early_stop),
        [&](const std::string& attack, double eps, int64_t done, int64_t total) {
          if (done == 1) {
            progress = std::make_unique<Progress>(fmt::format("{} eps {:.4g}", attack, eps),
                                                  total, global.quiet);
          }
          progress->update(done, fmt::format("batch {}/{}", done, total));
          if (done == total) progress->finish(fmt::format("{} batches", total));
        });
    robustness.model = fmt::format("{} ({})", args.model, loaded.model.name());
    fmt::print("Bulwark robustness report\n");
    fmt::print("  model     {}\n", robustness.model);
    fmt::print("  data      {} ({} samples)\n", data.name, data.size());
    fmt::print("  clean accuracy {:.2f}%, {:.1f}s in all\n", 100 * robustness.clean_accuracy,
               robustness.seconds);
    print_robustness(robustness);
    if (!args.report.empty()) write_report(robustness, args.report);
    if (!args.markdown.empty()) write_report(robustness, args.markdown);
    if (!args.grid.empty()) {
      // The last attack at the largest budget, on the first eight samples.
      const auto eps = *std::max_element(args.attack.epsilons.begin(), args.attack.epsilons.end());
      auto attack = attacks.back()->with_budget(eps, false);
      const auto shown = data.head(8);
      const auto x = shown.images.to(device);
      const auto result = attack->run(loaded.model, x, shown.labels.to(device));
      write_image_grid(args.grid, x, result.adversarial, predict(loaded.model, x),
                       predict(loaded.model, result.adversarial), shown.labels);
      spdlog::info("wrote {} ({} at eps {})", args.grid, attack->name(), eps);
    }
    return;
  }
  if (!args.markdown.empty() || !args.grid.empty()) {
    throw Error("--markdown and --grid need --attacks (the clean-only report is JSON)");
  }
  const auto report = clean_accuracy(loaded.model, data, args.batch_size);

  fmt::print("Bulwark robustness report\n");
  fmt::print("  model     {} ({})\n", args.model, loaded.model.name());
  fmt::print("  data      {} ({} samples)\n", data.name, data.size());
  fmt::print("  device    {}, {} threads\n", device.str(), at::get_num_threads());
  print_accuracy("  clean accuracy", report);
  fmt::print("  per class");
  for (size_t c = 0; c < report.per_class_accuracy.size(); ++c) {
    fmt::print("{} {}: {:.1f}%", c == 0 ? "" : ",", data.class_label(static_cast<int64_t>(c)),
               100 * report.per_class_accuracy[c]);
  }
  fmt::print("\n");
  std::optional<BackdoorEvaluation> backdoor;
  if (!args.trigger.empty()) {
    const auto trigger = Trigger::parse(args.trigger);
    backdoor = evaluate_backdoor(loaded.model, data, trigger,
                                 BackdoorOptions().target(args.target));
    fmt::print("  backdoor ({} to class {}): attack success {:.2f}% on the {} triggered images of "
               "other classes\n",
               trigger.describe(), data.class_label(args.target),
               100 * backdoor->attack_success_rate, backdoor->triggered);
  } else {
    fmt::print("  clean accuracy only: no --attacks given. For robust accuracy name attacks and "
               "budgets, e.g. --attacks autoattack-fast --eps 0.1 (or autoattack for the "
               "standard, or fgsm,pgd,cw)\n");
  }

  if (!args.report.empty()) {
    nlohmann::json j = {{"model", args.model},
                        {"model_name", loaded.model.name()},
                        {"data", data.name},
                        {"samples", data.size()},
                        {"clean_accuracy", report.accuracy},
                        {"correct", report.correct},
                        {"per_class_accuracy", report.per_class_accuracy},
                        {"class_names", data.class_names},
                        {"seconds", report.seconds},
                        {"samples_per_second", report.samples_per_second},
                        {"device", device.str()},
                        {"threads", at::get_num_threads()},
                        {"bulwark_version", BULWARK_VERSION_STRING}};
    if (backdoor) {
      j["backdoor"] = {{"trigger", args.trigger},
                       {"target", args.target},
                       {"attack_success_rate", backdoor->attack_success_rate},
                       {"triggered", backdoor->triggered}};
    }
    write_text_atomically(args.report, j.dump(2) + "\n");
    spdlog::info("wrote {}", args.report);
  }
}

}  // namespace

Command add_evaluate_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<EvaluateArgs>();
  auto* cmd = app.add_subcommand(
      "evaluate", "Evaluate a model (Bulwark checkpoint or TorchScript file) on a data set");
  add_data_options(cmd, args->data);
  cmd->add_option("--model", args->model, "Model file")->required();
  add_sealed_options(cmd, args->sealed);
  cmd->add_option("--split", args->split, "Which split")->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--batch-size", args->batch_size, "Batch size")->check(positive<int64_t>());
  cmd->add_option("--report", args->report, "Write the report as JSON to this file");
  cmd->add_option("--markdown", args->markdown, "Write the report as Markdown to this file");
  cmd->add_option("--grid", args->grid,
                  "Write a PNG of 8 clean and adversarial images with predictions (last attack, "
                  "largest eps)");
  add_attack_options(cmd, args->attack);
  cmd->add_option("--ensemble", args->ensemble,
                  "More model files: evaluate the ensemble of --model and these (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--ensemble-mode", args->ensemble_mode, "How the ensemble combines its members")
      ->check(CLI::IsMember({"mean-logits", "mean-probabilities", "vote"}));
  cmd->add_flag("--no-early-stop", args->no_early_stop,
                "Run every attack step on every sample (default: stop on fooled samples)");
  cmd->add_flag("--bracket", args->bracket,
                "L2 only: also certify the model's smoothed classifier (randomized smoothing) and "
                "attack it, and report per eps its certified accuracy (lower bound) and accuracy "
                "under attack (upper bound) beside the base model's robust accuracy");
  cmd->add_option("--plot", args->plot, "--bracket: write the bracket as an SVG plot");
  cmd->add_option("--sigma", args->sigma, "--bracket: smoothing noise level")
      ->check(positive<double>());
  cmd->add_option("--n0", args->n0, "--bracket: draws that select the class")
      ->check(positive<int64_t>());
  cmd->add_option("--n", args->n,
                  "--bracket: draws that bound its probability (Cohen et al.: 100000)")
      ->check(positive<int64_t>());
  cmd->add_option("--alpha", args->alpha, "--bracket: failure probability of each certificate")
      ->check(in_interval(0.0, 1.0, Ends::Open));
  cmd->add_option("--smoothed-steps", args->smoothed_steps,
                  "--bracket: L2 PGD steps of the attack on the smoothed classifier")
      ->check(positive<int64_t>());
  cmd->add_option("--eot-draws", args->eot_draws,
                  "--bracket: noise draws per step of the attack on the smoothed classifier")
      ->check(positive<int64_t>());
  cmd->add_option("--trigger", args->trigger,
                  "Also measure a backdoor: the attack success of this trigger "
                  "(checkerboard:<size> or square:<size>, optionally @<row>,<col>) to --target");
  cmd->add_option("--target", args->target, "--trigger: the backdoor's target class")
      ->check(non_negative<int64_t>());
  return {cmd, [&global, args] { run_evaluate(global, *args); }};
}

}  // namespace bulwark::cli
