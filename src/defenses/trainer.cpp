#include "bulwark/defenses/trainer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include <spdlog/spdlog.h>

#include "bulwark/attacks/pgd.h"
#include "bulwark/core/files.h"
#include "bulwark/core/seed.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/eval/robustness.h"
#include "core/check.h"

namespace bulwark {

OptimizerKind parse_optimizer(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "sgd") return OptimizerKind::SGD;
  if (lower == "adam") return OptimizerKind::Adam;
  throw Error(fmt::format("parse_optimizer: expected 'sgd' or 'adam', got '{}'", text));
}

namespace {

constexpr const char* kCheckpointFormat = "bulwark-checkpoint-1";

// The tensors that make up a model's state, named: parameters, then buffers.
std::vector<std::pair<std::string, at::Tensor>> named_state(const Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  if (const auto module = model.module()) {
    for (const auto& p : module->named_parameters()) state.emplace_back("parameter " + p.key(), p.value());
    for (const auto& b : module->named_buffers()) state.emplace_back("buffer " + b.key(), b.value());
  } else {
    const auto params = model.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      state.emplace_back(fmt::format("parameter {}", i), params[i]);
    }
  }
  return state;
}

std::vector<at::Tensor> copy_state(const Model& model) {
  std::vector<at::Tensor> copies;
  for (const auto& [name, t] : named_state(model)) copies.push_back(t.detach().clone());
  return copies;
}

void load_state(const Model& model, const std::vector<at::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  const auto state = named_state(model);
  for (size_t i = 0; i < state.size(); ++i) state[i].second.copy_(tensors[i]);
}

nlohmann::json to_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},
          {"train_loss", m.train_loss},
          {"train_accuracy", m.train_accuracy},
          {"seconds", m.seconds},
          {"samples_per_second", m.samples_per_second},
          {"learning_rate", m.learning_rate},
          {"eps", m.eps},
          {"epsilon", m.epsilon},
          {"clipped_fraction", m.clipped_fraction},
          {"clean_accuracy", m.clean_accuracy},
          {"robust_accuracy", m.robust_accuracy},
          {"eval_seconds", m.eval_seconds},
          {"best", m.best}};
}

EpochMetrics epoch_from_json(const nlohmann::json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch").get<int64_t>();
  m.train_loss = j.at("train_loss").get<double>();
  m.train_accuracy = j.at("train_accuracy").get<double>();
  m.seconds = j.at("seconds").get<double>();
  m.samples_per_second = j.at("samples_per_second").get<double>();
  m.learning_rate = j.at("learning_rate").get<double>();
  m.eps = j.at("eps").get<double>();
  m.epsilon = j.value("epsilon", -1.0);
  m.clipped_fraction = j.value("clipped_fraction", -1.0);
  m.clean_accuracy = j.at("clean_accuracy").get<double>();
  m.robust_accuracy = j.at("robust_accuracy").get<double>();
  m.eval_seconds = j.at("eval_seconds").get<double>();
  m.best = j.at("best").get<bool>();
  return m;
}

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

struct Trainer::State {
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<TrainingStrategy> strategy;
  int64_t next_epoch = 0;
  std::vector<at::Tensor> best;
  double best_score = -std::numeric_limits<double>::infinity();
  // DP-SGD.
  std::unique_ptr<DPSGD> dp;
  std::unique_ptr<Accountant> accountant;
  double sample_rate = 0.0;
  bool calibrated = false;
  bool stopped = false;
};

Trainer::Trainer(Model model, TrainerOptions options)
    : model_(std::move(model)), options_(std::move(options)), state_(std::make_unique<State>()) {
  BULWARK_CHECK(options_.epochs() >= 1, "Trainer: epochs must be >= 1, got {}", options_.epochs());
  BULWARK_CHECK(options_.batch_size() >= 1, "Trainer: batch_size must be >= 1, got {}",
                options_.batch_size());
  BULWARK_CHECK(options_.learning_rate() > 0 && std::isfinite(options_.learning_rate()),
                "Trainer: learning_rate must be finite and > 0, got {}", options_.learning_rate());
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
  options_.schedule().validate();
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
  if (options_.optimizer() == OptimizerKind::SGD) {
    state_->optimizer = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(options_.learning_rate())
                    .momentum(options_.momentum())
                    .weight_decay(options_.weight_decay()));
  } else {
    state_->optimizer = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(options_.learning_rate())
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

void Trainer::write_checkpoint(const std::filesystem::path& path) const {
  torch::serialize::OutputArchive archive;
  const auto state = named_state(model_);
  std::string names;
  for (size_t i = 0; i < state.size(); ++i) {
    names += state[i].first + "\n";
    archive.write(fmt::format("tensor_{}", i), state[i].second.detach());
    if (!state_->best.empty()) archive.write(fmt::format("best_{}", i), state_->best[i]);
  }
  torch::serialize::OutputArchive optimizer;
  state_->optimizer->save(optimizer);
  archive.write("optimizer", optimizer);
  nlohmann::json history = nlohmann::json::array();
  for (const auto& m : history_) history.push_back(to_json(m));
  archive.write("format", c10::IValue(std::string(kCheckpointFormat)));
  archive.write("names", c10::IValue(names));
  archive.write("model_name", c10::IValue(model_.name()));
  archive.write("next_epoch", c10::IValue(state_->next_epoch));
  archive.write("has_best", c10::IValue(!state_->best.empty()));
  archive.write("best_epoch", c10::IValue(best_epoch_));
  archive.write("best_score", c10::IValue(state_->best_score));
  archive.write("history", c10::IValue(history.dump()));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  if (state_->dp) {
    archive.write("dp_steps", c10::IValue(state_->accountant->steps()));
    archive.write("dp_sigma", c10::IValue(state_->dp->options().noise_multiplier()));
    archive.write("dp_rate", c10::IValue(state_->sample_rate));
    archive.write("dp_stopped", c10::IValue(state_->stopped));
  }
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    try {
      archive.save_to(tmp.string());
    } catch (const c10::Error& e) {
      throw Error(fmt::format("Trainer: writing the checkpoint '{}' failed: {}", path.string(),
                              e.what_without_backtrace()));
    }
  });
}

