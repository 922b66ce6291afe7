// `bulwark patch`: trains a universal adversarial patch on the training split, measures it on
// held-out test images under random placement and wider transformation ranges, and writes it as
// PNG with a JSON report and a grid of examples.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "cli/physical_common.h"
#include "cli/validators.h"

namespace bulwark::cli {
namespace {

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
  auto loaded = load_model(args.model, device, unseal_options(args.sealed));
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
      ->check(in_interval(0.0, 1.0, Ends::OpenLow));
  cmd->add_option("--shape", args->shape, "Patch shape")
      ->check(CLI::IsMember({"square", "circle"}));
  cmd->add_option("--placement-rotation", args->placement_rotation,
                  "Rotation of the patch in degrees (+-)")
      ->check(non_negative<double>());
  cmd->add_option("--placement-scale-min", args->placement_scale_min,
                  "Patch size factor, lower end (the nominal size is --size)")
      ->check(positive<double>());
  cmd->add_option("--placement-scale-max", args->placement_scale_max,
                  "Patch size factor, upper end")
      ->check(positive<double>());
  return {cmd, [&global, args] { run_patch(global, *args); }};
}

}  // namespace bulwark::cli
