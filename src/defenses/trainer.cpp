#include "bulwark/defenses/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <optional>

#include <spdlog/spdlog.h>

#include "bulwark/attacks/pgd.h"
#include "bulwark/core/seed.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/eval/robustness.h"
#include "core/check.h"
#include "defenses/trainer_state.h"

namespace bulwark {

OptimizerKind parse_optimizer(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "sgd") return OptimizerKind::SGD;
  if (lower == "adam") return OptimizerKind::Adam;
  throw Error(fmt::format("parse_optimizer: expected 'sgd' or 'adam', got '{}'", text));
}

std::string to_string(OptimizerKind kind) {
  return kind == OptimizerKind::SGD ? "sgd" : "adam";
}

namespace {

using detail::copy_state;
using detail::load_state;

// Restores the model's train/eval mode on every exit.
class ModeRestorer {
 public:
  explicit ModeRestorer(Model& model) : model_(model), was_training_(model.is_training()) {}
  ~ModeRestorer() { model_.train(was_training_); }
  ModeRestorer(const ModeRestorer&) = delete;
  ModeRestorer& operator=(const ModeRestorer&) = delete;

 private:
  Model& model_;
  bool was_training_;
};

}  // namespace

TrainingRecipe default_recipe(StrategyKind strategy, bool differential_privacy) {
  TrainingRecipe recipe;
  if (differential_privacy) {
    recipe.batch_size = 1024;
    recipe.optimizer = OptimizerKind::SGD;
    recipe.learning_rate = 1.0;
    recipe.source = "DP-SGD: SGD 1.0, momentum 0.9, Poisson rate 1024/N (measured on TanhCNN)";
    return recipe;
  }
  switch (strategy) {
    case StrategyKind::Standard:
    case StrategyKind::GaussianNoise:
      recipe.source = "Adam 1e-3, batch 128 (Kingma & Ba 2015)";
      return recipe;
    case StrategyKind::FastAT:
    case StrategyKind::PGDAT:
    case StrategyKind::TRADES:
    case StrategyKind::MART:
      recipe.batch_size = 100;
      recipe.learning_rate = 5e-3;
      recipe.schedule = ScheduleOptions(ScheduleKind::OneCycle);
      recipe.source = "Adam, one-cycle to 5e-3, batch 100 (Wong et al. 2020)";
      return recipe;
  }
  throw Error("default_recipe: unknown strategy");
}

TrainingRecipe TrainerOptions::recipe() const {
  auto recipe = default_recipe(strategy().kind(), differential_privacy());
  const bool custom = batch_size() || optimizer() || learning_rate() || schedule();
  if (batch_size()) recipe.batch_size = *batch_size();
  if (optimizer()) recipe.optimizer = *optimizer();
  if (learning_rate()) recipe.learning_rate = *learning_rate();
  if (schedule()) recipe.schedule = *schedule();
  if (custom) recipe.source = "given, over " + recipe.source;
  return recipe;
}

Trainer::Trainer(Model model, TrainerOptions options)
    : model_(std::move(model)),
      options_(std::move(options)),
      recipe_(options_.recipe()),
      state_(std::make_unique<State>()) {
  BULWARK_CHECK(options_.epochs() >= 1, "Trainer: epochs must be >= 1, got {}", options_.epochs());
  BULWARK_CHECK(recipe_.batch_size >= 1, "Trainer: batch_size must be >= 1, got {}",
                recipe_.batch_size);
  BULWARK_CHECK(recipe_.learning_rate > 0 && std::isfinite(recipe_.learning_rate),
                "Trainer: learning_rate must be finite and > 0, got {}", recipe_.learning_rate);
  BULWARK_CHECK(options_.momentum() >= 0, "Trainer: momentum must be >= 0, got {}",
                options_.momentum());
  BULWARK_CHECK(options_.weight_decay() >= 0, "Trainer: weight_decay must be >= 0, got {}",
                options_.weight_decay());
  BULWARK_CHECK(options_.eval_steps() >= 1, "Trainer: eval_steps must be >= 1, got {}",
                options_.eval_steps());
  BULWARK_CHECK(options_.eval_batch_size() >= 1, "Trainer: eval_batch_size must be >= 1, got {}",
                options_.eval_batch_size());
  BULWARK_CHECK(std::isfinite(options_.eval_eps()), "Trainer: eval_eps must be finite, got {}",
                options_.eval_eps());
  recipe_.schedule.validate();
  if (options_.differential_privacy()) {
    options_.privacy().validate();
    state_->dp = std::make_unique<DPSGD>(model_, options_.privacy());  // rejects BatchNorm
    state_->accountant = make_accountant(options_.privacy().accountant());
  }
  state_->strategy = make_strategy(options_.strategy());
  std::vector<at::Tensor> params;
  for (const auto& p : model_.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  BULWARK_CHECK(!params.empty(), "Trainer: the model '{}' has no trainable parameters",
                model_.name());
  if (recipe_.optimizer == OptimizerKind::SGD) {
    state_->optimizer = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(recipe_.learning_rate)
                    .momentum(options_.momentum())
                    .weight_decay(options_.weight_decay()));
  } else {
    state_->optimizer = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(recipe_.learning_rate)
                    .weight_decay(options_.weight_decay()));
  }
}