void Trainer::resume(const std::filesystem::path& checkpoint) {
  const auto where = fmt::format("Trainer::resume: checkpoint '{}'", checkpoint.string());
  BULWARK_CHECK(std::filesystem::is_regular_file(checkpoint), "{} does not exist or is not a file",
                where);
  torch::serialize::InputArchive archive;
  c10::IValue format, names, next_epoch, has_best, best_epoch, best_score, history;
  c10::IValue dp_steps, dp_sigma, dp_rate, dp_stopped;
  try {
    archive.load_from(checkpoint.string(), model_.device());
    BULWARK_CHECK(archive.try_read("format", format) && format.isString() &&
                      format.toStringRef() == kCheckpointFormat,
                  "{} is not a Bulwark training checkpoint", where);
    archive.read("names", names);
    archive.read("next_epoch", next_epoch);
    archive.read("has_best", has_best);
    archive.read("best_epoch", best_epoch);
    archive.read("best_score", best_score);
    archive.read("history", history);
    if (state_->dp) {
      BULWARK_CHECK(archive.try_read("dp_steps", dp_steps) && archive.try_read("dp_sigma", dp_sigma) &&
                        archive.try_read("dp_rate", dp_rate) &&
                        archive.try_read("dp_stopped", dp_stopped),
                    "{} was not written by differentially private training, so the privacy "
                    "already spent is unknown",
                    where);
    }
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{} is corrupt or not a Bulwark training checkpoint: {}", where,
                            e.what_without_backtrace()));
  }
  // Everything is read and checked before anything is changed.
  const auto state = named_state(model_);
  std::string expected;
  for (const auto& [name, t] : state) expected += name + "\n";
  const auto& saved = names.toStringRef();
  BULWARK_CHECK(saved == expected,
                "{} holds the weights of another architecture than '{}' ({} tensors named "
                "differently from the model's {})",
                where, model_.name(), std::count(saved.begin(), saved.end(), '\n'), state.size());
  std::vector<at::Tensor> tensors(state.size()), best;
  at::Tensor rng;
  try {
    archive.read("rng", rng);
    for (size_t i = 0; i < state.size(); ++i) {
      archive.read(fmt::format("tensor_{}", i), tensors[i]);
      BULWARK_CHECK(tensors[i].sizes() == state[i].second.sizes(),
                    "{} holds another architecture: '{}' has shape {} in the checkpoint and {} "
                    "in the model",
                    where, state[i].first, detail::shape_string(tensors[i]),
                    detail::shape_string(state[i].second));
      if (has_best.toBool()) {
        best.emplace_back();
        archive.read(fmt::format("best_{}", i), best.back());
      }
    }
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{} is corrupt: {}", where, e.what_without_backtrace()));
  }
  std::vector<EpochMetrics> restored;
  try {
    for (const auto& j : nlohmann::json::parse(history.toStringRef())) {
      restored.push_back(epoch_from_json(j));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{} has a corrupt history: {}", where, e.what()));
  }
  try {
    torch::serialize::InputArchive optimizer;
    archive.read("optimizer", optimizer);
    state_->optimizer->load(optimizer);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{}: the optimizer state does not fit (another optimizer?): {}", where,
                            e.what_without_backtrace()));
  }
  load_state(model_, tensors);
  auto global_generator = at::detail::getDefaultCPUGenerator();
  global_generator.set_state(rng.cpu());
  state_->next_epoch = next_epoch.toInt();
  state_->best = std::move(best);
  state_->best_score = best_score.toDouble();
  best_epoch_ = best_epoch.toInt();
  history_ = std::move(restored);
  if (state_->dp) {
    state_->sample_rate = dp_rate.toDouble();
    state_->dp->set_noise_multiplier(dp_sigma.toDouble());
    state_->calibrated = true;
    state_->stopped = dp_stopped.toBool();
    state_->accountant = make_accountant(options_.privacy().accountant());
    if (dp_steps.toInt() > 0) {
      state_->accountant->step(dp_sigma.toDouble(), state_->sample_rate, dp_steps.toInt());
    }
  }
}

