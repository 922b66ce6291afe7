// The `bulwark` command-line tool: thin, everything it does is a library call.
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "bulwark/config.h"
#include "bulwark/core/error.h"
#include "cli/commands.h"
#include "cli/validators.h"

namespace {

// Any error is one line on stderr and exit status 1.
int report_error(std::string message) {
  std::replace(message.begin(), message.end(), '\n', ' ');
  spdlog::shutdown();
  std::fprintf(stderr, "bulwark: error: %s\n", message.c_str());
  return 1;
}

// glibc's malloc hands LibTorch's large temporaries back to the kernel on every free and
// faults them in again page by page on the next step: about a sixth of an attack's or a
// training run's time on this project's machine. Keep up to 32 MB blocks on the heap instead
// (the MALLOC_*_ environment variables still win).
void tune_malloc() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (std::getenv("MALLOC_TOP_PAD_") == nullptr) mallopt(M_TOP_PAD, 64 << 20);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bulwark::cli;
  tune_malloc();
  GlobalOptions global;
  CLI::App app{"Bulwark: adversarial robustness and privacy for LibTorch models", "bulwark"};
  app.set_version_flag("--version", std::string("bulwark ") + BULWARK_VERSION_STRING);
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.add_option("--threads", global.threads,
                 "Intra-op threads for LibTorch (0: all cores; LibTorch's own default may be 1)")
      ->check(non_negative<int>());
  app.add_option("--seed", global.seed, "Seed for every random choice")
      ->check(non_negative<uint64_t>());
  app.add_option("--device", global.device, "Device to run on")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("-q,--quiet", global.quiet, "Print only results and errors");

  const std::vector<Command> commands = {add_info_command(app, global),
                                         add_train_command(app, global),
                                         add_evaluate_command(app, global),
                                         add_patch_command(app, global),
                                         add_sticker_command(app, global),
                                         add_detect_command(app, global),
                                         add_certify_command(app, global),
                                         add_audit_privacy_command(app, global),
                                         add_poison_command(app, global),
                                         add_inspect_data_command(app, global),
                                         add_scan_model_command(app, global),
                                         add_keygen_command(app, global),
                                         add_seal_command(app, global),
                                         add_unseal_command(app, global),
                                         add_sign_command(app, global),
                                         add_verify_command(app, global)};
  for (const auto& command : commands) command.app->fallthrough();

  auto logger = spdlog::stderr_color_mt("bulwark");
  logger->set_pattern("[%H:%M:%S] %v");
  spdlog::set_default_logger(logger);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return report_error(parse_error_text(e) + " (see bulwark --help)");
  }
  spdlog::set_level(global.quiet ? spdlog::level::warn : spdlog::level::info);
  at::set_num_threads(global.threads > 0
                          ? global.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  try {
    for (const auto& command : commands) {
      if (command.app->parsed()) command.run();
    }
  } catch (const c10::Error& e) {
    return report_error(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return report_error(e.what());
  }
  return 0;
}
