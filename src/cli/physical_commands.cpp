// `bulwark patch` and `bulwark sticker`: train a physical-world perturbation on the training
// split, measure it on held-out test images over random views and wider transformation ranges,
// and write it as PNG with a JSON report and a grid of examples.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bulwark/bulwark.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "core/check.h"

namespace bulwark::cli {
namespace fs = std::filesystem;
namespace {

// Options both commands share.
struct EOTArgs {
  DataOptions data;
  std::string model;
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

void add_eot_options(CLI::App* cmd, EOTArgs& args, const std::string& what) {
  add_data_options(cmd, args.data, /*with_limit=*/false);
  cmd->add_option("--model", args.model, "Model file (Bulwark checkpoint or TorchScript)")
      ->required();
  cmd->add_option("--out", args.out, "Where to write the " + what + " as PNG")->required();
  cmd->add_option("--report", args.report, "Write a JSON report to this file");
  cmd->add_option("--grid", args.grid,
                  "Write a PNG of 8 test images and their views with predictions");
  cmd->add_option("--target", args.target, "Target class (-1: untargeted)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1000}));
  cmd->add_option("--steps", args.steps, "Adam steps")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", args.batch_size, "Views per step")->check(CLI::PositiveNumber);
  cmd->add_option("--lr", args.learning_rate, "Adam learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--train-samples", args.train_samples,
                  "Training images, the first N of the training split (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--test-samples", args.test_samples,
                  "Held-out images, the first N of the test split (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--views", args.views, "Random views per held-out image")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--range-factors", args.range_factors,
                  "Also evaluate with the transformation ranges multiplied by these factors")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--rotation", args.rotation, "View rotation range in degrees (+-)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--scale-min", args.scale_min, "View zoom range, lower end")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--scale-max", args.scale_max, "View zoom range, upper end")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--translate", args.translate, "View shift range, fraction of the size (+-)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--brightness", args.brightness, "Brightness change range (+-)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--contrast-min", args.contrast_min, "Contrast factor range, lower end")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--contrast-max", args.contrast_max, "Contrast factor range, upper end")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--blur", args.blur, "Gaussian blur sigma range in pixels [0, v]")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--noise", args.noise, "Gaussian noise sigma range [0, v]")
      ->check(CLI::NonNegativeNumber);
}

void check_outputs(const EOTArgs& args) {
  check_output_path("--out", args.out);
  if (!args.report.empty()) check_output_path("--report", args.report);
  if (!args.grid.empty()) check_output_path("--grid", args.grid);
}

// The training and held-out data, both of class `only_class` if it is >= 0.
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

// "patch.png" → "patch-size0.05.png" when several sizes are trained.
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

// ---- patch ----

struct PatchArgs : EOTArgs {
  std::vector<double> sizes = {0.1};
  std::string shape = "square";
  double placement_rotation = 22.5;
  double placement_scale_min = 0.8;
  double placement_scale_max = 1.0;
  PatchArgs() {
    steps = 500;
    learning_rate = 0.05;
  }
};

