#include "bulwark/attacks/auto_attack.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "bulwark/attacks/apgd.h"
#include "bulwark/attacks/fab.h"
#include "bulwark/attacks/square.h"
#include "bulwark/core/losses.h"
#include "core/check.h"

namespace bulwark {

namespace {

const std::vector<std::string>& known_attacks() {
  static const std::vector<std::string> names = {"apgd-ce", "apgd-dlr", "apgd-t",
                                                 "fab",     "fab-t",    "square"};
  return names;
}

std::vector<std::string> attacks_of(const AutoAttackOptions& o) {
  switch (o.version()) {
    case AutoAttackVersion::Standard: return {"apgd-ce", "apgd-t", "fab-t", "square"};
    case AutoAttackVersion::Plus:
      return {"apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"};
    case AutoAttackVersion::Rand: return {"apgd-ce", "apgd-dlr"};
    case AutoAttackVersion::Custom: return o.attacks();
    // The probe and, when it fools a sample, Square in full.
    case AutoAttackVersion::Fast: return {"apgd-ce", "apgd-t", "square", "square"};
  }
  return {};
}

}  // namespace

bool is_auto_attack_component(const std::string& name) {
  const auto& names = known_attacks();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The reference's settings for the version.
std::shared_ptr<Attack> make_auto_attack_component(const std::string& name,
                                                   const AutoAttackOptions& o) {
  const bool standard = o.version() == AutoAttackVersion::Standard;
  const bool rand = o.version() == AutoAttackVersion::Rand;
  // APGD and untargeted FAB: 1 restart in standard and rand, 5 in plus and custom.
  const int64_t restarts = standard || rand ? 1 : 5;
  if (name == "apgd-ce" || name == "apgd-dlr") {
    return std::make_shared<APGD>(
        APGDOptions(o.eps())
            .norm(o.norm())
            .loss(name == "apgd-ce" ? APGDLoss::CrossEntropy : APGDLoss::DLR)
            .restarts(restarts)
            .eot_iter(rand ? 20 : 1)
            .early_stop(o.early_stop())
            .seed(o.seed())
            .box(o.box()));
  }
  if (name == "apgd-t") {
    return std::make_shared<APGDTargeted>(APGDOptions(o.eps())
                                              .norm(o.norm())
                                              .loss(APGDLoss::TargetedDLR)
                                              .target_classes(9)
                                              .early_stop(o.early_stop())
                                              .seed(o.seed())
                                              .box(o.box()));
  }
  if (name == "fab" || name == "fab-t") {
    const bool targeted = name == "fab-t";
    return std::make_shared<FAB>(FABOptions(o.eps())
                                     .norm(o.norm())
                                     .targeted(targeted)
                                     .restarts(targeted ? 1 : restarts)
                                     .target_classes(9)
                                     .early_stop(o.early_stop())
                                     .seed(o.seed())
                                     .box(o.box()));
  }
  if (name == "square") {
    return std::make_shared<Square>(
        SquareOptions(o.eps()).norm(o.norm()).queries(5000).p_init(0.8).seed(o.seed()).box(o.box()));
  }
  throw Error(fmt::format("autoattack: unknown attack '{}'; choose from {}", name,
                          fmt::join(known_attacks(), ", ")));
}

namespace {

// The fewest classes a component's loss works with.
int64_t classes_needed(const std::string& name) {
  return name == "apgd-t" ? 4 : name == "apgd-dlr" ? 3 : 2;
}

using Clock = std::chrono::steady_clock;

}  // namespace

std::string to_string(AutoAttackVersion version) {
  switch (version) {
    case AutoAttackVersion::Standard: return "standard";
    case AutoAttackVersion::Plus: return "plus";
    case AutoAttackVersion::Rand: return "rand";
    case AutoAttackVersion::Custom: return "custom";
    case AutoAttackVersion::Fast: return "fast";
  }
  return "unknown";
}

AutoAttackVersion parse_auto_attack_version(const std::string& name) {
  for (const auto v : {AutoAttackVersion::Standard, AutoAttackVersion::Plus,
                       AutoAttackVersion::Rand, AutoAttackVersion::Custom,
                       AutoAttackVersion::Fast}) {
    if (to_string(v) == name) return v;
  }
  throw Error(fmt::format(
      "autoattack: unknown version '{}'; choose standard, plus, rand, custom or fast", name));
}

AutoAttack::AutoAttack(AutoAttackOptions options) : options_(std::move(options)) {
  BULWARK_CHECK(options_.eps() >= 0 && std::isfinite(options_.eps()),
                "autoattack: eps must be finite and >= 0, got {}", options_.eps());
  const bool custom = options_.version() == AutoAttackVersion::Custom;
  BULWARK_CHECK(custom || options_.attacks().empty(),
                "autoattack: the {} version fixes its attacks; use the custom version to choose "
                "them",
                to_string(options_.version()));
  BULWARK_CHECK(!custom || !options_.attacks().empty(),
                "autoattack: the custom version needs at least one attack ({})",
                fmt::join(known_attacks(), ", "));
  if (options_.version() != AutoAttackVersion::Fast) {
    for (const auto& name : attacks_of(options_)) {
      components_.push_back(make_auto_attack_component(name, options_));
    }
    return;
  }
  const auto& o = options_;
  BULWARK_CHECK(o.probe_samples() >= 1 && o.probe_queries() >= 1,
                "autoattack: probe_samples and probe_queries must be >= 1, got {} and {}",
                o.probe_samples(), o.probe_queries());
  const auto schedule = fast_schedule(o);
  const auto apgd = APGDOptions(o.eps()).norm(o.norm()).steps(schedule.ce_steps).seed(o.seed())
                        .early_stop(o.early_stop()).box(o.box());
  components_.push_back(std::make_shared<APGD>(apgd));
  components_.push_back(std::make_shared<APGDTargeted>(APGDOptions(apgd)
                                                           .steps(schedule.target_steps)
                                                           .loss(APGDLoss::TargetedDLR)
                                                           .target_classes(schedule.targets)));
  const auto square = SquareOptions(o.eps()).norm(o.norm()).seed(o.seed()).box(o.box());
  components_.push_back(std::make_shared<Square>(SquareOptions(square).queries(o.probe_queries())));
  components_.push_back(std::make_shared<Square>(SquareOptions(square).queries(5000)));
}

FastSchedule fast_schedule(const AutoAttackOptions& o) {
  const bool linf = o.norm() == Norm::Linf;
  // Measured on the fast-AT SmallCNN (docs/attacks/autoattack.md).
  FastSchedule schedule{linf ? 35 : 40, linf ? 2 : 3, linf ? 35 : 25};
  const auto take = [](const char* name, const std::optional<int64_t>& value, int64_t& into) {
    if (!value) return;
    BULWARK_CHECK(*value >= 1, "autoattack: {} must be >= 1, got {}", name, *value);
    into = *value;
  };
  take("fast_steps", o.fast_steps(), schedule.ce_steps);
  take("fast_targets", o.fast_targets(), schedule.targets);
  take("fast_target_steps", o.fast_target_steps(), schedule.target_steps);
  return schedule;
}

std::string AutoAttack::name() const {
  return options_.version() == AutoAttackVersion::Standard
             ? "autoattack"
             : "autoattack-" + to_string(options_.version());
}

std::unique_ptr<Attack> AutoAttack::with_budget(double eps, bool early_stop) const {
  auto options = options_;
  return std::make_unique<AutoAttack>(options.eps(eps).early_stop(early_stop));
}

std::vector<std::string> check_output_is_logits(const at::Tensor& logits) {
  BULWARK_CHECK(logits.defined() && logits.dim() == 2 && logits.size(1) >= 1,
                "check_output_is_logits: needs logits [N, classes], got {}",
                detail::shape_string(logits));
  const double tolerance = 1e-5;
  const auto sums = logits.sum(1);
  const bool probabilities = logits.max().item<double>() < 1 + tolerance &&
                             logits.min().item<double>() > -tolerance &&
                             (sums - 1).abs().max().item<double>() < tolerance;
  if (!probabilities) return {};
  return {"the model's outputs look like probabilities (in [0, 1], summing to 1): attacks need "
          "the logits; remove the softmax from the model"};
}

namespace {

// Runs attacks one after another on the samples still classified correctly, keeping each
// sample's first adversarial example and one AttackStage per attack.
class Sequence {
 public:
  // `clean_logits`: the model's logits on x, from the caller's forward pass (counted there).
  Sequence(Model& model, const at::Tensor& x, const at::Tensor& y, const at::Tensor& clean_logits)
      : model_(model), x_(x), y_(y), robust_(clean_logits.argmax(1).eq(y)) {
    result_.adversarial = x.clone();
    result_.iterations = at::zeros({x.size(0)}, x.options().dtype(at::kLong));
  }

  // `attack` on the robust samples, or on the first `limit` of them (limit >= 0), reported
  // under `label` (default: the attack's name).
  const AttackStage& run(Attack& attack, int64_t limit = -1, const std::string& label = {}) {
    AttackStage stage;
    stage.attack = label.empty() ? attack.name() : label;
    auto index = robust_.nonzero().squeeze(1);
    if (limit >= 0) index = index.slice(0, 0, limit);
    stage.attacked = index.size(0);
    if (stage.attacked > 0) {
      const auto start = Clock::now();
      const auto r = attack.run(model_, x_.index_select(0, index), y_.index_select(0, index));
      stage.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      const auto rows = index.index({r.success});
      result_.adversarial.index_copy_(0, rows, r.adversarial.index({r.success}));
      robust_.index_fill_(0, rows, false);
      result_.iterations.index_add_(0, index, r.iterations);
      stage.fooled = rows.size(0);
      stage.gradient_evaluations = r.gradient_evaluations;
      stage.forward_evaluations = r.forward_evaluations;
      result_.gradient_evaluations += r.gradient_evaluations;
      result_.forward_evaluations += r.forward_evaluations;
      for (const auto& w : r.warnings) result_.warnings.push_back(w);
    }
    result_.stages.push_back(stage);
    return result_.stages.back();
  }

  AttackResult finish() {
    finish_attack_result(result_, model_, x_, y_, false);
    return std::move(result_);
  }

 private:
  Model& model_;
  const at::Tensor& x_;
  const at::Tensor& y_;
  at::Tensor robust_;
  AttackResult result_;
};

}  // namespace

AttackResult run_in_sequence(const std::vector<std::shared_ptr<Attack>>& components, Model& model,
                             const at::Tensor& x, const at::Tensor& y) {
  at::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model.forward(x);
  }
  Sequence sequence(model, x, y, logits);
  for (const auto& component : components) sequence.run(*component);
  auto result = sequence.finish();
  result.forward_evaluations += x.size(0);
  return result;
}

AttackResult AutoAttack::perform(Model& model, const at::Tensor& x, const at::Tensor& y) {
  const int64_t n = x.size(0);
  at::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model.forward(x);
  }
  BULWARK_CHECK(at::isfinite(logits).all().item<bool>(),
                "autoattack: the model '{}' returned NaN or infinite logits on the clean inputs",
                model.name());
  const int64_t classes = logits.size(1);
  for (const auto& name : attacks_of(options_)) {
    BULWARK_CHECK(classes >= classes_needed(name),
                  "autoattack: {} needs at least {} classes (its DLR loss), the model has {}; use "
                  "the custom version without it (apgd-ce, fab-t and square work with 2)",
                  name, classes_needed(name), classes);
  }
  int64_t forwards = n;
  // A randomised model: the reference's check compares 5 passes; so does this one.
  if (options_.version() != AutoAttackVersion::Rand) {
    torch::NoGradGuard no_grad;
    const auto unit = logits / (logits.norm(2, {1}, true) + 1e-10);
    for (int pass = 0; pass < 4; ++pass) {
      const auto again = model.forward(x);
      forwards += n;
      const double change = (again / (again.norm(2, {1}, true) + 1e-10) - unit).norm(2, {1})
                                .max()
                                .item<double>();
      BULWARK_CHECK(change <= 1e-4 && again.argmax(1).equal(logits.argmax(1)),
                    "autoattack: two forward passes of the model '{}' on the same inputs differ "
                    "(normalised logits by {:.3g}): it is randomised; evaluate it with the rand "
                    "version (gradients averaged over 20 passes)",
                    model.name(), change);
    }
  }
  std::vector<std::string> warnings = check_output_is_logits(logits);
  // Zero gradients at the clean inputs (the reference checks APGD's DLR gradient).
  {
    auto input = x.detach().clone().requires_grad_(true);
    const auto out = model.forward(input);
    const auto loss = classes >= 3 ? dlr_loss(out, y) : cross_entropy(out, y, Reduction::None);
    const auto grad = torch::autograd::grad({loss.sum()}, {input})[0];
    const auto correct = logits.argmax(1).eq(y);
    const int64_t zeros =
        grad.flatten(1).abs().sum(1).eq(0).logical_and(correct).sum().item<int64_t>();
    if (zeros > 0) {
      warnings.push_back(fmt::format(
          "{} of {} correctly classified inputs have a zero gradient: gradient attacks cannot "
          "move them and the evaluation may be unreliable",
          zeros, correct.sum().item<int64_t>()));
    }
  }
  Sequence sequence(model, x, y, logits);
  if (options_.version() == AutoAttackVersion::Fast) {
    sequence.run(*components_[0]);
    sequence.run(*components_[1]);
    const auto& probe = sequence.run(*components_[2], options_.probe_samples(), "square-probe");
    if (probe.fooled > 0) sequence.run(*components_[3]);
  } else {
    for (const auto& component : components_) sequence.run(*component);
  }
  auto result = sequence.finish();
  result.forward_evaluations += forwards;
  result.gradient_evaluations += n;
  result.warnings.insert(result.warnings.begin(), warnings.begin(), warnings.end());
  return result;
}

}  // namespace bulwark
