#include "bulwark/attacks/auto_attack.h"

#include <fmt/format.h>
#include <torch/torch.h>

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
  }
  return {};
}

// One component with the reference's settings for the version.
std::shared_ptr<Attack> make_component(const std::string& name, const AutoAttackOptions& o) {
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
  }
  return "unknown";
}

AutoAttackVersion parse_auto_attack_version(const std::string& name) {
  for (const auto v : {AutoAttackVersion::Standard, AutoAttackVersion::Plus,
                       AutoAttackVersion::Rand, AutoAttackVersion::Custom}) {
    if (to_string(v) == name) return v;
  }
  throw Error(fmt::format(
      "autoattack: unknown version '{}'; choose standard, plus, rand or custom", name));
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
  for (const auto& name : attacks_of(options_)) components_.push_back(make_component(name, options_));
}

std::unique_ptr<Attack> AutoAttack::with_budget(double eps, bool early_stop) const {
  auto options = options_;
  return std::make_unique<AutoAttack>(options.eps(eps).early_stop(early_stop));
}

std::vector<std::string> check_output_is_logits(const at::Tensor& logits) {
  const double tolerance = 1e-5;
  const auto sums = logits.sum(1);
  const bool probabilities = logits.max().item<double>() < 1 + tolerance &&
                             logits.min().item<double>() > -tolerance &&
                             (sums - 1).abs().max().item<double>() < tolerance;
  if (!probabilities) return {};
  return {"the model's outputs look like probabilities (in [0, 1], summing to 1): attacks need "
          "the logits; remove the softmax from the model"};
}

AttackResult run_in_sequence(const std::vector<std::shared_ptr<Attack>>& components, Model& model,
                             const at::Tensor& x, const at::Tensor& y) {
  AttackResult result;
  result.adversarial = x.clone();
  result.iterations = at::zeros({x.size(0)}, x.options().dtype(at::kLong));
  at::Tensor robust;
  {
    torch::NoGradGuard no_grad;
    robust = model.forward(x).argmax(1).eq(y);
    result.forward_evaluations = x.size(0);
  }
  for (const auto& component : components) {
    AttackStage stage;
    stage.attack = component->name();
    const auto index = robust.nonzero().squeeze(1);
    stage.attacked = index.size(0);
    if (stage.attacked > 0) {
      const auto start = Clock::now();
      const auto r = component->run(model, x.index_select(0, index), y.index_select(0, index));
      stage.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      const auto rows = index.index({r.success});
      result.adversarial.index_copy_(0, rows, r.adversarial.index({r.success}));
      robust.index_fill_(0, rows, false);
      result.iterations.index_add_(0, index, r.iterations);
      stage.fooled = rows.size(0);
      stage.gradient_evaluations = r.gradient_evaluations;
      stage.forward_evaluations = r.forward_evaluations;
      result.gradient_evaluations += r.gradient_evaluations;
      result.forward_evaluations += r.forward_evaluations;
      for (const auto& w : r.warnings) result.warnings.push_back(w);
    }
    result.stages.push_back(stage);
  }
  finish_attack_result(result, model, x, y, false);
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
    const auto zero = grad.flatten(1).abs().sum(1).eq(0).logical_and(logits.argmax(1).eq(y));
    const int64_t zeros = zero.sum().item<int64_t>();
    if (zeros > 0) {
      warnings.push_back(fmt::format(
          "{} of {} correctly classified inputs have a zero gradient: gradient attacks cannot "
          "move them and the evaluation may be unreliable",
          zeros, n));
    }
  }
  auto result = run_in_sequence(components_, model, x, y);
  result.forward_evaluations += forwards;
  result.gradient_evaluations += n;
  result.warnings.insert(result.warnings.begin(), warnings.begin(), warnings.end());
  return result;
}

}  // namespace bulwark