double Trainer::noise_multiplier() const {
  BULWARK_CHECK(state_->dp != nullptr, "Trainer: not training with differential privacy");
  return state_->dp->options().noise_multiplier();
}

PrivacySpent Trainer::privacy_spent() const {
  BULWARK_CHECK(state_->dp != nullptr, "Trainer: not training with differential privacy");
  return state_->accountant->spent(options_.privacy().delta());
}

bool Trainer::stopped_at_budget() const { return state_->stopped; }

std::vector<EpochMetrics> Trainer::fit(const Dataset& train, const Dataset& validation) {
  BULWARK_CHECK(train.size() > 0, "Trainer::fit: the training set '{}' is empty", train.name);
  auto& st = *state_;
  const auto& strategy = options_.strategy();
  const double eval_eps = options_.eval_eps() > 0 ? options_.eval_eps() : strategy.eps();
  const auto device = model_.device();
  const bool dp = st.dp != nullptr;
  const auto& privacy = options_.privacy();
  BatchLoader loader(train, BatchLoaderOptions(options_.batch_size()).shuffle(true).seed(
                                options_.seed()));
  std::optional<PoissonSampler> sampler;
  if (dp) {
    const double rate = std::min(1.0, static_cast<double>(options_.batch_size()) /
                                          static_cast<double>(train.size()));
    BULWARK_CHECK(!st.calibrated || std::abs(rate - st.sample_rate) < 1e-12,
                  "Trainer::fit: the training set has {} samples, so the sampling rate would be "
                  "{}, but training so far used {}; privacy accounting needs the same dataset",
                  train.size(), rate, st.sample_rate);
    st.sample_rate = rate;
    sampler.emplace(train.size(), rate, options_.seed());
  }
  const int64_t batches = dp ? sampler->steps_per_epoch() : loader.batches_per_epoch();
  const int64_t total_steps = options_.epochs() * batches;
  const int64_t warmup_steps = strategy.warmup_epochs() * batches;
  if (dp && !st.calibrated) {
    if (privacy.target_epsilon() > 0) {
      const double sigma = calibrate_noise_multiplier(privacy.target_epsilon(), privacy.delta(),
                                                      st.sample_rate, total_steps,
                                                      privacy.accountant());
      st.dp->set_noise_multiplier(sigma);
      spdlog::info("DP-SGD: noise multiplier {:.4f} spends epsilon {} at delta {} over {} steps "
                   "at sampling rate {:.6f} ({} accountant)",
                   sigma, privacy.target_epsilon(), privacy.delta(), total_steps,
                   st.sample_rate, privacy.accountant());
    }
    st.calibrated = true;
  }
  Dataset held_out;
  if (validation.size() > 0) {
    held_out = Dataset(validation.images.to(device), validation.labels.to(device),
                       validation.num_classes, validation.name);
  }
  // The ε budget: how many more steps it allows, found once by bisection (ε grows with the
  // steps), since a PRV query takes a fraction of a second.
  int64_t budget_steps = -1;  // −1: no limit
  if (dp && privacy.epsilon_budget() > 0) {
    const double sigma = st.dp->options().noise_multiplier();
    const auto exceeds = [&](int64_t steps) {
      auto next = st.accountant->clone();
      if (steps > 0) next->step(sigma, st.sample_rate, steps);
      return next->spent(privacy.delta()).epsilon > privacy.epsilon_budget();
    };
    const int64_t remaining = (options_.epochs() - st.next_epoch) * batches;
    if (exceeds(remaining)) {
      int64_t lo = 0, hi = remaining;  // the answer is in [lo, hi)
      if (exceeds(0)) hi = 0;
      while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        (exceeds(mid) ? hi : lo) = mid;
      }
      budget_steps = lo;
    }
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
    double loss_sum = 0, lr = options_.learning_rate(), eps = strategy.eps();
    int64_t correct = 0, seen = 0, clipped = 0;
    // One optimizer step on a batch (which DP-SGD's Poisson sampling may leave empty).
    const auto train_batch = [&](const at::Tensor& cpu_inputs, const at::Tensor& cpu_labels,
                                 int64_t index) {
      const int64_t step = epoch * batches + index;
      lr = scheduled_learning_rate(options_.schedule(), options_.learning_rate(), step,
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
