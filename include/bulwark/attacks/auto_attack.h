#pragma once
/// @file
/// AutoAttack (Croce & Hein 2020): a fixed ensemble of parameter-free attacks run one after
/// another, each on the samples the earlier ones left robust, keeping every sample's first
/// successful adversarial example. The versions follow the reference implementation
/// (fra31/auto-attack):
/// - `standard`: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries); 100
///   iterations each, one restart.
/// - `plus`: APGD-CE and APGD-DLR (5 restarts each), FAB (5 restarts), Square, APGD-T, FAB-T.
/// - `rand`: APGD-CE and APGD-DLR with the gradient averaged over 20 passes, for randomised
///   models.
/// - `custom`: the listed attacks with the reference's class defaults (5 restarts for APGD and
///   FAB, 1 for APGD-T, FAB-T and Square).
/// - `fast` (Bulwark's, not the reference's): meant to reach `standard`'s verdict at a small
///   fraction of its compute. APGD-CE and APGD-T on the runner-up classes with the largest
///   clean logits, with few iterations; then a Square probe for gradient masking on a few of
///   the samples still robust, and Square in full on all of them only when the probe fools one.
/// Like the reference, the run checks for a randomised model (an error here unless the
/// version is `rand`), a softmax output and zero gradients, and reports them as warnings.

#include <torch/arg.h>

#include <optional>
#include <string>
#include <vector>

#include "bulwark/attacks/attack.h"

namespace bulwark {

enum class AutoAttackVersion { Standard, Plus, Rand, Custom, Fast };

/// "standard", "plus", "rand", "custom", "fast".
std::string to_string(AutoAttackVersion version);
/// @throws Error naming the choices for anything else.
AutoAttackVersion parse_auto_attack_version(const std::string& name);

struct AutoAttackOptions {
  explicit AutoAttackOptions(double eps) : eps_(eps) {}
  TORCH_ARG(double, eps);
  TORCH_ARG(Norm, norm) = Norm::Linf;
  TORCH_ARG(AutoAttackVersion, version) = AutoAttackVersion::Standard;
  /// The `custom` version's attacks, in order: any of apgd-ce, apgd-dlr, apgd-t, fab, fab-t,
  /// square.
  TORCH_ARG(std::vector<std::string>, attacks) = {};
  /// Per-sample early exit inside APGD and FAB: the same verdict for every sample (they are
  /// independent), much less compute. Off reproduces the reference's compute.
  TORCH_ARG(bool, early_stop) = true;
  /// `fast`: iterations of APGD-CE; APGD-T's runner-up classes and its iterations per target.
  /// Unset, each takes the value measured for the norm (fast_schedule).
  TORCH_ARG(std::optional<int64_t>, fast_steps) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, fast_targets) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, fast_target_steps) = std::nullopt;
  /// `fast`: the masking probe runs Square with `probe_queries` on at most `probe_samples` of
  /// the samples the gradient attacks left (per batch).
  TORCH_ARG(int64_t, probe_samples) = 16;
  TORCH_ARG(int64_t, probe_queries) = 100;
  /// Every component starts from this seed, as the reference re-seeds each one.
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(InputBox, box) = InputBox();
};

class AutoAttack : public Attack {
 public:
  /// @throws Error when eps < 0 or not finite, the custom version has no attack or an unknown
  /// one, another version is given attacks, or (fast) a schedule or probe value is below 1.
  explicit AutoAttack(AutoAttackOptions options);
  /// "autoattack" (standard), "autoattack-plus", "autoattack-fast", ...
  std::string name() const override;
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return options_.norm(); }
  bool targeted() const override { return false; }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const AutoAttackOptions& options() const { return options_; }
  /// The components in the order they run.
  const std::vector<std::shared_ptr<Attack>>& components() const { return components_; }

 protected:
  /// @throws Error when the model's output is not finite, it has too few classes for a
  /// component (DLR needs 3, targeted DLR 4: use `custom` without them), or two forward passes
  /// differ and the version is not `rand`.
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  AutoAttackOptions options_;
  std::vector<std::shared_ptr<Attack>> components_;
};

/// What `fast` runs: APGD-CE with `ce_steps` iterations, then APGD-T towards `targets`
/// runner-up classes with `target_steps` iterations each.
struct FastSchedule {
  int64_t ce_steps = 0;
  int64_t targets = 0;
  int64_t target_steps = 0;
};

/// `options`' fast schedule: the values it sets, the others the cheapest measured to reach
/// `standard`'s verdict for its norm (docs/attacks/autoattack.md): L∞ 35 APGD-CE iterations
/// and 2 targets × 35; L2 40 and 3 targets × 25 (under L2 the third runner-up class decides
/// samples that neither more steps nor restarts find).
/// @throws Error when a value set is below 1.
FastSchedule fast_schedule(const AutoAttackOptions& options);

/// True for apgd-ce, apgd-dlr, apgd-t, fab, fab-t and square.
bool is_auto_attack_component(const std::string& name);

/// One of AutoAttack's components with the settings `options`' version gives it (the custom
/// version: the reference's class defaults). @throws Error for an unknown name.
std::shared_ptr<Attack> make_auto_attack_component(const std::string& name,
                                                   const AutoAttackOptions& options);

/// Runs `components` in turn on x [N, ...], labels y: each on the samples still classified
/// correctly, keeping each sample's first adversarial example; one AttackStage per component.
/// Shared by AutoAttack and the cheaper evaluations built from the same attacks.
AttackResult run_in_sequence(const std::vector<std::shared_ptr<Attack>>& components, Model& model,
                             const at::Tensor& x, const at::Tensor& y);

/// The reference's output checks on logits [N, K] of a batch: a warning when the rows look like
/// probabilities (in [0, 1] and summing to 1: the model should return logits). Empty if none.
/// @throws Error unless logits is [N, K].
std::vector<std::string> check_output_is_logits(const at::Tensor& logits);

}  // namespace bulwark
