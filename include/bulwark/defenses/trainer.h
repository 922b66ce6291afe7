#pragma once
/// @file
/// The training loop: strategies (standard and adversarial), schedules, per-epoch validation,
/// checkpoints and resume.

#include <torch/arg.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"
#include "bulwark/defenses/lr_schedule.h"
#include "bulwark/defenses/strategy.h"
#include "bulwark/privacy/accountant.h"
#include "bulwark/privacy/dp_sgd.h"

namespace bulwark {

enum class OptimizerKind { SGD, Adam };
/// "sgd" or "adam". @throws Error for anything else.
OptimizerKind parse_optimizer(const std::string& text);
std::string to_string(OptimizerKind kind);

/// The optimisation a strategy trains with unless TrainerOptions say otherwise: the setting
/// measured to work best for it on Fashion-MNIST (docs/defenses/adversarial-training.md).
struct TrainingRecipe {
  int64_t batch_size = 128;
  OptimizerKind optimizer = OptimizerKind::Adam;
  double learning_rate = 1e-3;
  ScheduleOptions schedule;
  /// Where the recipe comes from, for logs and reports.
  std::string source;
};

/// The default recipe of a strategy, with or without DP-SGD:
/// - standard and gaussian: Adam 1e-3 constant, batch 128 (Adam's default, Kingma & Ba 2015);
/// - fast-at, pgd-at, trades, mart: Adam with a one-cycle rate peaking at 5e-3 after 40% of
///   training, batch 100 (Wong et al. 2020's MNIST recipe for fast AT; measured for each);
/// - DP-SGD (any strategy): SGD 1.0 with momentum 0.9 (the `momentum` option), constant,
///   Poisson rate 1024 / N: measured on Papernot et al. 2021's TanhCNN (83.5% at ε 3 in 5
///   epochs), whose paper gives results but not its searched hyperparameters.
TrainingRecipe default_recipe(StrategyKind strategy, bool differential_privacy);

struct TrainerOptions {
  TORCH_ARG(int64_t, epochs) = 1;
  /// The next four are unset by default: the strategy's recipe (default_recipe) fills them in,
  /// and a value set here wins.
  TORCH_ARG(std::optional<int64_t>, batch_size) = std::nullopt;
  TORCH_ARG(std::optional<OptimizerKind>, optimizer) = std::nullopt;
  TORCH_ARG(std::optional<double>, learning_rate) = std::nullopt;
  /// The learning rate over training.
  TORCH_ARG(std::optional<ScheduleOptions>, schedule) = std::nullopt;
  TORCH_ARG(double, momentum) = 0.9;  ///< SGD only
  TORCH_ARG(double, weight_decay) = 0.0;
  /// Seeds the batch order and the training attack's random starts; epoch e's draws depend
  /// only on (seed, e), so a resumed run repeats an uninterrupted one.
  TORCH_ARG(uint64_t, seed) = 0;
  /// How a batch becomes a loss (default: standard training).
  TORCH_ARG(StrategyOptions, strategy) = StrategyOptions();
  /// Where to write a checkpoint after every epoch (atomically; empty: none).
  TORCH_ARG(std::string, checkpoint) = "";
  /// Budget of the per-epoch robust accuracy on the validation set: <= 0 means the strategy's
  /// eps; with both 0 only clean accuracy is measured.
  TORCH_ARG(double, eval_eps) = 0.0;
  /// PGD steps of that evaluation (PGD-20, early stop).
  TORCH_ARG(int64_t, eval_steps) = 20;
  TORCH_ARG(int64_t, eval_batch_size) = 500;
  /// After fit(), leave the model with the weights of its best epoch on the validation set
  /// (robust accuracy for adversarial strategies, clean accuracy for standard training or
  /// without a budget): against robust overfitting (Rice et al. 2020).
  TORCH_ARG(bool, keep_best) = true;
  /// Train with DP-SGD (Abadi et al. 2016): Poisson-sampled batches at rate
  /// batch_size / N (round(N / batch_size) steps per epoch), per-sample clipping and Gaussian
  /// noise as `privacy` says, any strategy (private and robust: the attack's examples are
  /// clipped per sample like clean ones). The model must not hold BatchNorm.
  TORCH_ARG(bool, differential_privacy) = false;
  TORCH_ARG(DPSGDOptions, privacy) = DPSGDOptions();

