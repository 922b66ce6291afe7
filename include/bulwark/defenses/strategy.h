#pragma once
/// @file
/// Training strategies: how a batch becomes a loss. Standard training, PGD adversarial training
/// (Madry et al. 2018), TRADES (Zhang et al. 2019), MART (Wang et al. 2020) and fast
/// adversarial training (Wong et al. 2020). The adversarial examples come from Bulwark's PGD.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bulwark/core/input_box.h"
#include "bulwark/core/model.h"
#include "bulwark/core/norms.h"

namespace bulwark {

/// GaussianNoise: Gaussian data augmentation, the training of randomized smoothing's base
/// classifier (Cohen et al. 2019).
enum class StrategyKind { Standard, PGDAT, TRADES, MART, FastAT, GaussianNoise };

/// "standard", "pgd-at", "trades", "mart", "fast-at" or "gaussian". @throws Error otherwise.
StrategyKind parse_strategy(std::string_view text);
std::string to_string(StrategyKind kind);

struct StrategyOptions {
  explicit StrategyOptions(StrategyKind kind = StrategyKind::Standard, double eps = 0.0)
      : kind_(kind), eps_(eps) {}
  TORCH_ARG(StrategyKind, kind);
  /// The training budget (input units).
  TORCH_ARG(double, eps);
  TORCH_ARG(Norm, norm) = Norm::Linf;
  /// PGD steps of PGD-AT, TRADES and MART (10, as TRADES and MART on CIFAR-10); fast AT takes
  /// one.
  TORCH_ARG(int64_t, steps) = 10;
  /// Step size; <= 0 means 2.5 · eps / steps (Madry et al.), and 1.25 · eps for fast AT (Wong
  /// et al.).
  TORCH_ARG(double, step_size) = 0.0;
  /// TRADES' β (the weight of the KL term, 1/λ in the paper) and MART's λ: 6, both papers'
  /// default.
  TORCH_ARG(double, beta) = 6.0;
  /// Noise level of the gaussian strategy (input units; 0.25 as Cohen et al.'s middle level).
  TORCH_ARG(double, sigma) = 0.25;
  /// eps grows linearly from 0 to its value over the first warmup_epochs epochs (0: off).
  TORCH_ARG(int64_t, warmup_epochs) = 0;
  TORCH_ARG(InputBox, box) = InputBox();

 public:
  /// @throws Error on eps < 0 or not finite, steps < 1, step_size not finite, beta < 0,
  /// sigma <= 0, warmup_epochs < 0.
  void validate() const;
};

/// What a strategy returns for a batch, or for a slice of one.
struct StrategyLoss {
  at::Tensor loss;    ///< scalar to minimize (per-sample losses [rows] from a BatchObjective)
  at::Tensor logits;  ///< the logits the model was trained on (for training accuracy)
};

/// The per-sample losses of rows [begin, end) of a prepared batch, with their logits; each call
/// runs the model's forward pass afresh (so autograd can differentiate it), the attack does not
/// run again.
using BatchObjective = std::function<StrategyLoss(int64_t begin, int64_t end)>;

/// Turns a batch into a loss. The adversarial examples are made with the model in eval mode
/// (as TRADES' and MART's reference code do) and the loss with the model in training mode;
/// attacks take gradients with respect to the inputs only.
class TrainingStrategy {
 public:
  virtual ~TrainingStrategy() = default;
  /// Prepares a batch (runs the attack, draws the noise) and returns its per-sample objective:
  /// what DP-SGD clips sample by sample. `eps` is the budget for this batch (the options' eps,
  /// or less during warm-up).
  virtual BatchObjective objective(Model& model, const at::Tensor& x, const at::Tensor& y,
                                   double eps, at::Generator& generator) = 0;
  /// The batch's mean loss: the mean of objective(...)(0, N).
  StrategyLoss loss(Model& model, const at::Tensor& x, const at::Tensor& y, double eps,
                    at::Generator& generator);
  /// Forward+backward passes per training sample, the model's own included (1 for standard
  /// training, steps + 1 for PGD-AT).
  virtual int64_t passes_per_sample() const = 0;
};

/// @throws Error when the options are invalid.
std::unique_ptr<TrainingStrategy> make_strategy(const StrategyOptions& options);

}  // namespace bulwark
