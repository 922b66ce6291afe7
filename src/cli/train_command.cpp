// `bulwark train`: trains a built-in model (standard, adversarial or DP-SGD), with progress,
// checkpoints, resume and a JSON history.
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>

#include "bulwark/bulwark.h"
#include "cli/cli_common.h"
#include "cli/progress.h"
#include "cli/validators.h"

namespace bulwark::cli {
namespace fs = std::filesystem;
namespace {

struct TrainArgs {
  DataOptions data;
  std::string arch = "small-cnn";
  std::string out;
  int64_t epochs = 1;
  // Unset: the strategy's recipe (default_recipe).
  std::optional<int64_t> batch_size;
  std::optional<std::string> optimizer;
  std::optional<double> learning_rate;
  double momentum = 0.9;
  double weight_decay = 0.0;
  std::string strategy = "standard";
  double eps = 0.1;
  int64_t attack_steps = 10;
  double attack_step_size = 0.0;
  double beta = 6.0;
  double sigma = 0.25;
  int64_t warmup_epochs = 0;
  std::optional<std::string> schedule;
  std::vector<int64_t> milestones;
  double gamma = 0.1;
  int64_t validation_samples = 1000;
  int64_t eval_steps = 20;
  std::string checkpoint;
  bool resume = false;
  bool keep_last = false;
  std::string report;
  // DP-SGD.
  bool dp = false;
  double target_epsilon = 0.0;
  double noise_multiplier = 1.0;
  double delta = 1e-5;
  double max_grad_norm = 1.0;
  std::string clipping = "flat";
  int64_t physical_batch_size = 0;
  std::string accountant = "rdp";
  double epsilon_budget = 0.0;
  bool secure_rng = false;
};

// The recipes a strategy trains with when --optimizer, --lr, --schedule and --batch-size are
// not given, from the library's default_recipe.
std::string recipes_help() {
  std::string text = "Default recipes (an option given wins):";
  const auto line = [&](const std::string& who, const TrainingRecipe& r) {
    text += fmt::format("\n  {:<32} {} {:g}, {}, batch {}", who, to_string(r.optimizer),
                        r.learning_rate, to_string(r.schedule.kind()), r.batch_size);
  };
  line("standard, gaussian", default_recipe(StrategyKind::Standard, false));
  line("fast-at, pgd-at, trades, mart", default_recipe(StrategyKind::FastAT, false));
  line("--dp (any strategy)", default_recipe(StrategyKind::Standard, true));
  return text;
}

void run_train(const GlobalOptions& global, const TrainArgs& args) {
  check_output_path("--out", args.out);
  const auto checkpoint = args.checkpoint.empty() ? args.out + ".ckpt" : args.checkpoint;
  check_output_path("--checkpoint", checkpoint);
  if (!args.report.empty()) check_output_path("--report", args.report);
  const auto device = resolve_device(global);
  manual_seed(global.seed);
  const auto train = load_data(args.data, Split::Train);
  const auto test = load_data(args.data, Split::Test);
  const auto validation = test.head(args.validation_samples);

  ModelSpec spec;
  spec.arch = args.arch;
  spec.in_channels = train.images.size(1);
  spec.image_size = train.images.size(2);
  spec.num_classes = train.num_classes;
  auto model = make_model(spec);
  model.to(device);

  const auto strategy = parse_strategy(args.strategy);
  std::optional<OptimizerKind> optimizer;
  if (args.optimizer) optimizer = parse_optimizer(*args.optimizer);
  std::optional<ScheduleOptions> schedule;
  if (args.schedule) {
    schedule = ScheduleOptions(parse_schedule(*args.schedule))
                   .milestones(args.milestones)
                   .gamma(args.gamma);
  }
  Trainer trainer(model, TrainerOptions()
                             .epochs(args.epochs)
                             .batch_size(args.batch_size)
                             .optimizer(optimizer)
                             .learning_rate(args.learning_rate)
                             .schedule(schedule)
                             .momentum(args.momentum)
                             .weight_decay(args.weight_decay)
                             .seed(global.seed)
                             .strategy(StrategyOptions(strategy, args.eps)
                                           .steps(args.attack_steps)
                                           .step_size(args.attack_step_size)
                                           .beta(args.beta)
                                           .sigma(args.sigma)
                                           .warmup_epochs(args.warmup_epochs))
                             .eval_eps(args.eps)
                             .eval_steps(args.eval_steps)
                             .checkpoint(checkpoint)
                             .keep_best(!args.keep_last)
                             .differential_privacy(args.dp)
                             .privacy(DPSGDOptions()
                                          .noise_multiplier(args.noise_multiplier)
                                          .max_grad_norm(args.max_grad_norm)
                                          .clipping(parse_clipping(args.clipping))
                                          .physical_batch_size(args.physical_batch_size)
                                          .secure_rng(args.secure_rng)
                                          .target_epsilon(args.target_epsilon)
                                          .delta(args.delta)
                                          .epsilon_budget(args.epsilon_budget)
                                          .accountant(args.accountant)));
  if (args.resume && fs::exists(checkpoint)) {
    trainer.resume(checkpoint);
    spdlog::info("resumed from {} after epoch {}", checkpoint, trainer.history().size());
  }
  const auto& recipe = trainer.recipe();
  spdlog::info("training {} ({}, eps {}) on {} ({} samples) for {} epoch(s), {} threads",
               args.arch, args.strategy, args.eps, train.name, train.size(), args.epochs,
               at::get_num_threads());
  spdlog::info("{} {:g}, {} schedule, batch {} ({})", to_string(recipe.optimizer),
               recipe.learning_rate, to_string(recipe.schedule.kind()), recipe.batch_size,
               recipe.source);
  std::unique_ptr<Progress> progress;
  trainer.on_batch([&](const BatchProgress& p) {
    if (p.batch == 0) {
      progress = std::make_unique<Progress>(fmt::format("epoch {}/{}", p.epoch + 1, p.epochs),
                                            p.batches, global.quiet);
    }
    // The last epoch's validation figures stay in view while the next one trains.
    std::string last;
    if (!trainer.history().empty() && trainer.history().back().clean_accuracy >= 0) {
      const auto& m = trainer.history().back();
      last = fmt::format(" | val clean {:.1f}%", 100 * m.clean_accuracy);
      if (m.robust_accuracy >= 0) last += fmt::format(" robust {:.1f}%", 100 * m.robust_accuracy);
    }
    progress->update(p.batch + 1,
                     fmt::format("loss {:.3f} acc {:.1f}% lr {:.2g} eps {:.3g} {:.0f} samples/s{}",
                                 p.loss, 100 * p.running_accuracy, p.learning_rate, p.eps,
                                 p.samples_per_second, last));
  });
  trainer.on_epoch([&](const EpochMetrics& m) {
    if (!progress) return;
    std::string validated;
    if (m.clean_accuracy >= 0) {
      validated = fmt::format(", validation clean {:.2f}%", 100 * m.clean_accuracy);
      if (m.robust_accuracy >= 0) {
        validated += fmt::format(" robust {:.2f}% (PGD-{} eps {:g})", 100 * m.robust_accuracy,
                                 args.eval_steps, args.eps);
      }
      if (m.best) validated += ", best so far";
    }
    if (m.epsilon >= 0) {
      validated += fmt::format(", epsilon {:.3f} spent (delta {:g}), {:.0f}% of samples clipped",
                               m.epsilon, args.delta, 100 * m.clipped_fraction);
    }
    progress->finish(fmt::format("loss {:.4f}, train accuracy {:.2f}%{}, {:.0f} samples/s, "
                                 "{:.0f}s + {:.0f}s validation",
                                 m.train_loss, 100 * m.train_accuracy, validated,
                                 m.samples_per_second, m.seconds, m.eval_seconds));
  });
  trainer.fit(train, validation);
  save_model(model, spec, args.out);
  spdlog::info("saved {}{}", args.out,
               trainer.best_epoch() >= 0 && !args.keep_last
                   ? fmt::format(" (weights of epoch {}, the best on validation)",
                                 trainer.best_epoch() + 1)
                   : std::string());
  print_accuracy(fmt::format("clean test accuracy of {}", args.arch), clean_accuracy(model, test));
  if (!args.report.empty()) {
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& m : trainer.history()) {
      epochs.push_back({{"epoch", m.epoch + 1},
                        {"train_loss", m.train_loss},
                        {"train_accuracy", m.train_accuracy},
                        {"seconds", m.seconds},
                        {"samples_per_second", m.samples_per_second},
                        {"learning_rate", m.learning_rate},
                        {"eps", m.eps},
                        {"validation_clean_accuracy", m.clean_accuracy},
                        {"validation_robust_accuracy", m.robust_accuracy},
                        {"eval_seconds", m.eval_seconds},
                        {"best", m.best}});
      if (args.dp) {
        epochs.back()["epsilon"] = m.epsilon;
        epochs.back()["clipped_fraction"] = m.clipped_fraction;
      }
    }
    nlohmann::json j = {{"arch", args.arch},
                              {"strategy", args.strategy},
                              {"eps", args.eps},
                              {"attack_steps", args.attack_steps},
                              {"beta", args.beta},
                              {"optimizer", to_string(recipe.optimizer)},
                              {"learning_rate", recipe.learning_rate},
                              {"schedule", to_string(recipe.schedule.kind())},
                              {"batch_size", recipe.batch_size},
                              {"recipe", recipe.source},
                              {"epochs", epochs},
                              {"best_epoch", trainer.best_epoch() + 1},
                              {"train_samples", train.size()},
                              {"validation_samples", validation.size()},
                              {"eval_steps", args.eval_steps},
                              {"threads", at::get_num_threads()},
                              {"bulwark_version", BULWARK_VERSION_STRING}};
    if (args.dp) {
      const auto spent = trainer.privacy_spent();
      j["privacy"] = {{"epsilon", spent.epsilon},
                      {"delta", args.delta},
                      {"noise_multiplier", trainer.noise_multiplier()},
                      {"max_grad_norm", args.max_grad_norm},
                      {"clipping", args.clipping},
                      {"sample_rate", static_cast<double>(recipe.batch_size) /
                                          static_cast<double>(train.size())},
                      {"accountant", args.accountant},
                      {"secure_rng", args.secure_rng},
                      {"stopped_at_budget", trainer.stopped_at_budget()}};
    }
    write_text_atomically(args.report, j.dump(2) + "\n");
    spdlog::info("wrote {}", args.report);
  }
}

}  // namespace

