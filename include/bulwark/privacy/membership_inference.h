#pragma once
/// @file
/// Membership-inference audit: how well an attacker tells a model's training samples
/// (members) from other samples of the same distribution (non-members). The loss-threshold
/// attack (Yeom et al. 2018) needs only the model; the offline likelihood-ratio attack
/// (LiRA, Carlini et al. 2022) also trains shadow models on population data that excludes the
/// audited samples and asks whether the model's confidence on a sample is unusually high for
/// a model that did not see it.

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark {

/// Trains a model like the audited one (same architecture and recipe) on `train`, seeded.
using ShadowTrainer = std::function<Model(const Dataset& train, uint64_t seed)>;

struct MembershipAuditOptions {
  /// Shadow models of the offline LiRA (0: loss-threshold attack only). Carlini et al. report
  /// the offline attack working with as few as 16; more narrows each sample's distribution.
  TORCH_ARG(int64_t, shadow_models) = 8;
  /// Each shadow trains on this many samples drawn from the population (0: as many as there
  /// are members, at most half the population).
  TORCH_ARG(int64_t, shadow_train_size) = 0;
  TORCH_ARG(int64_t, batch_size) = 500;
  TORCH_ARG(uint64_t, seed) = 0;

 public:
  /// @throws Error when shadow_models, shadow_train_size < 0 or batch_size < 1.
  void validate() const;
};

/// One attack's success. Scores are higher for "member".
struct MembershipAttackResult {
  std::string attack;              ///< "loss-threshold" or "lira-offline"
  double auc = 0.5;                ///< ROC AUC (0.5: no leakage)
  double balanced_accuracy = 0.5;  ///< at the best threshold (optimistic for the attacker)
  double tpr_at_0_1_fpr = 0.0;     ///< TPR at 0.1 % FPR (Carlini et al.'s low-FPR regime)
  double tpr_at_1_fpr = 0.0;       ///< TPR at 1 % FPR
  at::Tensor member_scores, non_member_scores;
};

struct MembershipAuditReport {
  int64_t members = 0, non_members = 0;
  double member_accuracy = 0, non_member_accuracy = 0;  ///< the model's accuracy on each
  double member_loss = 0, non_member_loss = 0;          ///< mean cross-entropy on each
  int64_t shadow_models = 0;
  std::vector<MembershipAttackResult> attacks;
  double seconds = 0;
  /// The report as JSON and as a Markdown table.
  std::string to_json() const;
  std::string to_markdown(const std::string& title = "Membership-inference audit") const;
};

/// Audits `model` (put in eval mode for the audit) with `members` (samples it trained on)
/// against `non_members` (same distribution, not trained on). The LiRA attack runs when
/// options.shadow_models > 0 and needs `population` (samples in neither set) and
/// `train_shadow`.
/// @throws Error when members or non_members is empty, their image shapes or class counts
/// differ, or LiRA is asked for without a population large enough for one shadow or without
/// a shadow trainer.
MembershipAuditReport audit_membership(Model model, const Dataset& members,
                                       const Dataset& non_members,
                                       const MembershipAuditOptions& options = {},
                                       const Dataset& population = Dataset(),
                                       const ShadowTrainer& train_shadow = {});

}  // namespace bulwark
