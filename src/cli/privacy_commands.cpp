// `bulwark audit-privacy`: a membership-inference audit of a trained model on its own training
// samples against held-out ones (loss threshold, and offline LiRA with shadow models).
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "bulwark/bulwark.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/validators.h"
#include "cli/sealed_options.h"
#include "core/check.h"

namespace bulwark::cli {
namespace {

struct AuditArgs {
  DataOptions data;
  std::string model;
  SealedArgs sealed;
  int64_t train_samples = 0;
  int64_t members = 1000;
  int64_t shadow_models = 0;
  int64_t shadow_epochs = 10;
  int64_t shadow_batch_size = 128;
  double shadow_lr = 1e-3;
  int64_t batch_size = 500;
  std::string report, markdown;
};

void run_audit(const GlobalOptions& global, const AuditArgs& args) {
  if (!args.report.empty()) check_output_path("--report", args.report);
  if (!args.markdown.empty()) check_output_path("--markdown", args.markdown);
  const auto device = resolve_device(global);
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
  const auto train = load_data(args.data, Split::Train);
  const auto test = load_data(args.data, Split::Test);
  const int64_t trained_on = args.train_samples > 0 ? args.train_samples : train.size();
  BULWARK_CHECK(trained_on <= train.size(),
                "--train-samples {} exceeds the {} samples of the training split", trained_on,
                train.size());
  const int64_t count = std::min({args.members, trained_on, test.size()});
  BULWARK_CHECK(count >= 1, "no samples to audit: --members {}, {} training samples, {} test",
                args.members, trained_on, test.size());
  const auto members = train.head(count);
  const auto non_members = test.head(count);
  // Population for the shadow models: neither audited set, nor the model's training samples.
  const auto rest_of_train = train.slice(trained_on, train.size());
  const auto rest_of_test = test.slice(count, test.size());
  const Dataset population(at::cat({rest_of_train.images, rest_of_test.images}),
                           at::cat({rest_of_train.labels, rest_of_test.labels}), train.num_classes,
                           train.name + " population");

  ShadowTrainer shadow_trainer;
  if (args.shadow_models > 0) {
    BULWARK_CHECK(loaded.spec.has_value(),
                  "--shadow-models needs a Bulwark model file (its architecture is copied for "
                  "the shadows); '{}' is TorchScript: use --shadow-models 0",
                  args.model);
    const auto spec = *loaded.spec;
    shadow_trainer = [&, spec](const Dataset& shadow_train, uint64_t seed) {
      manual_seed(seed);
      auto shadow = make_model(spec);
      shadow.to(device);
      Trainer trainer(shadow, TrainerOptions()
                                  .epochs(args.shadow_epochs)
                                  .batch_size(args.shadow_batch_size)
                                  .learning_rate(args.shadow_lr)
                                  .seed(seed)
                                  .keep_best(false));
      Progress progress("shadow model", args.shadow_epochs, global.quiet);
      trainer.on_epoch([&](const EpochMetrics& m) {
        progress.update(m.epoch + 1, fmt::format("train accuracy {:.1f}%", 100 * m.train_accuracy));
      });
      trainer.fit(shadow_train);
      progress.finish(fmt::format("{} samples", shadow_train.size()));
      return shadow;
    };
  }
  spdlog::info("auditing {}: {} training samples against {} test samples{}", args.model, count,
               count,
               args.shadow_models > 0
                   ? fmt::format(", LiRA with {} shadow models", args.shadow_models)
                   : std::string());
  const auto report = audit_membership(loaded.model, members, non_members,
                                       MembershipAuditOptions()
                                           .shadow_models(args.shadow_models)
                                           .shadow_train_size(std::min(trained_on,
                                                                       population.size() / 2))
                                           .batch_size(args.batch_size)
                                           .seed(global.seed),
                                       population, shadow_trainer);
  fmt::print("Bulwark membership-inference audit: {}\n", args.model);
  fmt::print("  members      {} (accuracy {:.2f}%, mean loss {:.4f})\n", report.members,
             100 * report.member_accuracy, report.member_loss);
  fmt::print("  non-members  {} (accuracy {:.2f}%, mean loss {:.4f})\n", report.non_members,
             100 * report.non_member_accuracy, report.non_member_loss);
  for (const auto& a : report.attacks) {
    fmt::print("  {:<15} AUC {:.4f}  balanced accuracy {:.4f}  TPR {:.4f} at 0.1% FPR, {:.4f} "
               "at 1% FPR\n",
               a.attack, a.auc, a.balanced_accuracy, a.tpr_at_0_1_fpr, a.tpr_at_1_fpr);
  }
  if (!args.report.empty()) write_text_atomically(args.report, report.to_json());
  if (!args.markdown.empty()) {
    write_text_atomically(args.markdown,
                          report.to_markdown(fmt::format("Membership-inference audit of {}",
                                                         args.model)));
  }
}

}  // namespace

Command add_audit_privacy_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<AuditArgs>();
  auto* cmd = app.add_subcommand(
      "audit-privacy",
      "Measure membership leakage: can an attacker tell the model's training samples from "
      "test samples?");
  add_data_options(cmd, args->data, /*with_limit=*/false);
  cmd->add_option("--model", args->model, "Model file")->required();
  add_sealed_options(cmd, args->sealed);
  cmd->add_option("--train-samples", args->train_samples,
                  "The model trained on the first N training samples (`train --limit N`; 0: all)")
      ->check(non_negative<int64_t>());
  cmd->add_option("--members", args->members,
                  "Audit this many training samples against as many test samples")
      ->check(positive<int64_t>());
  cmd->add_option("--shadow-models", args->shadow_models,
                  "Shadow models of the offline LiRA attack, trained like a standard `train` run "
                  "on samples outside both sets (0: loss-threshold attack only)")
      ->check(non_negative<int64_t>());
  cmd->add_option("--shadow-epochs", args->shadow_epochs, "Epochs of each shadow model")
      ->check(positive<int64_t>());
  cmd->add_option("--shadow-batch-size", args->shadow_batch_size, "Shadow models' batch size")
      ->check(positive<int64_t>());
  cmd->add_option("--shadow-lr", args->shadow_lr, "Shadow models' learning rate (Adam)")
      ->check(positive<double>());
  cmd->add_option("--batch-size", args->batch_size, "Batch size of the predictions")
      ->check(positive<int64_t>());
  cmd->add_option("--report", args->report, "Write the report as JSON to this file");
  cmd->add_option("--markdown", args->markdown, "Write the report as Markdown to this file");
  return {cmd, [&global, args] { run_audit(global, *args); }};
}

}  // namespace bulwark::cli
