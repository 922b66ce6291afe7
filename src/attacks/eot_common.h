#pragma once
// Private: what the patch and sticker attacks share: the optimization loop over random views,
// its objective, and the evaluation over views.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <string_view>

#include "bulwark/attacks/eot_evaluation.h"
#include "bulwark/attacks/patch.h"
#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark::detail {

/// Checks the data (non-empty, [N, C, H, W], inside `box`) and that `target` is −1 or a class
/// of the data and of the model; returns the model's number of classes.
int64_t check_eot_inputs(std::string_view where, Model& model, const Dataset& data,
                         int64_t target, const InputBox& box);

/// The images that count for a targeted attack: those whose label is not `target` (all of
/// them when untargeted). @throws Error naming `where` when none is left.
Dataset without_target_class(std::string_view where, const Dataset& data, int64_t target);

/// Per-view loss to minimize: cross-entropy towards `target`, or minus the cross-entropy of
/// the true labels when untargeted (target −1).
at::Tensor eot_loss(const at::Tensor& logits, const at::Tensor& labels, int64_t target);

/// bool [N]: classified as `target`, or misclassified when untargeted.
at::Tensor eot_success(const at::Tensor& logits, const at::Tensor& labels, int64_t target);

/// One step's views as a function of the parameter: returns the logits of the views of the
/// batch (x, y), drawn with `generator`; the loss is added by the loop.
using ViewLogits = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& y,
                                            at::Generator& generator)>;

/// A term added to the objective, from the parameter and the batch's clean images.
using Penalty = std::function<at::Tensor(const at::Tensor& parameter, const at::Tensor& x)>;

struct EOTLoopResult {
  std::vector<double> losses, success_rates;
  int64_t gradient_evaluations = 0;
  double seconds = 0;
};

/// `steps` Adam steps on `parameter` (a leaf requiring grad) over shuffled batches of `data`
/// (cycled), minimizing the mean eot_loss plus `penalty(parameter, x)` (if given), calling
/// `project(parameter)` after each step and `callback` with the progress. The model is in eval
/// mode for the duration; only `parameter` gets gradients.
EOTLoopResult run_eot_loop(Model& model, const Dataset& data, at::Tensor& parameter,
                           int64_t target, int64_t steps, int64_t batch_size, double learning_rate,
                           uint64_t seed, const ViewLogits& view_logits,
                           const Penalty& penalty,
                           const std::function<void(at::Tensor&)>& project,
                           const EOTCallback& callback);

/// Makes the views of a batch: `baseline` asks for the random-perturbation control.
using MakeViews = std::function<at::Tensor(const at::Tensor& x, bool baseline,
                                           at::Generator& generator)>;

/// Evaluates over `options.views()` random views of each counted image of `data` (see
/// EOTEvaluation), with and without the baseline.
EOTEvaluation evaluate_views(Model& model, const Dataset& data, int64_t target,
                             const EOTEvaluationOptions& options, const MakeViews& make_views);

}  // namespace bulwark::detail
