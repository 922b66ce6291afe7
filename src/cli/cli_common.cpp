#include "cli/cli_common.h"

#include <fmt/format.h>
#include <torch/cuda.h>

#include "bulwark/attacks/auto_attack.h"
#include "bulwark/attacks/carlini_wagner.h"
#include "bulwark/attacks/fgsm.h"
#include "bulwark/attacks/pgd.h"
#include "bulwark/data/cifar10.h"
#include "cli/validators.h"
#include "core/check.h"

namespace bulwark::cli {
namespace fs = std::filesystem;

c10::Device resolve_device(const GlobalOptions& global) {
  if (global.device == "cuda") {
    BULWARK_CHECK(torch::cuda::is_available(),
                  "--device cuda: no CUDA device is visible to LibTorch (use --device cpu)");
    return c10::Device(c10::kCUDA, 0);
  }
  return c10::Device(c10::kCPU);
}

void add_data_options(CLI::App* cmd, DataOptions& data, bool with_limit) {
  cmd->add_option("--data", data.name, "Data set")
      ->check(CLI::IsMember({"fashion-mnist", "mnist", "cifar10"}));
  cmd->add_option("--data-dir", data.directory,
                  "Directory of the data set files (default for fashion-mnist: "
                  "/usr/share/datasets/fashion-mnist)");
  if (with_limit) {
    cmd->add_option("--limit", data.limit, "Use only the first N samples (0: all)")
        ->check(non_negative<int64_t>());
  }
}

Dataset load_data(const DataOptions& options, Split split) {
  Dataset data;
  if (options.name == "fashion-mnist") {
    data = load_fashion_mnist(
        split, options.directory.empty() ? default_fashion_mnist_dir() : fs::path(options.directory));
  } else {
    BULWARK_CHECK(!options.directory.empty(), "--data {} needs --data-dir", options.name);
    data = options.name == "mnist" ? load_mnist_format(options.directory, split, "mnist")
                                   : load_cifar10(options.directory, split);
  }
  return options.limit > 0 ? data.head(options.limit) : data;
}

void check_output_path(const std::string& option, const fs::path& path) {
  const auto directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
  BULWARK_CHECK(fs::is_directory(directory), "{}: directory '{}' does not exist", option,
                directory.string());
  BULWARK_CHECK(!fs::is_directory(path), "{}: '{}' is a directory", option, path.string());
}

void print_accuracy(const std::string& title, const AccuracyReport& report) {
  fmt::print("{}: {:.2f}% ({} / {}) in {:.1f}s, {:.0f} samples/s\n", title,
             100 * report.accuracy, report.correct, report.total, report.seconds,
             report.samples_per_second);
}

void add_attack_options(CLI::App* cmd, AttackArgs& args) {
  cmd->add_option("--attacks", args.attacks,
                  "Attacks to run (comma-separated): fgsm, pgd, cw, autoattack, autoattack-fast "
                  "(the same verdict for far less compute), or AutoAttack's components apgd-ce, "
                  "apgd-dlr, apgd-t, fab, fab-t, square")
      ->delimiter(',');
  cmd->add_option("--eps", args.epsilons, "Budgets (comma-separated), in input units")
      ->delimiter(',')
      ->check(non_negative<double>());
  cmd->add_option("--norm", args.norm, "Norm of fgsm and pgd")
      ->check(CLI::IsMember({"linf", "l2"}));
  cmd->add_option("--steps", args.steps, "PGD steps")->check(positive<int64_t>());
  cmd->add_option("--restarts", args.restarts, "PGD restarts")->check(positive<int64_t>());
  cmd->add_option("--cw-steps", args.cw_steps, "C&W Adam steps per search")
      ->check(positive<int64_t>());
  cmd->add_option("--cw-searches", args.cw_searches, "C&W binary-search steps over c")
      ->check(positive<int64_t>());
  cmd->add_option("--version", args.version,
                  "AutoAttack's version: standard (APGD-CE, APGD-T, FAB-T, Square), plus, or rand "
                  "(for randomised models)")
      ->check(CLI::IsMember({"standard", "plus", "rand"}));
  // The defaults the library picks per norm, as the help states them.
  const auto linf = fast_schedule(AutoAttackOptions(0).norm(Norm::Linf));
  const auto l2 = fast_schedule(AutoAttackOptions(0).norm(Norm::L2));
  cmd->add_option("--fast-steps", args.fast_steps,
                  fmt::format("autoattack-fast: iterations of APGD-CE (default: linf {}, l2 {})",
                              linf.ce_steps, l2.ce_steps))
      ->check(positive<int64_t>());
  cmd->add_option("--fast-targets", args.fast_targets,
                  fmt::format("autoattack-fast: runner-up classes APGD-T tries (default: linf "
                              "{}, l2 {})",
                              linf.targets, l2.targets))
      ->check(positive<int64_t>());
  cmd->add_option("--fast-target-steps", args.fast_target_steps,
                  fmt::format("autoattack-fast: iterations of APGD-T per target (default: linf "
                              "{}, l2 {})",
                              linf.target_steps, l2.target_steps))
      ->check(positive<int64_t>());
}

std::vector<std::shared_ptr<Attack>> make_attacks(const AttackArgs& args, uint64_t seed) {
  std::vector<std::shared_ptr<Attack>> attacks;
  const auto norm = parse_norm(args.norm);
  const double eps = args.epsilons.front();
  for (const auto& name : args.attacks) {
    if (name == "fgsm") {
      attacks.push_back(std::make_shared<FGSM>(FGSMOptions(eps).norm(norm)));
    } else if (name == "pgd") {
      attacks.push_back(std::make_shared<PGD>(PGDOptions(eps)
                                                  .norm(norm)
                                                  .steps(args.steps)
                                                  .restarts(args.restarts)
                                                  .seed(seed)));
    } else if (name == "cw") {
      attacks.push_back(std::make_shared<CarliniWagner>(
          CarliniWagnerOptions().steps(args.cw_steps).binary_search_steps(args.cw_searches)));
    } else if (name == "autoattack") {
      attacks.push_back(std::make_shared<AutoAttack>(
          AutoAttackOptions(eps).norm(norm).version(parse_auto_attack_version(args.version)).seed(seed)));
    } else if (name == "autoattack-fast") {
      attacks.push_back(std::make_shared<AutoAttack>(
          AutoAttackOptions(eps)
              .norm(norm)
              .version(AutoAttackVersion::Fast)
              .fast_steps(args.fast_steps)
              .fast_targets(args.fast_targets)
              .fast_target_steps(args.fast_target_steps)
              .seed(seed)));
    } else if (is_auto_attack_component(name)) {
      // A component alone, with the settings AutoAttack's custom version gives it.
      attacks.push_back(make_auto_attack_component(
          name, AutoAttackOptions(eps).norm(norm).version(AutoAttackVersion::Custom).seed(seed)));
    } else {
      throw Error(fmt::format(
          "--attacks: unknown attack '{}', expected fgsm, pgd, cw, autoattack, autoattack-fast, "
          "apgd-ce, apgd-dlr, apgd-t, fab, fab-t or square",
          name));
    }
  }
  return attacks;
}

}  // namespace bulwark::cli
