#include "attacks/eot_common.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "bulwark/core/losses.h"
#include "bulwark/core/seed.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/ops/cw_adam_step.h"
#include "core/check.h"

namespace bulwark::detail {

int64_t check_eot_inputs(std::string_view where, Model& model, const Dataset& data,
                         int64_t target, const InputBox& box) {
  BULWARK_CHECK(data.size() > 0, "{}: the data set is empty", where);
  check_float_tensor(where, "images", data.images);
  BULWARK_CHECK(data.images.dim() == 4, "{}: images must be [N, C, H, W], got shape {}", where,
                shape_string(data.images));
  box.check_contains(where, "images", data.images);
  BULWARK_CHECK(model.device() == data.images.device(),
                "{}: the model '{}' is on {} but the images are on {}", where, model.name(),
                model.device().str(), data.images.device().str());
  int64_t classes = 0;
  {
    EvalModeGuard eval_mode(model);
    torch::NoGradGuard no_grad;
    classes = model.forward(data.images.slice(0, 0, 1)).size(1);
  }
  BULWARK_CHECK(target == -1 || (target >= 0 && target < std::min(classes, data.num_classes)),
                "{}: target class must be in [0, {}) (or -1 for untargeted), got {}", where,
                std::min(classes, data.num_classes), target);
  return classes;
}

Dataset without_target_class(std::string_view where, const Dataset& data, int64_t target) {
  if (target < 0) return data;
  const auto keep = data.labels.ne(target).nonzero().squeeze(1);
  BULWARK_CHECK(keep.numel() > 0,
                "{}: every image is of the target class {}; nothing is left to attack", where,
                target);
  return Dataset(data.images.index_select(0, keep), data.labels.index_select(0, keep),
                 data.num_classes, data.name);
}

at::Tensor eot_loss(const at::Tensor& logits, const at::Tensor& labels, int64_t target) {
  if (target < 0) return -cross_entropy(logits, labels, Reduction::None);
  return cross_entropy(logits, at::full_like(labels, target), Reduction::None);
}

at::Tensor eot_success(const at::Tensor& logits, const at::Tensor& labels, int64_t target) {
  const auto predicted = logits.argmax(1);
  return target < 0 ? predicted.ne(labels) : predicted.eq(target);
}

EOTLoopResult run_eot_loop(Model& model, const Dataset& data, at::Tensor& parameter,
                           int64_t target, int64_t steps, int64_t batch_size, double learning_rate,
                           uint64_t seed, const ViewLogits& view_logits,
                           const Penalty& penalty,
                           const std::function<void(at::Tensor&)>& project,
                           const EOTCallback& callback) {
  const auto start = std::chrono::steady_clock::now();
  EvalModeGuard eval_mode(model);
  EOTLoopResult result;
  BatchLoader loader(data, BatchLoaderOptions(std::min(batch_size, data.size()))
                               .shuffle(true)
                               .seed(seed)
                               .drop_last(true));
  auto generator = make_generator(derive_seed(seed, 1));
  auto m = at::zeros_like(parameter).detach();
  auto v = at::zeros_like(parameter).detach();
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  for (int64_t step = 1; step <= steps; ++step) {
    auto batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      batch = loader.next();
    }
    const auto logits = view_logits(batch->inputs, batch->labels, generator);
    auto loss = eot_loss(logits, batch->labels, target).mean();
    if (penalty) loss = loss + penalty(parameter, batch->inputs);
    auto grad = torch::autograd::grad({loss}, {parameter})[0];
    {
      torch::NoGradGuard no_grad;
      ops::cw_adam_step_(parameter, grad.contiguous(), m, v, learning_rate, 0.9, 0.999, 1e-8,
                         step);
      project(parameter);
    }
    result.gradient_evaluations += batch->inputs.size(0);
    result.losses.push_back(loss.item<double>());
    result.success_rates.push_back(
        eot_success(logits.detach(), batch->labels, target).to(at::kDouble).mean().item<double>());
    if (callback) callback({step, steps, result.losses.back(), result.success_rates.back()});
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

EOTEvaluation evaluate_views(Model& model, const Dataset& data, int64_t target,
                             const EOTEvaluationOptions& options, const MakeViews& make_views) {
  constexpr std::string_view where = "evaluate (patch or sticker)";
  BULWARK_CHECK(options.views() >= 1, "{}: views must be >= 1, got {}", where, options.views());
  BULWARK_CHECK(options.batch_size() >= 1, "{}: batch_size must be >= 1, got {}", where,
                options.batch_size());
  options.placement().validate(where);
  options.transforms().validate(where);
  EvalModeGuard eval_mode(model);
  torch::NoGradGuard no_grad;
  EOTEvaluation result;
  const auto clean_predictions = predict(model, data.images, options.batch_size());
  result.clean_accuracy = clean_predictions.eq(data.labels).to(at::kDouble).mean().item<double>();
  const auto counted = (target < 0 ? clean_predictions.eq(data.labels) : data.labels.ne(target))
                           .nonzero()
                           .squeeze(1);
  result.images = counted.numel();
  if (result.images == 0) return result;
  const auto images = data.images.index_select(0, counted);
  const auto labels = data.labels.index_select(0, counted);
  auto generator = make_generator(options.seed());
  auto baseline_generator = make_generator(derive_seed(options.seed(), 1));
  int64_t successes = 0, baseline_successes = 0;
  auto always = at::ones({result.images}, at::TensorOptions().dtype(at::kBool).device(images.device()));
  for (int64_t view = 0; view < options.views(); ++view) {
    for (int64_t begin = 0; begin < result.images; begin += options.batch_size()) {
      const int64_t end = std::min(result.images, begin + options.batch_size());
      const auto x = images.slice(0, begin, end);
      const auto y = labels.slice(0, begin, end);
      const auto views = make_views(x, false, generator);
      const auto logits = model.forward(views);
      const auto success = eot_success(logits, y, target);
      successes += success.sum().item<int64_t>();
      always.slice(0, begin, end).logical_and_(success);
      baseline_successes += eot_success(model.forward(make_views(x, true, baseline_generator)),
                                        y, target)
                                .sum()
                                .item<int64_t>();
      if (view == 0 && begin == 0) {
        const int64_t k = std::min<int64_t>(8, end - begin);
        result.example_clean = x.slice(0, 0, k).clone();
        result.example_views = views.slice(0, 0, k).clone();
        result.example_clean_predictions = clean_predictions.index_select(0, counted).slice(0, 0, k);
        result.example_view_predictions = logits.argmax(1).slice(0, 0, k);
        result.example_labels = y.slice(0, 0, k).clone();
      }
    }
  }
  result.views = result.images * options.views();
  result.success_rate = static_cast<double>(successes) / static_cast<double>(result.views);
  result.baseline_success_rate =
      static_cast<double>(baseline_successes) / static_cast<double>(result.views);
  result.all_views_rate = always.to(at::kDouble).mean().item<double>();
  return result;
}

}  // namespace bulwark::detail
