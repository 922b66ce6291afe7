#include "bulwark/defenses/strategy.h"

#include <torch/torch.h>

#include <cmath>

#include "bulwark/attacks/pgd.h"
#include "bulwark/core/losses.h"
#include "core/check.h"

namespace bulwark {

StrategyKind parse_strategy(std::string_view text) {
  if (text == "standard") return StrategyKind::Standard;
  if (text == "pgd-at") return StrategyKind::PGDAT;
  if (text == "trades") return StrategyKind::TRADES;
  if (text == "mart") return StrategyKind::MART;
  if (text == "fast-at") return StrategyKind::FastAT;
  if (text == "gaussian") return StrategyKind::GaussianNoise;
  throw Error(fmt::format(
      "training strategy must be standard, pgd-at, trades, mart, fast-at or gaussian, got '{}'",
      text));
}

std::string to_string(StrategyKind kind) {
  switch (kind) {
    case StrategyKind::Standard: return "standard";
    case StrategyKind::PGDAT: return "pgd-at";
    case StrategyKind::TRADES: return "trades";
    case StrategyKind::MART: return "mart";
    case StrategyKind::FastAT: return "fast-at";
    case StrategyKind::GaussianNoise: return "gaussian";
  }
  return "unknown";
}

void StrategyOptions::validate() const {
  BULWARK_CHECK(std::isfinite(eps_) && eps_ >= 0,
                "training strategy: eps must be finite and >= 0, got {}", eps_);
  BULWARK_CHECK(steps_ >= 1, "training strategy: steps must be >= 1, got {}", steps_);
  BULWARK_CHECK(std::isfinite(step_size_), "training strategy: step_size must be finite, got {}",
                step_size_);
  BULWARK_CHECK(std::isfinite(beta_) && beta_ >= 0,
                "training strategy: beta must be finite and >= 0, got {}", beta_);
  BULWARK_CHECK(std::isfinite(sigma_) && sigma_ > 0,
                "training strategy: sigma must be finite and > 0, got {}", sigma_);
  BULWARK_CHECK(warmup_epochs_ >= 0, "training strategy: warmup_epochs must be >= 0, got {}",
                warmup_epochs_);
}

namespace {

// KL(p ‖ q) per sample, from log-probabilities.
at::Tensor kl_per_sample(const at::Tensor& log_p, const at::Tensor& log_q) {
  return (log_p.exp() * (log_p - log_q)).sum(1);
}

class Standard : public TrainingStrategy {
 public:
  BatchObjective objective(Model& model, const at::Tensor& x, const at::Tensor& y, double,
                           at::Generator&) override {
    return [model, x, y](int64_t begin, int64_t end) -> StrategyLoss {
      auto logits = model.forward(x.slice(0, begin, end));
      return {cross_entropy(logits, y.slice(0, begin, end), Reduction::None), logits};
    };
  }
  int64_t passes_per_sample() const override { return 1; }
};

// Gaussian data augmentation (Cohen et al. 2019): the base classifier of randomized smoothing
// learns to classify x + N(0, sigma^2 I), the inputs the smoothed classifier will give it.
class GaussianNoise : public Standard {
 public:
  explicit GaussianNoise(double sigma) : sigma_(sigma) {}
  BatchObjective objective(Model& model, const at::Tensor& x, const at::Tensor& y, double eps,
                           at::Generator& generator) override {
    const auto noisy = x + at::normal(0.0, sigma_, x.sizes(), generator, x.options());
    return Standard::objective(model, noisy, y, eps, generator);
  }

 private:
  double sigma_;
};

// Shared by the adversarial strategies: Bulwark's PGD with this batch's budget.
class Adversarial : public TrainingStrategy {
 public:
  explicit Adversarial(StrategyOptions options) : options_(std::move(options)) {}
  int64_t passes_per_sample() const override { return steps() + 1; }

