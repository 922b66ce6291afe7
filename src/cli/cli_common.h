#pragma once
// Private helpers the subcommands share: device, data and output-path options.

#include <CLI/CLI.hpp>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/attacks/attack.h"
#include "bulwark/attacks/auto_attack.h"
#include "bulwark/data/dataset.h"
#include "bulwark/data/idx.h"
#include "bulwark/eval/accuracy.h"
#include "cli/commands.h"

namespace bulwark::cli {

/// The device of --device. @throws Error for cuda without a visible device.
c10::Device resolve_device(const GlobalOptions& global);

struct DataOptions {
  std::string name = "fashion-mnist";
  std::string directory;
  int64_t limit = 0;
};

/// --data and --data-dir, and --limit unless `with_limit` is false.
void add_data_options(CLI::App* cmd, DataOptions& data, bool with_limit = true);

/// The split of the chosen data set, cut to options.limit samples when it is > 0.
Dataset load_data(const DataOptions& options, Split split);

/// The attacks of --attacks (fgsm, pgd, cw, AutoAttack and its components) and their options.
struct AttackArgs {
  std::vector<std::string> attacks;
  std::vector<double> epsilons = {0.1};
  std::string norm = "linf";
  int64_t steps = 20;
  int64_t restarts = 1;
  int64_t cw_steps = 100;
  int64_t cw_searches = 9;
  std::string version = "standard";  ///< AutoAttack's version
  std::optional<int64_t> fast_steps = std::nullopt;  ///< unset: fast_schedule's value
  std::optional<int64_t> fast_targets = std::nullopt;
  std::optional<int64_t> fast_target_steps = std::nullopt;
};
/// --attacks, --eps, --norm, --steps, --restarts, --cw-steps, --cw-searches, --version.
void add_attack_options(CLI::App* cmd, AttackArgs& args);
/// The attacks named by args.attacks at the first budget (evaluate() sets the others).
/// @throws Error naming an unknown attack.
std::vector<std::shared_ptr<Attack>> make_attacks(const AttackArgs& args, uint64_t seed);

/// @throws Error unless `path` can be written: its directory exists and it is no directory.
void check_output_path(const std::string& option, const std::filesystem::path& path);

/// "<title>: 97.50% (975 / 1000) in 1.2s, 830 samples/s" on stdout.
void print_accuracy(const std::string& title, const AccuracyReport& report);

}  // namespace bulwark::cli