Trainer::~Trainer() = default;

void Trainer::on_batch(std::function<void(const BatchProgress&)> callback) {
  on_batch_ = std::move(callback);
}

void Trainer::on_epoch(std::function<void(const EpochMetrics&)> callback) {
  on_epoch_ = std::move(callback);
}

std::vector<EpochMetrics> Trainer::fit(const Dataset& train, const Dataset& validation) {
  BULWARK_CHECK(train.size() > 0, "Trainer::fit: the training set '{}' is empty", train.name);
  auto& st = *state_;
  const auto& strategy = options_.strategy();
  const double eval_eps = options_.eval_eps() > 0 ? options_.eval_eps() : strategy.eps();
  const auto device = model_.device();
  const bool dp = st.dp != nullptr;
  const auto& privacy = options_.privacy();
  BatchLoader loader(train, BatchLoaderOptions(recipe_.batch_size).shuffle(true).seed(
                                options_.seed()));
  std::optional<PoissonSampler> sampler;
  if (dp) {
    st.set_sample_rate(train.size(), recipe_.batch_size);
    sampler.emplace(train.size(), st.sample_rate, options_.seed());
  }
  const int64_t batches = dp ? sampler->steps_per_epoch() : loader.batches_per_epoch();
  const int64_t total_steps = options_.epochs() * batches;
  const int64_t warmup_steps = strategy.warmup_epochs() * batches;
  if (dp && !st.calibrated) st.calibrate(privacy, total_steps);
  Dataset held_out;
  if (validation.size() > 0) {
    held_out = Dataset(validation.images.to(device), validation.labels.to(device),
                       validation.num_classes, validation.name);
  }
  int64_t budget_steps = -1;  // −1: no limit
  if (dp && privacy.epsilon_budget() > 0) {
    budget_steps = st.steps_within_budget(privacy, (options_.epochs() - st.next_epoch) * batches);
  }
  ModeRestorer restore_mode(model_);
  std::vector<EpochMetrics> ran;
  for (int64_t epoch = st.next_epoch; epoch < options_.epochs() && !st.stopped; ++epoch) {
    model_.train(true);
    const auto start = std::chrono::steady_clock::now();
    // The attack's random starts for this epoch depend only on (seed, epoch), and so does the
    // DP noise (unless it comes from the secure source).
    auto generator = make_generator(derive_seed(options_.seed(), 1000 + static_cast<uint64_t>(epoch)),
                                    device);
    auto noise_generator =
        make_generator(derive_seed(options_.seed(), 2000 + static_cast<uint64_t>(epoch)));
    double loss_sum = 0, lr = recipe_.learning_rate, eps = strategy.eps();
    int64_t correct = 0, seen = 0, clipped = 0;
    // One optimizer step on a batch (which DP-SGD's Poisson sampling may leave empty).
    const auto train_batch = [&](const at::Tensor& cpu_inputs, const at::Tensor& cpu_labels,
                                 int64_t index) {
      const int64_t step = epoch * batches + index;
      lr = scheduled_learning_rate(recipe_.schedule, recipe_.learning_rate, step,
                                   total_steps, batches);
      for (auto& group : st.optimizer->param_groups()) group.options().set_lr(lr);
      eps = warmup_steps > 0 ? strategy.eps() * std::min(1.0, static_cast<double>(step + 1) /
                                                                  static_cast<double>(warmup_steps))
                             : strategy.eps();
      const auto inputs = cpu_inputs.to(device);
      const auto labels = cpu_labels.to(device);
      const auto n = inputs.size(0);
      double loss_value = 0;
      int64_t batch_correct = 0;
      if (dp) {
        auto predictions = at::full({n}, -1, labels.options());
        PerSampleLossFn losses;
        if (n > 0) {
          auto objective = st.strategy->objective(model_, inputs, labels, eps, generator);
          losses = [objective, predictions](int64_t begin, int64_t end) mutable {
            const auto out = objective(begin, end);
            predictions.slice(0, begin, end).copy_(out.logits.detach().argmax(1));
            return out.loss;
          };
        }
        const auto result = st.dp->gradient(n, losses, st.sample_rate *
                                                           static_cast<double>(train.size()),
                                            noise_generator);
        st.accountant->step(st.dp->options().noise_multiplier(), st.sample_rate, 1);
        loss_value = result.mean_loss;
        batch_correct = predictions.eq(labels).sum().item<int64_t>();
        clipped += std::llround(result.clipped_fraction * static_cast<double>(n));
      } else {
        st.optimizer->zero_grad();
        const auto out = st.strategy->loss(model_, inputs, labels, eps, generator);
        loss_value = out.loss.item<double>();
        BULWARK_CHECK(std::isfinite(loss_value),
                      "Trainer::fit: the loss became {} at epoch {} batch {}; lower the learning "
                      "rate (now {})",
                      loss_value, epoch, index, lr);
        out.loss.backward();
        batch_correct = out.logits.argmax(1).eq(labels).sum().item<int64_t>();
      }
      st.optimizer->step();
      loss_sum += loss_value * static_cast<double>(n);
      correct += batch_correct;
      seen += n;
      if (on_batch_) {
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        on_batch_({epoch, options_.epochs(), index, batches, loss_value,
                   static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(seen, 1)),
                   static_cast<double>(seen) / std::max(seconds, 1e-9), lr, eps});
      }
    };
    if (dp) {
      const auto steps = sampler->epoch(epoch);
      for (size_t s = 0; s < steps.size(); ++s) {
        if (budget_steps == 0) {
          st.stopped = true;
          spdlog::info("DP-SGD: stopping at epoch {} step {}: the next step would spend more "
                       "than the budget epsilon {}",
                       epoch, s, privacy.epsilon_budget());
          break;
        }
        if (budget_steps > 0) --budget_steps;
        train_batch(train.images.index_select(0, steps[s]),
                    train.labels.index_select(0, steps[s]), static_cast<int64_t>(s));
      }
    } else {
      loader.start_epoch(epoch);
      while (auto batch = loader.next()) train_batch(batch->inputs, batch->labels, batch->index);
    }
    EpochMetrics metrics;
    metrics.epoch = epoch;
    const double count = static_cast<double>(std::max<int64_t>(seen, 1));
    metrics.train_loss = loss_sum / count;
    metrics.train_accuracy = static_cast<double>(correct) / count;
    if (dp) {
      metrics.epsilon = st.accountant->spent(privacy.delta()).epsilon;
      metrics.clipped_fraction = static_cast<double>(clipped) / count;
    }
    metrics.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics.samples_per_second = static_cast<double>(seen) / std::max(metrics.seconds, 1e-9);
    metrics.learning_rate = lr;
    metrics.eps = eps;
    if (held_out.size() > 0) {
      const auto eval_start = std::chrono::steady_clock::now();
      if (eval_eps > 0) {
        std::vector<std::shared_ptr<Attack>> attack = {std::make_shared<PGD>(
            PGDOptions(eval_eps).norm(strategy.norm()).steps(options_.eval_steps()).seed(
                options_.seed()).box(strategy.box()))};
        const auto report = evaluate(model_, held_out, attack, {eval_eps},
                                     EvaluationOptions()
                                         .batch_size(options_.eval_batch_size())
                                         .early_stop(true)
                                         .sanity_samples(0));
        metrics.clean_accuracy = report.clean_accuracy;
        metrics.robust_accuracy = report.results.front().robust_accuracy;
      } else {
        metrics.clean_accuracy = clean_accuracy(model_, held_out, options_.eval_batch_size()).accuracy;
      }
      metrics.eval_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
      // Robust accuracy picks the best epoch of adversarial training, clean accuracy that of
      // standard and Gaussian-noise training (whose PGD robust accuracy stays near zero).
      const bool adversarial = strategy.kind() != StrategyKind::Standard &&
                               strategy.kind() != StrategyKind::GaussianNoise;
      const double score = adversarial && metrics.robust_accuracy >= 0 ? metrics.robust_accuracy
                                                                       : metrics.clean_accuracy;
      if (score > st.best_score) {
        st.best_score = score;
        st.best = copy_state(model_);
        best_epoch_ = epoch;
        metrics.best = true;
      }
    }
    history_.push_back(metrics);
    ran.push_back(metrics);
    st.next_epoch = epoch + 1;
    if (!options_.checkpoint().empty()) write_checkpoint(options_.checkpoint());
    if (on_epoch_) on_epoch_(metrics);
  }
  if (options_.keep_best() && !st.best.empty()) load_state(model_, st.best);
  return ran;
}

}  // namespace bulwark