void run_patch(const GlobalOptions& global, const PatchArgs& args) {
  check_outputs(args);
  const auto device = resolve_device(global);
  manual_seed(global.seed);
  auto loaded = load_model(args.model, device);
  const auto [train, test] = load_eot_data(args, -1, device);
  const auto placement = PlacementOptions()
                             .rotation(args.placement_rotation)
                             .scale(args.placement_scale_min, args.placement_scale_max);
  auto report = report_header("patch", args, train, test, loaded, device);
  report["shape"] = args.shape;
  report["placement"] = {{"rotation_degrees", placement.rotation()},
                         {"scale", {placement.scale_min(), placement.scale_max()}}};
  report["results"] = nlohmann::json::array();
  // Printed once the first patch is trained, so that an error is the only output.
  const auto header =
      fmt::format("Bulwark adversarial patch: {} on {}, {}, {} training / {} held-out images\n",
                  args.model, test.name,
                  args.target >= 0 ? fmt::format("target class {}", args.target) : "untargeted",
                  train.size(), test.size());
  for (const double size : args.sizes) {
    const auto suffix = args.sizes.size() > 1 ? fmt::format("-size{:g}", size) : std::string();
    std::unique_ptr<Progress> progress;
    const auto trained = train_patch(
        loaded.model, train,
        PatchOptions()
            .size(size)
            .shape(parse_patch_shape(args.shape))
            .target(args.target)
            .steps(args.steps)
            .batch_size(args.batch_size)
            .learning_rate(args.learning_rate)
            .placement(placement)
            .transforms(args.transforms())
            .seed(global.seed),
        progress_callback(progress, fmt::format("patch {:g}", size), global));
    const auto& patch = trained.patch;
    if (size == args.sizes.front()) fmt::print("{}", header);
    const double area = patch.area_fraction(test.images.size(2), test.images.size(3));
    fmt::print("  size {:g}: {} patch of {}x{} pixels covering {:.2f}% of the image, {} steps in "
               "{:.1f}s ({:.1f} steps/s)\n",
               size, args.shape, patch.mask.size(0), patch.mask.size(1), 100 * area, args.steps,
               trained.seconds, static_cast<double>(args.steps) / trained.seconds);
    nlohmann::json result = {{"size", size},
                             {"area_fraction", area},
                             {"patch_pixels", patch.pixels.sizes().vec()},
                             {"train_seconds", trained.seconds},
                             {"steps_per_second", static_cast<double>(args.steps) / trained.seconds},
                             {"train_success_last_tenth", mean_of_last_tenth(trained.success_rates)},
                             {"evaluations", nlohmann::json::array()}};
    for (const double factor : args.range_factors) {
      const auto options = EOTEvaluationOptions()
                               .views(args.views)
                               .placement(PlacementOptions()
                                              .rotation(placement.rotation() * factor)
                                              .scale(placement.scale_min(), placement.scale_max()))
                               .transforms(args.transforms().scaled(factor))
                               .seed(derive_seed(global.seed, 7));
      const auto evaluation = evaluate_patch(loaded.model, test, patch, options);
      print_evaluation_line(factor, evaluation);
      auto j = to_json(evaluation);
      j["range_factor"] = factor;
      j["placement_rotation_degrees"] = options.placement().rotation();
      j["transforms"] = to_json(options.transforms());
      result["evaluations"].push_back(j);
      if (factor == 1 && !args.grid.empty()) write_grid(with_suffix(args.grid, suffix), evaluation);
    }
    const auto out = with_suffix(args.out, suffix);
    write_png(out, patch.pixels.cpu(), patch.mask.cpu(), 8);
    spdlog::info("wrote {}", out.string());
    result["png"] = out.string();
    report["results"].push_back(result);
  }
  if (!args.report.empty()) {
    write_text_atomically(args.report, report.dump(2) + "\n");
    spdlog::info("wrote {}", args.report);
  }
}

// ---- sticker ----

struct StickerArgs : EOTArgs {
  std::string mask;
  int64_t only_class = -1;
  double penalty = 0.002;
  std::string palette;
  double printability_weight = 0.25;
  StickerArgs() {
    steps = 300;
    learning_rate = 0.1;
    rotation = 10;
    scale_min = 0.9;
    scale_max = 1.1;
    translate = 0.05;
    brightness = 0.1;
    contrast_min = 0.8;
    contrast_max = 1.2;
    noise = 0.02;
  }
};

// One printable colour per line: C numbers in [0, 1], separated by spaces or commas; '#'
// starts a comment.
at::Tensor read_palette(const fs::path& path) {
  std::ifstream in(path);
  BULWARK_CHECK(in.good(), "--palette: cannot read '{}'", path.string());
  std::vector<std::vector<double>> colours;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream fields(line);
    std::vector<double> colour;
    for (double v = 0; fields >> v;) colour.push_back(v);
    BULWARK_CHECK(fields.eof(), "--palette: '{}' line {} is not a list of numbers",
                  path.string(), number);
    if (colour.empty()) continue;
    BULWARK_CHECK(colours.empty() || colour.size() == colours.front().size(),
                  "--palette: '{}' line {} has {} values, earlier lines {}", path.string(),
                  number, colour.size(), colours.front().size());
    colours.push_back(colour);
  }
  BULWARK_CHECK(!colours.empty(), "--palette: '{}' holds no colour", path.string());
  auto palette = torch::empty({static_cast<int64_t>(colours.size()),
                               static_cast<int64_t>(colours.front().size())});
  for (size_t i = 0; i < colours.size(); ++i) {
    for (size_t c = 0; c < colours[i].size(); ++c) {
      palette[static_cast<int64_t>(i)][static_cast<int64_t>(c)] = colours[i][c];
    }
  }
  return palette;
}

