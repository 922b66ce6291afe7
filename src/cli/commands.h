#pragma once
// The bulwark subcommands. Each registers its options on a CLI11 subcommand and runs from the
// parsed values; main() sets up threads and logging, runs the chosen one, and turns any exception into one line on stderr and exit status 1.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace bulwark::cli {

/// Options every subcommand shares.
struct GlobalOptions {
  int threads = 0;  ///< 0: all cores
  uint64_t seed = 0;
  std::string device = "cpu";
  bool quiet = false;
};

/// A registered subcommand and what runs it once the command line is parsed.
struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

Command add_info_command(CLI::App& app, const GlobalOptions& global);
Command add_train_command(CLI::App& app, const GlobalOptions& global);
Command add_evaluate_command(CLI::App& app, const GlobalOptions& global);
Command add_patch_command(CLI::App& app, const GlobalOptions& global);
Command add_sticker_command(CLI::App& app, const GlobalOptions& global);
Command add_detect_command(CLI::App& app, const GlobalOptions& global);
Command add_certify_command(CLI::App& app, const GlobalOptions& global);
Command add_audit_privacy_command(CLI::App& app, const GlobalOptions& global);
Command add_poison_command(CLI::App& app, const GlobalOptions& global);
Command add_inspect_data_command(CLI::App& app, const GlobalOptions& global);
Command add_scan_model_command(CLI::App& app, const GlobalOptions& global);
Command add_keygen_command(CLI::App& app, const GlobalOptions& global);
Command add_seal_command(CLI::App& app, const GlobalOptions& global);
Command add_unseal_command(CLI::App& app, const GlobalOptions& global);
Command add_sign_command(CLI::App& app, const GlobalOptions& global);
Command add_verify_command(CLI::App& app, const GlobalOptions& global);

}  // namespace bulwark::cli
