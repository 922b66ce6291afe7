#include "bulwark/attacks/pgd.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "bulwark/core/losses.h"
#include "bulwark/core/seed.h"
#include "bulwark/ops/project_step.h"
#include "core/check.h"

namespace bulwark {

at::Tensor attack_objective(AttackLoss loss, const at::Tensor& logits, const at::Tensor& y,
                            bool targeted) {
  switch (loss) {
    case AttackLoss::CrossEntropy: {
      const auto ce = cross_entropy(logits, y, Reduction::None);
      return targeted ? -ce : ce;
    }
    case AttackLoss::CWMargin:
      // Unclamped margin (κ = ∞), so the attack keeps pushing after the label flips.
      return -cw_margin(logits, y, std::numeric_limits<double>::infinity(), targeted);
    case AttackLoss::DLR:
      BULWARK_CHECK(!targeted, "attack_objective: the targeted DLR loss needs true labels too");
      return dlr_loss(logits, y);
  }
  throw Error("attack_objective: unknown loss");
}

PGD::PGD(PGDOptions options) : options_(std::move(options)) {
  BULWARK_CHECK(options_.eps() >= 0 && std::isfinite(options_.eps()),
                "pgd: eps must be finite and >= 0, got {}", options_.eps());
  BULWARK_CHECK(options_.steps() >= 1, "pgd: steps must be >= 1, got {}", options_.steps());
  BULWARK_CHECK(options_.restarts() >= 1, "pgd: restarts must be >= 1, got {}",
                options_.restarts());
  BULWARK_CHECK(std::isfinite(options_.step_size()), "pgd: step_size must be finite, got {}",
                options_.step_size());
  BULWARK_CHECK(!(options_.targeted() && options_.loss() == AttackLoss::DLR),
                "pgd: the DLR loss is untargeted only; use cross-entropy or the C&W margin");
}

double PGD::step_size() const {
  return options_.step_size() > 0 ? options_.step_size()
                                  : 2.5 * options_.eps() / static_cast<double>(options_.steps());
}

std::unique_ptr<Attack> PGD::with_budget(double eps, bool early_stop) const {
  auto options = options_;
  return std::make_unique<PGD>(options.eps(eps).early_stop(early_stop));
}

namespace {

// A uniform random point of the eps-ball around x, clamped into the box. L2: a uniformly random
// direction with a radius uniform in [0, eps], as torchattacks 3.5 PGDL2.
at::Tensor random_start(const at::Tensor& x, double eps, Norm norm, const InputBox& box,
                        at::Generator& generator) {
  at::Tensor delta;
  if (norm == Norm::Linf) {
    delta = (at::rand(x.sizes(), generator, x.options()) * 2 - 1) * eps;
  } else {
    const auto direction = at::randn(x.sizes(), generator, x.options());
    const auto radius = at::rand({x.size(0)}, generator, x.options()) * eps;
    std::vector<int64_t> shape(x.dim(), 1);
    shape[0] = x.size(0);
    delta = direction / per_sample_norm(direction, Norm::L2).clamp_min(1e-12).reshape(shape) *
            radius.reshape(shape);
  }
  return box.clamp(x + delta);
}

struct RunOutput {
  at::Tensor adversarial;
  at::Tensor iterations;
  int64_t gradient_evaluations = 0;
};

// One run of PGD on the samples `index` of (x, y); with early stopping, samples leave the active
// set as soon as they are fooled and keep that iterate. A custom objective (given the logits of
// every sample of `index`, never with early stopping) replaces the options' loss; a given
// `start` (rows of x) replaces the random or clean start.
RunOutput run_once(Model& model, const at::Tensor& x, const at::Tensor& y, const at::Tensor& index,
                   const PGDOptions& options, double alpha, at::Generator& generator,
                   const PGD::Objective& custom, const at::Tensor& start = {}) {
  const bool targeted = options.targeted();
  const auto long_options = x.options().dtype(at::kLong);
  RunOutput out;
  auto active = index;
  auto clean = x.index_select(0, active);
  auto labels = y.index_select(0, active);
  auto adv = start.defined() ? start.index_select(0, active)
              : options.random_start()
                  ? random_start(clean, options.eps(), options.norm(), options.box(), generator)
                  : clean.clone();
  out.adversarial = adv.clone();
  out.iterations = at::zeros({index.size(0)}, long_options);
  auto position = at::arange(index.size(0), long_options);  // rows of `out` still active
  for (int64_t step = 0; step < options.steps() && position.size(0) > 0; ++step) {
    adv.requires_grad_(true);
    auto logits = model.forward(adv);
    if (options.early_stop()) {
      const auto fooled = attack_succeeded(logits.detach(), labels, targeted);
      if (fooled.any().item<bool>()) {
        out.adversarial.index_copy_(0, position.index({fooled}), adv.detach().index({fooled}));
        const auto keep = fooled.logical_not();
        position = position.index({keep});
        if (position.size(0) == 0) break;
        clean = clean.index({keep});
        labels = labels.index({keep});
        adv = adv.detach().index({keep}).requires_grad_(true);
        // Recompute on the survivors only: the backward pass then costs no more than they do.
        logits = model.forward(adv);
      }
    }
    const auto objective =
        custom ? custom(logits) : attack_objective(options.loss(), logits, labels, targeted);
    const auto grad = torch::autograd::grad({objective.sum()}, {adv})[0];
    out.gradient_evaluations += adv.size(0);
    adv = ops::project_step(adv.detach(), grad, clean, alpha, options.eps(), options.norm(),
                            options.box().lower, options.box().upper);
    out.iterations.index_add_(0, position, at::ones_like(position));
  }
  if (position.size(0) > 0) out.adversarial.index_copy_(0, position, adv.detach());
  return out;
}

}  // namespace

at::Tensor PGD::perturb(Model& model, const at::Tensor& x, const at::Tensor& y,
                        at::Generator& generator, const Objective& objective,
                        const at::Tensor& start) const {
  BULWARK_CHECK(!options_.early_stop(),
                "pgd: perturb() runs every step on every sample; turn early_stop off");
  BULWARK_CHECK(x.defined() && y.defined() && x.dim() >= 1 && y.dim() == 1 &&
                    y.size(0) == x.size(0),
                "pgd: perturb() needs x [N, ...] and y [N], got {} and {}",
                x.defined() ? detail::shape_string(x) : "undefined",
                y.defined() ? detail::shape_string(y) : "undefined");
  BULWARK_CHECK(!start.defined() || start.sizes() == x.sizes(),
                "pgd: perturb() needs a start shaped like x {}, got {}", detail::shape_string(x),
                start.defined() ? detail::shape_string(start) : "undefined");
  return run_once(model, x, y, at::arange(x.size(0), x.options().dtype(at::kLong)), options_,
                  step_size(), generator, objective, start)
      .adversarial;
}

AttackResult PGD::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  const int64_t n = x.size(0);
  const double alpha = step_size();
  const bool targeted = options_.targeted();
  auto generator = make_generator(options_.seed(), x.device());
  const auto long_options = x.options().dtype(at::kLong);

