// Neural Cleanse (Wang et al. 2019): per-class trigger reverse-engineering, the MAD outlier
// test, and unlearning.
#include "bulwark/poisoning/neural_cleanse.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "bulwark/core/seed.h"
#include "bulwark/defenses/trainer.h"
#include "core/check.h"
#include "poisoning/class_statistics.h"
#include "poisoning/poisoning_detail.h"

namespace bulwark {
namespace {

constexpr double kTanhEps = 1e-7;  // keeps atanh finite at 0 and 1, as the authors' code does

// [0, 1] → tanh space and back.
at::Tensor to_tanh_space(const at::Tensor& v) { return at::atanh((v - 0.5) * (2 - kTanhEps)); }
at::Tensor from_tanh_space(const at::Tensor& t) { return at::tanh(t) / (2 - kTanhEps) + 0.5; }

ReversedTrigger reverse_class(Model& model, const at::Tensor& images, int64_t label,
                              const NeuralCleanseOptions& o, at::Generator& generator) {
  const auto device = images.device();
  const auto float_options = images.options();
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const double low = o.box().lower, high = o.box().upper;
  auto mask_param = to_tanh_space(at::rand({1, h, w}, generator, at::kFloat))
                        .to(float_options)
                        .requires_grad_(true);
  auto pattern_param = to_tanh_space(at::rand({c, h, w}, generator, at::kFloat))
                           .to(float_options)
                           .requires_grad_(true);
  torch::optim::Adam adam({mask_param, pattern_param},
                          torch::optim::AdamOptions(o.learning_rate()).betas({0.5, 0.9}));
  const auto order = at::randperm(n, generator, at::kLong).to(device);
  int64_t cursor = 0;
  const int64_t batch = std::min(o.batch_size(), n);

  ReversedTrigger best;
  best.label = label;
  best.l1_norm = std::numeric_limits<double>::infinity();
  double cost = o.init_cost();
  int64_t above = 0, below = 0, stalled = 0;
  bool raised = false, lowered = false;
  double early_best = std::numeric_limits<double>::infinity();
  at::Tensor last_mask, last_pattern;
  double last_success = 0;
  for (int64_t check = 0; check < o.checks(); ++check) {
    int64_t hits = 0, seen = 0;
    for (int64_t b = 0; b < o.batches_per_check(); ++b) {
      if (cursor + batch > n) cursor = 0;
      const auto x = images.index_select(0, order.slice(0, cursor, cursor + batch));
      cursor += batch;
      const auto mask = from_tanh_space(mask_param);
      const auto pattern = low + (high - low) * from_tanh_space(pattern_param);
      const auto logits = model.forward((1 - mask) * x + mask * pattern);
      const auto target = at::full({batch}, label, x.options().dtype(at::kLong));
      const auto loss = at::cross_entropy_loss(logits, target) + cost * mask.sum();
      // Gradients of the mask and pattern only: the model's parameters keep their .grad.
      const auto grads = torch::autograd::grad({loss}, {mask_param, pattern_param});
      mask_param.mutable_grad() = grads[0];
      pattern_param.mutable_grad() = grads[1];
      adam.step();
      hits += logits.argmax(1).eq(label).sum().item<int64_t>();
      seen += batch;
      ++best.steps;
    }
    const double success = static_cast<double>(hits) / static_cast<double>(seen);
    {
      torch::NoGradGuard no_grad;
      last_mask = from_tanh_space(mask_param).detach();
      last_pattern = (low + (high - low) * from_tanh_space(pattern_param)).detach();
    }
    last_success = success;
    const double norm = last_mask.sum().item<double>();
    if (success >= o.success_threshold() && norm < best.l1_norm) {
      best.mask = last_mask.clone();
      best.pattern = last_pattern.clone();
      best.l1_norm = norm;
      best.attack_success = success;
      best.reached = true;
    }
    // The cost schedule.
    if (success >= o.success_threshold()) {
      ++above;
      below = 0;
    } else {
      above = 0;
      ++below;
    }
    if (above >= o.patience()) {
      above = 0;
      cost *= o.cost_multiplier();
      raised = true;
    } else if (below >= o.patience()) {
      below = 0;
      cost /= std::pow(o.cost_multiplier(), 1.5);
      lowered = true;
    }
    // Early stop once the best norm has stalled.
    if (best.reached) {
      stalled = best.l1_norm >= 0.99 * early_best ? stalled + 1 : 0;
      early_best = std::min(early_best, best.l1_norm);
      if (raised && lowered && stalled >= o.early_stop_patience()) break;
    }
  }
  if (!best.reached) {  // never reached the threshold: report the last mask
    best.mask = last_mask;
    best.pattern = last_pattern;
    best.l1_norm = last_mask.sum().item<double>();
    best.attack_success = last_success;
  }
  best.mask = best.mask.cpu();
  best.pattern = best.pattern.cpu();
  return best;
}

}  // namespace

void NeuralCleanseOptions::validate() const {
  BULWARK_CHECK(checks_ >= 1 && batches_per_check_ >= 1 && batch_size_ >= 1 && patience_ >= 1 &&
                    early_stop_patience_ >= 1,
                "neural_cleanse: checks, batches_per_check, batch_size, patience and "
                "early_stop_patience must be >= 1");
  BULWARK_CHECK(learning_rate_ > 0 && std::isfinite(learning_rate_),
                "neural_cleanse: learning_rate must be finite and > 0, got {}", learning_rate_);
  BULWARK_CHECK(init_cost_ >= 0 && std::isfinite(init_cost_),
                "neural_cleanse: init_cost must be finite and >= 0, got {}", init_cost_);
  BULWARK_CHECK(success_threshold_ > 0 && success_threshold_ <= 1,
                "neural_cleanse: success_threshold must be in (0, 1], got {}", success_threshold_);
  BULWARK_CHECK(cost_multiplier_ > 1 && std::isfinite(cost_multiplier_),
                "neural_cleanse: cost_multiplier must be > 1, got {}", cost_multiplier_);
  BULWARK_CHECK(anomaly_threshold_ > 0, "neural_cleanse: anomaly_threshold must be > 0, got {}",
                anomaly_threshold_);
}

NeuralCleanseReport neural_cleanse(Model& model, const at::Tensor& images, int64_t num_classes,
                                   const NeuralCleanseOptions& options,
                                   const NeuralCleanseProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  options.validate();
  detail::check_float_tensor("neural_cleanse", "images", images, 4);
  BULWARK_CHECK(images.dim() == 4 && images.size(0) >= 1,
                "neural_cleanse: images must be a non-empty batch [N, C, H, W], got {}",
                detail::shape_string(images));
  detail::check_finite("neural_cleanse", "images", images);
  BULWARK_CHECK(images.min().item<double>() >= options.box().lower &&
                    images.max().item<double>() <= options.box().upper,
                "neural_cleanse: images must lie in the box [{}, {}]", options.box().lower,
                options.box().upper);
  BULWARK_CHECK(num_classes >= 2, "neural_cleanse: num_classes must be >= 2, got {}",
                num_classes);
  EvalModeGuard guard(model);
  auto generator = make_generator(options.seed());
  const auto x = images.detach().to(model.device());
  NeuralCleanseReport report;
  for (int64_t label = 0; label < num_classes; ++label) {
    report.classes.push_back(reverse_class(model, x, label, options, generator));
    if (progress) progress(label + 1, num_classes);
  }
  // Outliers below the median: the anomaly index of the negated norms.
  std::vector<double> negated;
  for (const auto& r : report.classes) negated.push_back(-r.l1_norm);
  const auto index = detail::anomaly_indices(negated);
  for (size_t i = 0; i < report.classes.size(); ++i) {
    auto& r = report.classes[i];
    r.anomaly_index = index[i];
    r.flagged = index[i] > options.anomaly_threshold();
    if (r.flagged) report.flagged.push_back(r.label);
  }
  report.backdoored = !report.flagged.empty();
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

void unlearn_backdoor(Model& model, const Dataset& clean, const Trigger& trigger,
                      const UnlearningOptions& options) {
  BULWARK_CHECK(clean.size() >= 1, "unlearn_backdoor: the clean data set is empty");
  detail::check_rate(options.stamped_fraction(), "unlearn_backdoor: stamped_fraction");
  BULWARK_CHECK(options.epochs() >= 1 && options.batch_size() >= 1 && options.learning_rate() > 0,
                "unlearn_backdoor: epochs and batch_size must be >= 1 and the learning rate > 0");
  auto generator = make_generator(options.seed());
  const auto chosen =
      detail::choose(at::arange(clean.size(), at::kLong),
                     detail::count_for(options.stamped_fraction(), clean.size()), generator);
  auto images = clean.images.clone();
  const auto on_device = chosen.to(images.device());
  images.index_copy_(0, on_device, trigger.apply(images.index_select(0, on_device)));
  Trainer trainer(model, TrainerOptions()
                             .epochs(options.epochs())
                             .batch_size(options.batch_size())
                             .learning_rate(options.learning_rate())
                             .seed(options.seed())
                             .keep_best(false));
  trainer.fit(Dataset(images, clean.labels, clean.num_classes, clean.name + " unlearning"));
}

}  // namespace bulwark
