// What `bulwark patch` and `bulwark sticker` share: options, data, progress, report parts.
#include "cli/physical_common.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "cli/validators.h"
#include "core/check.h"

namespace bulwark::cli {
namespace fs = std::filesystem;

void add_eot_options(CLI::App* cmd, EOTArgs& args, const std::string& what) {
  add_data_options(cmd, args.data, /*with_limit=*/false);
  cmd->add_option("--model", args.model, "Model file (Bulwark checkpoint or TorchScript)")
      ->required();
  add_sealed_options(cmd, args.sealed);
  cmd->add_option("--out", args.out, "Where to write the " + what + " as PNG")->required();
  cmd->add_option("--report", args.report, "Write a JSON report to this file");
  cmd->add_option("--grid", args.grid,
                  "Write a PNG of 8 test images and their views with predictions");
  cmd->add_option("--target", args.target, "Target class (-1: untargeted)")
      ->check(in_interval<int64_t>(-1, 1000));
  cmd->add_option("--steps", args.steps, "Adam steps")->check(positive<int64_t>());
  cmd->add_option("--batch-size", args.batch_size, "Views per step")->check(positive<int64_t>());
  cmd->add_option("--lr", args.learning_rate, "Adam learning rate")->check(positive<double>());
  cmd->add_option("--train-samples", args.train_samples,
                  "Training images, the first N of the training split (0: all)")
      ->check(non_negative<int64_t>());
  cmd->add_option("--test-samples", args.test_samples,
                  "Held-out images, the first N of the test split (0: all)")
      ->check(non_negative<int64_t>());
  cmd->add_option("--views", args.views, "Random views per held-out image")
      ->check(positive<int64_t>());
  cmd->add_option("--range-factors", args.range_factors,
                  "Also evaluate with the transformation ranges multiplied by these factors")
      ->delimiter(',')
      ->check(non_negative<double>());
  cmd->add_option("--rotation", args.rotation, "View rotation range in degrees (+-)")
      ->check(non_negative<double>());
  cmd->add_option("--scale-min", args.scale_min, "View zoom range, lower end")
      ->check(positive<double>());
  cmd->add_option("--scale-max", args.scale_max, "View zoom range, upper end")
      ->check(positive<double>());
  cmd->add_option("--translate", args.translate, "View shift range, fraction of the size (+-)")
      ->check(non_negative<double>());
  cmd->add_option("--brightness", args.brightness, "Brightness change range (+-)")
      ->check(non_negative<double>());
  cmd->add_option("--contrast-min", args.contrast_min, "Contrast factor range, lower end")
      ->check(non_negative<double>());
  cmd->add_option("--contrast-max", args.contrast_max, "Contrast factor range, upper end")
      ->check(non_negative<double>());
  cmd->add_option("--blur", args.blur, "Gaussian blur sigma range in pixels [0, v]")
      ->check(non_negative<double>());
  cmd->add_option("--noise", args.noise, "Gaussian noise sigma range [0, v]")
      ->check(non_negative<double>());
}

void check_outputs(const EOTArgs& args) {
  check_output_path("--out", args.out);
  if (!args.report.empty()) check_output_path("--report", args.report);
  if (!args.grid.empty()) check_output_path("--grid", args.grid);
}

std::pair<Dataset, Dataset> load_eot_data(const EOTArgs& args, int64_t only_class,
                                          c10::Device device) {
  auto load = [&](Split split, int64_t limit) {
    auto options = args.data;
    options.limit = 0;
    auto data = load_data(options, split);
    if (only_class >= 0) {
      BULWARK_CHECK(only_class < data.num_classes, "--class must be in [0, {}), got {}",
                    data.num_classes, only_class);
      const auto keep = data.labels.eq(only_class).nonzero().squeeze(1);
      data = Dataset(data.images.index_select(0, keep), data.labels.index_select(0, keep),
                     data.num_classes, data.name);
    }
    if (limit > 0) data = data.head(limit);
    return Dataset(data.images.to(device), data.labels.to(device), data.num_classes, data.name);
  };
  return {load(Split::Train, args.train_samples), load(Split::Test, args.test_samples)};
}

fs::path with_suffix(const fs::path& path, const std::string& suffix) {
  if (suffix.empty()) return path;
  return path.parent_path() / (path.stem().string() + suffix + path.extension().string());
}

EOTCallback progress_callback(std::unique_ptr<Progress>& progress, const std::string& label,
                              const GlobalOptions& global) {
  return [&progress, label, &global](const EOTStep& s) {
    if (s.step == 1) progress = std::make_unique<Progress>(label, s.steps, global.quiet);
    progress->update(s.step, fmt::format("loss {:.3f} success {:.0f}%", s.loss,
                                         100 * s.success_rate));
    if (s.step == s.steps) progress->finish(fmt::format("loss {:.3f}", s.loss));
  };
}

nlohmann::json to_json(const TransformOptions& t) {
  return {{"rotation_degrees", t.rotation()},
          {"scale", {t.scale_min(), t.scale_max()}},
          {"translate", t.translate()},
          {"brightness", t.brightness()},
          {"contrast", {t.contrast_min(), t.contrast_max()}},
          {"blur_sigma", t.blur()},
          {"noise_sigma", t.noise()}};
}

nlohmann::json to_json(const EOTEvaluation& e) {
  return {{"images", e.images},
          {"views", e.views},
          {"success_rate", e.success_rate},
          {"baseline_success_rate", e.baseline_success_rate},
          {"all_views_rate", e.all_views_rate},
          {"clean_accuracy", e.clean_accuracy}};
}

double mean_of_last_tenth(const std::vector<double>& values) {
  const size_t n = std::max<size_t>(1, values.size() / 10);
  double sum = 0;
  for (size_t i = values.size() - n; i < values.size(); ++i) sum += values[i];
  return sum / static_cast<double>(n);
}

void write_grid(const fs::path& path, const EOTEvaluation& e) {
  if (!e.example_clean.defined() || e.example_clean.size(0) == 0) {
    spdlog::warn("no held-out image counts for the attack; no grid written");
    return;
  }
  write_image_grid(path, e.example_clean, e.example_views, e.example_clean_predictions,
                   e.example_view_predictions, e.example_labels);
  spdlog::info("wrote {}", path.string());
}

nlohmann::json report_header(const std::string& attack, const EOTArgs& args, const Dataset& train,
                             const Dataset& test, const LoadedModel& loaded, c10::Device device) {
  return {{"attack", attack},
          {"model", args.model},
          {"model_name", loaded.model.name()},
          {"data", test.name},
          {"target", args.target},
          {"train_samples", train.size()},
          {"test_samples", test.size()},
          {"views_per_image", args.views},
          {"steps", args.steps},
          {"batch_size", args.batch_size},
          {"learning_rate", args.learning_rate},
          {"transforms", to_json(args.transforms())},
          {"device", device.str()},
          {"threads", at::get_num_threads()},
          {"bulwark_version", BULWARK_VERSION_STRING}};
}

void print_evaluation_line(double factor, const EOTEvaluation& e) {
  fmt::print("    ranges x{:<4g} success {:6.2f}%  (random control {:6.2f}%, every view {:6.2f}%, "
             "{} images x {} views)\n",
             factor, 100 * e.success_rate, 100 * e.baseline_success_rate, 100 * e.all_views_rate,
             e.images, e.views / std::max<int64_t>(1, e.images));
}

}  // namespace bulwark::cli
