#pragma once
// Private: what `bulwark patch` and `bulwark sticker` share: the options of training a
// perturbation over random views (EOT), the data, progress, and the report's parts.

#include <CLI/CLI.hpp>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bulwark/bulwark.h"
#include "cli/cli_common.h"
#include "cli/progress.h"
#include "cli/sealed_options.h"

namespace bulwark::cli {

// Options both commands share.
struct EOTArgs {
  DataOptions data;
  std::string model;
  SealedArgs sealed;
  std::string out, report, grid;
  int64_t target = -1;
  int64_t steps = 0;
  int64_t batch_size = 32;
  double learning_rate = 0;
  int64_t train_samples = 5000;
  int64_t test_samples = 1000;
  int64_t views = 10;
  std::vector<double> range_factors = {0, 1, 2};
  // Transforms of the whole view.
  double rotation = 0, scale_min = 1, scale_max = 1, translate = 0, brightness = 0,
         contrast_min = 1, contrast_max = 1, blur = 0, noise = 0;

  TransformOptions transforms() const {
    return TransformOptions()
        .rotation(rotation)
        .scale(scale_min, scale_max)
        .translate(translate)
        .brightness(brightness)
        .contrast(contrast_min, contrast_max)
        .blur(blur)
        .noise(noise);
  }
};

/// The options of EOTArgs on `cmd`; `what` names the --out file.
void add_eot_options(CLI::App* cmd, EOTArgs& args, const std::string& what);

/// @throws Error unless --out, --report and --grid (when given) can be written.
void check_outputs(const EOTArgs& args);

// The training and held-out data, both of class `only_class` if it is >= 0.
std::pair<Dataset, Dataset> load_eot_data(const EOTArgs& args, int64_t only_class,
                                          c10::Device device);

// "patch.png" → "patch-size0.05.png" when several sizes are trained.
std::filesystem::path with_suffix(const std::filesystem::path& path, const std::string& suffix);

/// Shows the training steps in `progress` (made at the first step).
EOTCallback progress_callback(std::unique_ptr<Progress>& progress, const std::string& label,
                              const GlobalOptions& global);

nlohmann::json to_json(const TransformOptions& t);
nlohmann::json to_json(const EOTEvaluation& e);

/// The mean of the last tenth of `values` (at least one).
double mean_of_last_tenth(const std::vector<double>& values);

/// The evaluation's example images and views as a PNG grid (a warning when there is none).
void write_grid(const std::filesystem::path& path, const EOTEvaluation& e);

/// The report's fields both commands have.
nlohmann::json report_header(const std::string& attack, const EOTArgs& args, const Dataset& train,
                             const Dataset& test, const LoadedModel& loaded, c10::Device device);

/// One line of the held-out evaluation at transformation ranges x `factor`.
void print_evaluation_line(double factor, const EOTEvaluation& e);

}  // namespace bulwark::cli
