#pragma once
/// @file
/// The L2 robustness bracket: how robust a model truly is lies between what a certificate
/// proves and what an attack fails to break. Per budget eps, one report places
/// - the base model's robust accuracy under the given L2 attacks (their worst case): an upper
///   bound on the base model's true robust accuracy;
/// - the smoothed classifier's accuracy (Cohen et al.'s PREDICT) under an L2 PGD attack with
///   expectation over the noise: an upper bound on the smoothed classifier's true robust
///   accuracy;
/// - the smoothed classifier's certified accuracy at radius eps (CERTIFY): a lower bound on it,
///   each certificate holding with probability at least 1 − alpha.
/// The smoothed classifier's true robust accuracy lies in [certified, under attack]; the width of
/// that interval is what the evaluation leaves unknown. The base model and the smoothed
/// classifier are different classifiers: the base model's figure is shown beside the bracket,
/// not as one of its ends.

#include <torch/arg.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/defenses/randomized_smoothing.h"
#include "bulwark/eval/robustness.h"

namespace bulwark {

struct BracketOptions {
  /// The smoothing of the certified end (sigma, n0, n, alpha, seed). Its default n (100,000
  /// draws per input) is Cohen et al.'s; fewer draws give smaller certified radii.
  TORCH_ARG(SmoothingOptions, smoothing) = SmoothingOptions();
  /// How the base model is attacked (batch size, early stop, sanity checks).
  TORCH_ARG(EvaluationOptions, evaluation) = EvaluationOptions();
  /// The attack on the smoothed classifier: L2 PGD steps, and noise draws averaged per step
  /// (Salman et al. 2019's SmoothAdv uses 1 to 8 draws).
  TORCH_ARG(int64_t, smoothed_attack_steps) = 20;
  TORCH_ARG(int64_t, eot_draws) = 8;
  /// Draws of PREDICT on the attacked inputs (0: the smoothing's n).
  TORCH_ARG(int64_t, predict_draws) = 0;
};

/// One budget of the bracket.
struct BracketPoint {
  double eps = 0.0;
  /// The base model's worst-case robust accuracy over the attacks at eps.
  double base_under_attack = 0.0;
  /// The smoothed classifier's accuracy under the EOT attack at eps (upper end).
  double smoothed_under_attack = 0.0;
  /// The smoothed classifier's certified accuracy at radius eps (lower end).
  double certified = 0.0;
  /// smoothed_under_attack − certified: what neither the attack nor the certificate settles.
  double width() const { return smoothed_under_attack - certified; }
};

struct RobustnessBracket {
  std::string model;
  std::string data;
  int64_t samples = 0;
  std::vector<BracketPoint> points;
  RobustnessReport attacks;            ///< the base model under the attacks
  CertificationReport certification;  ///< CERTIFY, with `empirical` the EOT attack's figures
  /// An end above the other (certified above under attack by more than one sample's share)
  /// is impossible for exact figures: it means the attack on the smoothed classifier is weak or
  /// the Monte Carlo estimates disagree, and is reported here.
  std::vector<std::string> warnings;
  double seconds = 0.0;
};

/// Evaluates `model` on `data` under the L2 `attacks` at every eps, and certifies and attacks its
/// smoothed classifier at the same radii. The model's mode is restored afterwards.
/// @throws Error when data is empty, no attack or budget is given, an attack is not L2, a
/// budget is not finite and > 0, or the options are invalid.
RobustnessBracket robustness_bracket(Model& model, const Dataset& data,
                                     const std::vector<std::shared_ptr<Attack>>& attacks,
                                     const std::vector<double>& epsilons,
                                     const BracketOptions& options = {});

/// The bracket as JSON (with the attack and certification reports inside), as Markdown, and as
/// an SVG plot (accuracy against eps: the band between the ends, the base model beside it).
std::string to_json(const RobustnessBracket& bracket);
std::string to_markdown(const RobustnessBracket& bracket);
std::string to_svg(const RobustnessBracket& bracket);
/// Writes JSON (".json"), SVG (".svg") or Markdown (any other extension) atomically.
void write_report(const RobustnessBracket& bracket, const std::filesystem::path& path);

}  // namespace bulwark