 public:
  /// The recipe these options train with: default_recipe(strategy, differential_privacy) with
  /// every value set here in its place.
  TrainingRecipe recipe() const;
};

/// Reported after each batch.
struct BatchProgress {
  int64_t epoch = 0, epochs = 0;    ///< epoch is 0-based
  int64_t batch = 0, batches = 0;   ///< batch is 0-based
  double loss = 0.0;                ///< this batch's mean loss
  double running_accuracy = 0.0;    ///< accuracy on what the model trained on, this epoch
  double samples_per_second = 0.0;
  double learning_rate = 0.0;
  double eps = 0.0;                 ///< this batch's training budget
};

/// Reported after each epoch.
struct EpochMetrics {
  int64_t epoch = 0;  ///< 0-based
  double train_loss = 0.0;
  double train_accuracy = 0.0;
  double seconds = 0.0;            ///< training time of the epoch, evaluation excluded
  double samples_per_second = 0.0;
  double learning_rate = 0.0;      ///< at the epoch's last batch
  double eps = 0.0;                ///< training budget at the epoch's last batch
  /// DP-SGD: the ε spent so far (at the options' δ), −1 without differential privacy.
  double epsilon = -1.0;
  /// DP-SGD: the fraction of samples whose gradient norm exceeded C this epoch.
  double clipped_fraction = -1.0;
  /// On the validation set; −1 when there is none (or no budget, for the robust one).
  double clean_accuracy = -1.0;
  double robust_accuracy = -1.0;
  double eval_seconds = 0.0;
  bool best = false;               ///< the best epoch so far
};

/// Trains a model with a strategy (standard, PGD-AT, TRADES, MART, fast AT), a learning-rate
/// schedule and an eps warm-up; measures clean and PGD robust accuracy on a validation set after
/// every epoch; keeps the best epoch's weights; writes a checkpoint after every epoch and
/// resumes from one to the same final weights, bit for bit on CPU. The model is left in the
/// mode it had before fit().
class Trainer {
 public:
  /// @throws Error when epochs < 1, batch_size < 1, learning_rate <= 0, momentum or
  /// weight_decay < 0, the strategy or schedule options are invalid, or the model has no
  /// trainable parameters.
  Trainer(Model model, TrainerOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  void on_batch(std::function<void(const BatchProgress&)> callback);
  void on_epoch(std::function<void(const EpochMetrics&)> callback);

  /// Restores model, optimizer, random state, history and best weights from a checkpoint that
  /// fit() wrote; the next fit() continues after its last epoch.
  /// @throws Error when the file is missing or corrupt, or holds another architecture's
  /// weights (the model is left unchanged then).
  void resume(const std::filesystem::path& checkpoint);

  /// Runs the remaining epochs over `train`, measuring on `validation` (may be empty) after
  /// each. @throws Error when train is empty or the loss is not finite (the last checkpoint is
  /// left as it was).
  std::vector<EpochMetrics> fit(const Dataset& train, const Dataset& validation = Dataset());

  /// What this trainer trains with: the options' recipe().
  const TrainingRecipe& recipe() const { return recipe_; }
  /// Every epoch so far, resumed ones included.
  const std::vector<EpochMetrics>& history() const { return history_; }
  /// The best epoch on the validation set (−1 before any).
  int64_t best_epoch() const { return best_epoch_; }

  /// DP-SGD: the noise multiplier in use (calibrated by the first fit() when the options give
  /// a target ε), the privacy spent so far, and whether training stopped at the ε budget.
  /// @throws Error without differential privacy.
  double noise_multiplier() const;
  PrivacySpent privacy_spent() const;
  bool stopped_at_budget() const;

 private:
  struct State;
  void write_checkpoint(const std::filesystem::path& path) const;

  Model model_;
  TrainerOptions options_;
  TrainingRecipe recipe_;
  std::unique_ptr<State> state_;
  std::function<void(const BatchProgress&)> on_batch_;
  std::function<void(const EpochMetrics&)> on_epoch_;
  std::vector<EpochMetrics> history_;
  int64_t best_epoch_ = -1;
};

}  // namespace bulwark