 protected:
  int64_t steps() const {
    return options_.kind() == StrategyKind::FastAT ? 1 : options_.steps();
  }
  PGD attack(double eps) const {
    double step = options_.step_size();
    if (step <= 0) {
      step = options_.kind() == StrategyKind::FastAT ? 1.25 * eps
                                                     : 2.5 * eps / static_cast<double>(steps());
    }
    return PGD(PGDOptions(eps)
                   .norm(options_.norm())
                   .steps(steps())
                   .step_size(step)
                   .random_start(true)
                   .box(options_.box()));
  }
  at::Tensor perturb(Model& model, const at::Tensor& x, const at::Tensor& y, double eps,
                     at::Generator& generator, const PGD::Objective& objective = {},
                     const at::Tensor& start = {}) const {
    EvalModeGuard eval_mode(model);
    return attack(eps).perturb(model, x, y, generator, objective, start);
  }
  StrategyOptions options_;
};

// PGD-AT and fast AT: cross-entropy on the adversarial examples.
class AdversarialExamples : public Adversarial {
 public:
  using Adversarial::Adversarial;
  BatchObjective objective(Model& model, const at::Tensor& x, const at::Tensor& y, double eps,
                           at::Generator& generator) override {
    return Standard().objective(model, perturb(model, x, y, eps, generator), y, eps, generator);
  }
};

// TRADES: CE(f(x), y) + β · KL(f(x) ‖ f(x')), x' ascending that KL.
class Trades : public Adversarial {
 public:
  using Adversarial::Adversarial;
  BatchObjective objective(Model& model, const at::Tensor& x, const at::Tensor& y, double eps,
                           at::Generator& generator) override {
    at::Tensor clean_log_p;
    {
      EvalModeGuard eval_mode(model);
      torch::NoGradGuard no_grad;
      clean_log_p = at::log_softmax(model.forward(x), 1);
    }
    // Zhang et al.'s code starts at x + 0.001·N(0, 1), next to the clean point (where the KL
    // and its gradient are nearly 0), not uniformly in the ball; clamped into the box here.
    const auto start = options_.box().clamp(x + 0.001 * at::randn(x.sizes(), generator,
                                                                    x.options()));
    const auto x_adv = perturb(
        model, x, y, eps, generator,
        [&](const at::Tensor& logits) {
          return kl_per_sample(clean_log_p, at::log_softmax(logits, 1));
        },
        start);
    return [model, x, y, x_adv, beta = options_.beta()](int64_t begin,
                                                         int64_t end) -> StrategyLoss {
      auto logits = model.forward(x.slice(0, begin, end));
      const auto adv_logits = model.forward(x_adv.slice(0, begin, end));
      const auto kl = kl_per_sample(at::log_softmax(logits, 1), at::log_softmax(adv_logits, 1));
      return {cross_entropy(logits, y.slice(0, begin, end), Reduction::None) + beta * kl,
              logits};
    };
  }
  // The extra clean forward pass for the KL target costs about a third of a pass.
  int64_t passes_per_sample() const override { return steps() + 2; }
};

// MART: boosted CE on x' plus λ · KL(f(x) ‖ f(x')) weighted by 1 − p_y(x), x' from PGD-CE.
class Mart : public Adversarial {
 public:
  using Adversarial::Adversarial;
  BatchObjective objective(Model& model, const at::Tensor& x, const at::Tensor& y, double eps,
                           at::Generator& generator) override {
    const auto x_adv = perturb(model, x, y, eps, generator);
    return [model, x, y, x_adv, beta = options_.beta()](int64_t begin,
                                                         int64_t end) -> StrategyLoss {
      const auto labels = y.slice(0, begin, end);
      const auto adv_logits = model.forward(x_adv.slice(0, begin, end));
      const auto logits = model.forward(x.slice(0, begin, end));
      const auto adv_probs = at::softmax(adv_logits, 1);
      // The most likely wrong class on x'.
      const auto top2 = std::get<1>(adv_probs.topk(2, 1));
      const auto wrong =
          at::where(top2.select(1, 0).eq(labels), top2.select(1, 1), top2.select(1, 0));
      const auto boosted = cross_entropy(adv_logits, labels, Reduction::None) -
                           at::log(1.0001 - adv_probs + 1e-12).gather(1, wrong.unsqueeze(1)).squeeze(1);
      const auto log_p = at::log_softmax(logits, 1);
      const auto true_probs = log_p.exp().gather(1, labels.unsqueeze(1)).squeeze(1);
      const auto kl = kl_per_sample(log_p, at::log(adv_probs + 1e-12));
      return {boosted + beta * kl * (1.0000001 - true_probs), adv_logits};
    };
  }
  int64_t passes_per_sample() const override { return steps() + 2; }
};

}  // namespace

StrategyLoss TrainingStrategy::loss(Model& model, const at::Tensor& x, const at::Tensor& y,
                                    double eps, at::Generator& generator) {
  auto out = objective(model, x, y, eps, generator)(0, x.size(0));
  out.loss = out.loss.mean();
  return out;
}

std::unique_ptr<TrainingStrategy> make_strategy(const StrategyOptions& options) {
  options.validate();
  switch (options.kind()) {
    case StrategyKind::Standard: return std::make_unique<Standard>();
    case StrategyKind::PGDAT:
    case StrategyKind::FastAT: return std::make_unique<AdversarialExamples>(options);
    case StrategyKind::TRADES: return std::make_unique<Trades>(options);
    case StrategyKind::MART: return std::make_unique<Mart>(options);
    case StrategyKind::GaussianNoise: return std::make_unique<GaussianNoise>(options.sigma());
  }
  throw Error("make_strategy: unknown strategy");
}

}  // namespace bulwark