void run_sticker(const GlobalOptions& global, const StickerArgs& args) {
  check_outputs(args);
  const auto device = resolve_device(global);
  manual_seed(global.seed);
  // A colour mask counts by its mean over channels.
  const auto mask = read_png(args.mask).mean(0).to(device);
  auto loaded = load_model(args.model, device);
  const auto [train, test] = load_eot_data(args, args.only_class, device);
  auto options = StickerOptions(mask)
                     .target(args.target)
                     .steps(args.steps)
                     .batch_size(args.batch_size)
                     .learning_rate(args.learning_rate)
                     .penalty(args.penalty)
                     .printability_weight(args.printability_weight)
                     .transforms(args.transforms())
                     .seed(global.seed);
  if (!args.palette.empty()) options.palette(read_palette(args.palette).to(device));
  const auto header = fmt::format(
      "Bulwark masked sticker (RP2): {} on {}{}, {}, mask {} ({:.1f}% of the image), {} "
      "training / {} held-out images\n",
      args.model, test.name,
      args.only_class >= 0 ? fmt::format(" class {}", args.only_class) : "",
      args.target >= 0 ? fmt::format("target class {}", args.target) : "untargeted",
      args.mask, 100 * mask.gt(0).to(torch::kDouble).mean().item<double>(), train.size(),
      test.size());
  std::unique_ptr<Progress> progress;
  const auto trained = train_sticker(loaded.model, train, options,
                                     progress_callback(progress, "sticker", global));
  const auto& sticker = trained.sticker;
  fmt::print("{}", header);
  const auto masked = sticker.perturbation.masked_select(sticker.mask.gt(0).expand_as(sticker.perturbation));
  const double l2 = sticker.perturbation.norm().item<double>();
  const double linf = masked.numel() > 0 ? masked.abs().max().item<double>() : 0.0;
  fmt::print("  {} steps in {:.1f}s ({:.1f} steps/s); perturbation L2 {:.3f}, Linf {:.3f}\n",
             args.steps, trained.seconds, static_cast<double>(args.steps) / trained.seconds, l2,
             linf);
  auto report = report_header("sticker", args, train, test, loaded, device);
  report["mask"] = args.mask;
  report["class"] = args.only_class;
  report["penalty"] = args.penalty;
  report["mask_fraction"] = mask.gt(0).to(torch::kDouble).mean().item<double>();
  report["perturbation_l2"] = l2;
  report["perturbation_linf"] = linf;
  report["train_seconds"] = trained.seconds;
  report["steps_per_second"] = static_cast<double>(args.steps) / trained.seconds;
  report["train_success_last_tenth"] = mean_of_last_tenth(trained.success_rates);
  report["evaluations"] = nlohmann::json::array();
  for (const double factor : args.range_factors) {
    const auto evaluation = evaluate_sticker(
        loaded.model, test, sticker,
        EOTEvaluationOptions().views(args.views).transforms(args.transforms().scaled(factor)).seed(
            derive_seed(global.seed, 7)));
    print_evaluation_line(factor, evaluation);
    auto j = to_json(evaluation);
    j["range_factor"] = factor;
    j["transforms"] = to_json(args.transforms().scaled(factor));
    report["evaluations"].push_back(j);
    if (factor == 1 && !args.grid.empty()) write_grid(args.grid, evaluation);
  }
  // The perturbation with mid-grey for zero, scaled to its largest magnitude, transparent
  // outside the mask.
  const auto shown = (0.5 + sticker.perturbation / (2 * std::max(linf, 1e-12))).clamp(0, 1);
  write_png(args.out, shown.cpu(), sticker.mask.cpu(), 8);
  spdlog::info("wrote {}", args.out);
  if (!args.report.empty()) {
    write_text_atomically(args.report, report.dump(2) + "\n");
    spdlog::info("wrote {}", args.report);
  }
}

}  // namespace

Command add_patch_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<PatchArgs>();
  auto* cmd = app.add_subcommand(
      "patch", "Train a universal adversarial patch (Brown et al. 2017) and measure it on held-out "
               "images under random placement");
  add_eot_options(cmd, *args, "patch");
  cmd->add_option("--size", args->sizes,
                  "Fraction of the image the patch covers, one patch per value (comma-separated)")
      ->delimiter(',')
      ->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--shape", args->shape, "Patch shape")
      ->check(CLI::IsMember({"square", "circle"}));
  cmd->add_option("--placement-rotation", args->placement_rotation,
                  "Rotation of the patch in degrees (+-)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--placement-scale-min", args->placement_scale_min,
                  "Patch size factor, lower end (the nominal size is --size)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--placement-scale-max", args->placement_scale_max,
                  "Patch size factor, upper end")
      ->check(CLI::PositiveNumber);
  return {cmd, [&global, args] { run_patch(global, *args); }};
}

Command add_sticker_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<StickerArgs>();
  auto* cmd = app.add_subcommand(
      "sticker", "Train a masked sticker (RP2, Eykholt et al. 2018) and measure it on held-out "
                 "images under random views");
  add_eot_options(cmd, *args, "sticker (its perturbation, mid-grey = 0)");
  cmd->add_option("--mask", args->mask,
                  "PNG with the image's size: where the sticker may change the image (white)")
      ->required();
  cmd->add_option("--class", args->only_class,
                  "Attack only images of this class (RP2's one object), -1: all")
      ->check(CLI::Range(int64_t{-1}, int64_t{1000}));
  cmd->add_option("--penalty", args->penalty, "Weight of the masked perturbation's L2 norm")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--palette", args->palette,
                  "Printable colours, one per line (C values in [0, 1]); adds the "
                  "non-printability score");
  cmd->add_option("--printability-weight", args->printability_weight,
                  "Weight of the non-printability score")
      ->check(CLI::NonNegativeNumber);
  return {cmd, [&global, args] { run_sticker(global, *args); }};
}

}  // namespace bulwark::cli
