// `bulwark sticker`: trains a masked sticker (RP2) on the training split, measures it on
// held-out test images under random views and wider transformation ranges, and writes it as PNG
// with a JSON report and a grid of examples.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/physical_common.h"
#include "cli/validators.h"
#include "core/check.h"

namespace bulwark::cli {
namespace fs = std::filesystem;
namespace {

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
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
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
      ->check(in_interval<int64_t>(-1, 1000));
  cmd->add_option("--penalty", args->penalty, "Weight of the masked perturbation's L2 norm")
      ->check(non_negative<double>());
  cmd->add_option("--palette", args->palette,
                  "Printable colours, one per line (C values in [0, 1]); adds the "
                  "non-printability score");
  cmd->add_option("--printability-weight", args->printability_weight,
                  "Weight of the non-printability score")
      ->check(non_negative<double>());
  return {cmd, [&global, args] { run_sticker(global, *args); }};
}

}  // namespace bulwark::cli
