#pragma once
// Private helpers the subcommands share: device, data and output-path options.

#include <CLI/CLI.hpp>
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "bulwark/data/dataset.h"
#include "bulwark/data/idx.h"
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

/// @throws Error unless `path` can be written: its directory exists and it is no directory.
void check_output_path(const std::string& option, const std::filesystem::path& path);

}  // namespace bulwark::cli
