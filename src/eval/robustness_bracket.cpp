// The L2 robustness bracket: the base model under attack, and the smoothed classifier under
// attack (upper end) and certified (lower end), per budget, with eps 0 added as the clean point.
#include "bulwark/eval/robustness_bracket.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "bulwark/core/files.h"
#include "bulwark/core/norms.h"
#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

namespace {

void check_inputs(const Dataset& data, const std::vector<std::shared_ptr<Attack>>& attacks,
                  const std::vector<double>& epsilons, const BracketOptions& options) {
  BULWARK_CHECK(data.size() > 0, "robustness_bracket: the dataset is empty");
  BULWARK_CHECK(!attacks.empty(), "robustness_bracket: give at least one L2 attack");
  BULWARK_CHECK(!epsilons.empty(), "robustness_bracket: give at least one budget");
  for (const auto& attack : attacks) {
    BULWARK_CHECK(attack != nullptr, "robustness_bracket: an attack is null");
    BULWARK_CHECK(attack->norm() == Norm::L2,
                  "robustness_bracket: attack '{}' is {}; the bracket compares with L2 "
                  "certificates, so every attack must be L2",
                  attack->name(), to_string(attack->norm()));
  }
  for (const double eps : epsilons) {
    BULWARK_CHECK(std::isfinite(eps) && eps > 0,
                  "robustness_bracket: budgets must be finite and > 0, got {}", eps);
  }
  options.smoothing().validate();
  BULWARK_CHECK(options.smoothed_attack_steps() >= 1 && options.eot_draws() >= 1,
                "robustness_bracket: smoothed_attack_steps and eot_draws must be >= 1, got {} "
                "and {}",
                options.smoothed_attack_steps(), options.eot_draws());
  BULWARK_CHECK(options.predict_draws() >= 0,
                "robustness_bracket: predict_draws must be >= 0 (0: the smoothing's n), got {}",
                options.predict_draws());
}

double value_at(const std::vector<std::pair<double, double>>& curve, double x) {
  for (const auto& [at, value] : curve) {
    if (at == x) return value;
  }
  throw Error(fmt::format("robustness_bracket: no figure at radius {}", x));
}

}  // namespace

RobustnessBracket robustness_bracket(Model& model, const Dataset& data,
                                     const std::vector<std::shared_ptr<Attack>>& attacks,
                                     const std::vector<double>& epsilons,
                                     const BracketOptions& options) {
  check_inputs(data, attacks, epsilons, options);
  const auto start = std::chrono::steady_clock::now();
  auto radii = epsilons;
  std::sort(radii.begin(), radii.end());
  radii.erase(std::unique(radii.begin(), radii.end()), radii.end());

  RobustnessBracket out;
  out.attacks = evaluate(model, data, attacks, radii, options.evaluation());
  out.model = out.attacks.model;
  out.data = out.attacks.data;
  out.samples = data.size();

  auto with_zero = radii;
  with_zero.insert(with_zero.begin(), 0.0);
  out.certification = certify_dataset(model, data, options.smoothing(), with_zero);
  // PREDICT draws noise independent of CERTIFY's.
  auto predict = options.smoothing();
  predict.seed(derive_seed(options.smoothing().seed(), 2));
  if (options.predict_draws() > 0) predict.n(options.predict_draws());
  out.certification.empirical =
      smoothed_accuracy_under_attack(model, data, predict, with_zero,
                                     options.smoothed_attack_steps(), options.eot_draws());

  const double one_sample = 1.0 / static_cast<double>(data.size());
  for (const double eps : with_zero) {
    BracketPoint p;
    p.eps = eps;
    // eps 0 is the clean point; every budget has its worst case in the report.
    p.base_under_attack = eps == 0 ? out.attacks.clean_accuracy : -1;
    for (const auto& w : out.attacks.worst_case) {
      if (w.eps == eps) p.base_under_attack = w.robust_accuracy;
    }
    BULWARK_CHECK(p.base_under_attack >= 0, "robustness_bracket: no worst case at eps {}", eps);
    p.certified = value_at(out.certification.curve, eps);
    p.smoothed_under_attack = value_at(out.certification.empirical, eps);
    if (p.certified > p.smoothed_under_attack + one_sample + 1e-12) {
      out.warnings.push_back(fmt::format(
          "at eps {:.4g} the certified accuracy ({:.2f}%) is above the smoothed classifier's "
          "accuracy under attack ({:.2f}%): the Monte Carlo estimates disagree (PREDICT abstains "
          "more with fewer draws) or the certificate's confidence level was missed",
          eps, 100 * p.certified, 100 * p.smoothed_under_attack));
    }
    out.points.push_back(p);
  }
  for (const auto& w : out.attacks.warnings) out.warnings.push_back(w);
  out.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::string to_json(const RobustnessBracket& bracket) {
  nlohmann::json j;
  j["model"] = bracket.model;
  j["data"] = bracket.data;
  j["samples"] = bracket.samples;
  j["sigma"] = bracket.certification.options.sigma();
  auto points = nlohmann::json::array();
  for (const auto& p : bracket.points) {
    points.push_back({{"eps", p.eps},
                      {"base_under_attack", p.base_under_attack},
                      {"smoothed_under_attack", p.smoothed_under_attack},
                      {"certified", p.certified},
                      {"width", p.width()}});
  }
  j["bracket"] = points;
  j["warnings"] = bracket.warnings;
  j["seconds"] = bracket.seconds;
  j["attacks"] = nlohmann::json::parse(to_json(bracket.attacks));
  j["certification"] = nlohmann::json::parse(to_json(bracket.certification));
  return j.dump(2) + "\n";
}

std::string to_markdown(const RobustnessBracket& bracket) {
  const auto& smoothing = bracket.certification.options;
  std::string md = "# L2 robustness bracket\n\n";
  md += fmt::format(
      "Model `{}` on {} ({} samples). The smoothed classifier (σ = {}, n = {}, α = {}) is truly "
      "robust on a fraction between its certified accuracy (a lower bound) and its accuracy "
      "under attack (an upper bound); the base model under the attacks is shown beside it. "
      "{:.1f} s in all.\n\n",
      bracket.model, bracket.data, bracket.samples, smoothing.sigma(), smoothing.n(),
      smoothing.alpha(), bracket.seconds);
  md += "| eps (L2) | base model under attack | smoothed: certified (lower) | smoothed: under "
        "attack (upper) | width |\n|---:|---:|---:|---:|---:|\n";
  for (const auto& p : bracket.points) {
    md += fmt::format("| {:.4g} | {:.2f}% | {:.2f}% | {:.2f}% | {:.2f} points |\n", p.eps,
                      100 * p.base_under_attack, 100 * p.certified, 100 * p.smoothed_under_attack,
                      100 * p.width());
  }
  if (!bracket.warnings.empty()) {
    md += "\n## Warnings\n\n";
    for (const auto& w : bracket.warnings) md += "- " + w + "\n";
  }
  return md;
}

void write_report(const RobustnessBracket& bracket, const std::filesystem::path& path) {
  const auto ext = path.extension();
  write_text_atomically(path, ext == ".json"  ? to_json(bracket)
                              : ext == ".svg" ? to_svg(bracket)
                                              : to_markdown(bracket));
}

}  // namespace bulwark