  auto best = x.clone();
  auto best_success = at::zeros({n}, x.options().dtype(at::kBool));
  auto best_objective =
      at::full({n}, -std::numeric_limits<double>::infinity(), x.options().dtype(at::kDouble));
  AttackResult result;
  result.iterations = at::zeros({n}, long_options);
  for (int64_t restart = 0; restart < options_.restarts(); ++restart) {
    // With early stopping, later restarts only revisit the samples not fooled yet.
    const auto index = options_.early_stop()
                           ? best_success.logical_not().nonzero().squeeze(1)
                           : at::arange(n, long_options);
    if (index.size(0) == 0) break;
    const auto out = run_once(model, x, y, index, options_, alpha, generator, {});
    result.gradient_evaluations += out.gradient_evaluations;
    result.iterations.index_add_(0, index, out.iterations);
    if (options_.restarts() == 1) {
      // Nothing to compare against: skip the bookkeeping forward pass.
      best = out.adversarial;
      break;
    }
    torch::NoGradGuard no_grad;
    const auto logits = model.forward(out.adversarial);
    const auto success = attack_succeeded(logits, y.index_select(0, index), targeted);
    const auto objective =
        attack_objective(options_.loss(), logits, y.index_select(0, index), targeted)
            .to(at::kDouble);
    const auto was_success = best_success.index_select(0, index);
    // A sample keeps its strongest result: a success is never replaced; otherwise a success,
    // or a higher loss, wins.
    const auto better = was_success.logical_not().logical_and(
        success.logical_or(objective > best_objective.index_select(0, index)));
    const auto rows = index.index({better});
    best.index_copy_(0, rows, out.adversarial.index({better}));
    best_success.index_copy_(0, rows, success.index({better}));
    best_objective.index_copy_(0, rows, objective.index({better}));
  }
  result.adversarial = best;
  finish_attack_result(result, model, x, y, targeted);
  return result;
}

}  // namespace bulwark