Command add_train_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a built-in model and save it");
  add_data_options(cmd, args->data);
  cmd->add_option("--arch", args->arch, "Architecture")
      ->check(CLI::IsMember(model_architectures()));
  cmd->add_option("--out", args->out, "Where to write the trained model")->required();
  cmd->add_option("--epochs", args->epochs, "Epochs")->check(positive<int64_t>());
  cmd->add_option("--batch-size", args->batch_size,
                  "Batch size (default: the strategy's recipe, see below)")
      ->check(positive<int64_t>());
  cmd->add_option("--optimizer", args->optimizer, "Optimizer (default: the strategy's recipe)")
      ->check(CLI::IsMember({"sgd", "adam"}));
  cmd->add_option("--lr", args->learning_rate,
                  "Learning rate, the peak of one-cycle (default: the strategy's recipe)")
      ->check(positive<double>());
  cmd->add_option("--momentum", args->momentum, "SGD momentum")->check(non_negative<double>());
  cmd->add_option("--weight-decay", args->weight_decay, "Weight decay")
      ->check(non_negative<double>());
  cmd->add_option("--strategy", args->strategy, "Training strategy")
      ->check(CLI::IsMember({"standard", "pgd-at", "trades", "mart", "fast-at", "gaussian"}));
  cmd->add_option("--eps", args->eps,
                  "Budget (L-inf) of adversarial training and of the per-epoch robust accuracy")
      ->check(non_negative<double>());
  cmd->add_option("--attack-steps", args->attack_steps,
                  "PGD steps of pgd-at, trades and mart (fast-at takes one)")
      ->check(positive<int64_t>());
  cmd->add_option("--attack-step-size", args->attack_step_size,
                  "PGD step size (0: 2.5 eps / steps; fast-at: 1.25 eps)")
      ->check(non_negative<double>());
  cmd->add_option("--beta", args->beta, "TRADES beta / MART lambda")->check(non_negative<double>());
  cmd->add_option("--sigma", args->sigma,
                  "Noise level of --strategy gaussian (the base model of `bulwark certify`)")
      ->check(positive<double>());
  cmd->add_option("--warmup-epochs", args->warmup_epochs,
                  "Raise eps linearly from 0 over these epochs")
      ->check(non_negative<int64_t>());
  cmd->add_option("--schedule", args->schedule,
                  "Learning-rate schedule (default: the strategy's recipe)")
      ->check(CLI::IsMember({"constant", "cosine", "multistep", "one-cycle"}));
  cmd->add_option("--milestones", args->milestones,
                  "multistep: epochs (0-based) where the rate drops (default: 50% and 75%)")
      ->delimiter(',')
      ->check(non_negative<int64_t>());
  cmd->add_option("--gamma", args->gamma, "multistep: the factor at each milestone")
      ->check(in_interval(0.0, 1.0, Ends::OpenLow));
  cmd->add_option("--validation-samples", args->validation_samples,
                  "Test images measured after each epoch (clean and PGD robust accuracy)")
      ->check(non_negative<int64_t>());
  cmd->add_option("--eval-steps", args->eval_steps, "PGD steps of the per-epoch robust accuracy")
      ->check(positive<int64_t>());
  cmd->add_option("--checkpoint", args->checkpoint,
                  "Checkpoint written after every epoch (default: <out>.ckpt)");
  cmd->add_flag("--resume", args->resume, "Continue from --checkpoint if it exists");
  cmd->add_flag("--keep-last", args->keep_last,
                "Save the last epoch's weights (default: the best epoch on validation)");
  cmd->add_option("--report", args->report, "Write the per-epoch history as JSON");
  cmd->add_flag("--dp", args->dp,
                "Train with DP-SGD: Poisson sampling at rate batch-size/N, per-sample clipping, "
                "Gaussian noise");
  cmd->add_option("--target-epsilon", args->target_epsilon,
                  "DP: calibrate the noise so that all epochs spend this epsilon (0: use "
                  "--noise-multiplier)")
      ->check(non_negative<double>());
  cmd->add_option("--noise-multiplier", args->noise_multiplier,
                  "DP: noise standard deviation over the clipping norm (without --target-epsilon)")
      ->check(non_negative<double>());
  cmd->add_option("--delta", args->delta, "DP: delta of the reported epsilon")
      ->check(in_interval(0.0, 1.0, Ends::Open));
  cmd->add_option("--max-grad-norm", args->max_grad_norm, "DP: per-sample clipping norm C")
      ->check(positive<double>());
  cmd->add_option("--clipping", args->clipping, "DP: clip the whole gradient or each layer")
      ->check(CLI::IsMember({"flat", "per-layer"}));
  cmd->add_option("--physical-batch-size", args->physical_batch_size,
                  "DP: rows per forward/backward pass (0: the whole batch; memory only)")
      ->check(non_negative<int64_t>());
  cmd->add_option("--accountant", args->accountant, "DP: privacy accountant")
      ->check(CLI::IsMember({"rdp", "prv"}));
  cmd->add_option("--epsilon-budget", args->epsilon_budget,
                  "DP: stop before a step would spend more than this epsilon (0: none)")
      ->check(non_negative<double>());
  cmd->add_flag("--secure-rng", args->secure_rng,
                "DP: draw the noise from the OS's cryptographic source (not reproducible)");
  cmd->footer(recipes_help());
  return {cmd, [&global, args] { run_train(global, *args); }};
}

}  // namespace bulwark::cli
