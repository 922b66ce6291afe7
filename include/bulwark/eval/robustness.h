#pragma once
/// @file
/// Robustness evaluation: a model against a list of attacks and budgets, with the per-sample
/// worst case across attacks and sanity checks against gradient masking.

#include <torch/arg.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/attacks/attack.h"
#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark {

struct EvaluationOptions {
  TORCH_ARG(int64_t, batch_size) = 256;
  /// Attacks stop working on samples already fooled and keep that iterate: the same or lower
  /// robust accuracy than running every step, for much less compute.
  TORCH_ARG(bool, early_stop) = true;
  /// Run the sanity checks that need extra attacks (a very large eps; unbounded C&W), on at
  /// most this many samples (0: skip them).
  TORCH_ARG(int64_t, sanity_samples) = 100;
};

/// One attack at one budget.
struct AttackEvaluation {
  std::string attack;
  std::string norm;
  double eps = 0.0;
  double robust_accuracy = 0.0;  ///< correct on clean and not fooled, over all samples
  double attack_success_rate = 0.0;  ///< fooled, over the clean-correct samples
  double mean_linf = 0.0, max_linf = 0.0, mean_l2 = 0.0, max_l2 = 0.0;  ///< over fooled samples
  int64_t gradient_evaluations = 0;
  int64_t forward_evaluations = 0;  ///< forward-only passes (Square's queries, bookkeeping)
  double seconds = 0.0;
  double samples_per_second = 0.0;  ///< attacked samples per second
  /// Composite attacks (AutoAttack): each component's share, summed over the batches.
  std::vector<AttackStage> stages;
};

/// Robust accuracy at one budget when a sample must survive every attack run at that budget.
struct WorstCase {
  double eps = 0.0;
  double robust_accuracy = 0.0;
  std::vector<std::string> attacks;
};

/// One class's share of the evaluation (robustness disparity: adversarial training leaves some
/// classes far less robust than others, Xu et al. 2021).
struct ClassRobustness {
  int64_t label = 0;
  std::string name;              ///< the data set's class name, or empty
  int64_t samples = 0;
  double clean_accuracy = 0.0;   ///< NaN without samples
  /// Worst-case robust accuracy of this class at each budget of `worst_case`, in its order.
  std::vector<double> robust_accuracy;
};

struct RobustnessReport {
  std::string model;
  std::string data;
  int64_t samples = 0;
  double clean_accuracy = 0.0;
  std::vector<AttackEvaluation> results;
  std::vector<WorstCase> worst_case;
  /// By class (index = label).
  std::vector<ClassRobustness> per_class;
  /// Sanity-check failures: signs of gradient masking or a weak evaluation.
  std::vector<std::string> warnings;
  double seconds = 0.0;
  double samples_per_second = 0.0;  ///< samples through the whole evaluation per second
};

/// Progress of evaluate(): (attack, eps, batches done, batches in total for this attack/eps).
using EvaluationProgress =
    std::function<void(const std::string&, double, int64_t, int64_t)>;

/// Evaluates `model` on `data` under every attack at every budget. Only clean-correct samples
/// are attacked. The model's mode is restored afterwards.
/// @throws Error when data is empty, no attack or no budget is given, a budget is negative, or
/// the attacks' input boxes do not contain the data.
RobustnessReport evaluate(Model& model, const Dataset& data,
                          const std::vector<std::shared_ptr<Attack>>& attacks,
                          const std::vector<double>& epsilons,
                          const EvaluationOptions& options = {},
                          const EvaluationProgress& progress = {});

/// The report as JSON (all fields) and as a Markdown table.
std::string to_json(const RobustnessReport& report);
std::string to_markdown(const RobustnessReport& report);
/// Writes JSON (".json") or Markdown (any other extension) atomically.
void write_report(const RobustnessReport& report, const std::filesystem::path& path);

}  // namespace bulwark
