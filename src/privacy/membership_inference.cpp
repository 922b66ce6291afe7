// Membership-inference audit: loss threshold (Yeom et al. 2018) and offline LiRA (Carlini et
// al. 2022).
#include "bulwark/privacy/membership_inference.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "bulwark/core/losses.h"
#include "bulwark/core/seed.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/eval/detection.h"
#include "core/check.h"

namespace bulwark {

void MembershipAuditOptions::validate() const {
  BULWARK_CHECK(shadow_models_ >= 0, "membership audit: shadow_models must be >= 0, got {}",
                shadow_models_);
  BULWARK_CHECK(shadow_train_size_ >= 0,
                "membership audit: shadow_train_size must be >= 0 (0: as many as members), got {}",
                shadow_train_size_);
  BULWARK_CHECK(batch_size_ >= 1, "membership audit: batch_size must be >= 1, got {}",
                batch_size_);
}

namespace {

// Carlini et al.'s logit-scaled confidence log(p_y / (1 − p_y)) = z_y − logsumexp_{k≠y} z_k,
// nearly Gaussian over models, unlike p_y.
at::Tensor scaled_confidence(const at::Tensor& logits, const at::Tensor& labels) {
  const auto z = logits.to(at::kDouble);
  const auto true_logit = z.gather(1, labels.unsqueeze(1)).squeeze(1);
  const auto others = z.scatter(1, labels.unsqueeze(1), -std::numeric_limits<double>::infinity());
  return true_logit - at::logsumexp(others, 1);
}

MembershipAttackResult score_attack(std::string name, const at::Tensor& member_scores,
                                    const at::Tensor& non_member_scores) {
  MembershipAttackResult result;
  result.attack = std::move(name);
  result.member_scores = member_scores;
  result.non_member_scores = non_member_scores;
  const auto roc = roc_curve(non_member_scores, member_scores);
  result.auc = roc.auc;
  for (size_t i = 0; i < roc.fpr.size(); ++i) {
    result.balanced_accuracy =
        std::max(result.balanced_accuracy, 0.5 * (roc.tpr[i] + 1 - roc.fpr[i]));
  }
  result.tpr_at_0_1_fpr = tpr_at_fpr(roc, 0.001);
  result.tpr_at_1_fpr = tpr_at_fpr(roc, 0.01);
  return result;
}

void check_same_task(const Dataset& a, const Dataset& b, const char* a_name, const char* b_name) {
  BULWARK_CHECK(a.images.sizes().slice(1) == b.images.sizes().slice(1) &&
                    a.num_classes == b.num_classes,
                "membership audit: {} ({} images of shape {}, {} classes) and {} ({} of shape {}, "
                "{} classes) must come from the same task",
                a_name, a.size(), detail::shape_string(a.images), a.num_classes, b_name,
                b.size(), detail::shape_string(b.images), b.num_classes);
}

}  // namespace

MembershipAuditReport audit_membership(Model model, const Dataset& members,
                                       const Dataset& non_members,
                                       const MembershipAuditOptions& options,
                                       const Dataset& population,
                                       const ShadowTrainer& train_shadow) {
  options.validate();
  const auto start = std::chrono::steady_clock::now();
  BULWARK_CHECK(members.size() > 0, "membership audit: the member set '{}' is empty",
                members.name);
  BULWARK_CHECK(non_members.size() > 0, "membership audit: the non-member set '{}' is empty",
                non_members.name);
  check_same_task(members, non_members, "the members", "the non-members");
  const int64_t shadows = options.shadow_models();
  int64_t shadow_size = 0;
  if (shadows > 0) {
    BULWARK_CHECK(static_cast<bool>(train_shadow),
                  "membership audit: the LiRA attack with {} shadow models needs a shadow "
                  "trainer (or set shadow_models to 0)",
                  shadows);
    BULWARK_CHECK(population.size() >= 2,
                  "membership audit: the LiRA attack needs population data (samples neither in "
                  "the members nor the non-members) to train shadow models on; got {} samples",
                  population.size());
    check_same_task(members, population, "the members", "the population");
    shadow_size = options.shadow_train_size() > 0
                      ? options.shadow_train_size()
                      : std::min(members.size(), population.size() / 2);
    BULWARK_CHECK(shadow_size <= population.size(),
                  "membership audit: shadow_train_size {} exceeds the population's {} samples",
                  shadow_size, population.size());
  }

  MembershipAuditReport report;
  report.members = members.size();
  report.non_members = non_members.size();
  report.shadow_models = shadows;
  const auto member_logits = predict_logits(model, members.images, options.batch_size());
  const auto non_member_logits = predict_logits(model, non_members.images, options.batch_size());
  const auto member_labels = members.labels.cpu();
  const auto non_member_labels = non_members.labels.cpu();
  const auto member_losses = cross_entropy(member_logits, member_labels, Reduction::None);
  const auto non_member_losses =
      cross_entropy(non_member_logits, non_member_labels, Reduction::None);
  report.member_accuracy =
      member_logits.argmax(1).eq(member_labels).to(at::kDouble).mean().item<double>();
  report.non_member_accuracy =
      non_member_logits.argmax(1).eq(non_member_labels).to(at::kDouble).mean().item<double>();
  report.member_loss = member_losses.mean().item<double>();
  report.non_member_loss = non_member_losses.mean().item<double>();
  // Lower loss: more likely a member.
  report.attacks.push_back(
      score_attack("loss-threshold", -member_losses.to(at::kDouble),
                   -non_member_losses.to(at::kDouble)));

  if (shadows > 0) {
    const auto candidates = at::cat({members.images, non_members.images});
    const auto labels = at::cat({member_labels, non_member_labels});
    std::vector<at::Tensor> out_confidences;
    for (int64_t k = 0; k < shadows; ++k) {
      const uint64_t seed = derive_seed(options.seed(), static_cast<uint64_t>(k));
      auto generator = make_generator(seed);
      const auto chosen = at::randperm(population.size(), generator).slice(0, 0, shadow_size);
      const Dataset train(population.images.index_select(0, chosen.to(population.images.device())),
                          population.labels.index_select(0, chosen.to(population.labels.device())),
                          population.num_classes, population.name + " shadow");
      spdlog::info("membership audit: training shadow model {}/{} on {} population samples",
                   k + 1, shadows, shadow_size);
      auto shadow = train_shadow(train, seed);
      out_confidences.push_back(
          scaled_confidence(predict_logits(shadow, candidates, options.batch_size()), labels));
    }
    const auto out = at::stack(out_confidences);  // [K, candidates]
    const auto mean = out.mean(0);
    // Per-sample means, one pooled variance: Carlini et al.'s choice for few shadow models.
    const double pooled_std =
        shadows > 1 ? std::sqrt((out - mean).square().sum().item<double>() /
                                static_cast<double>((shadows - 1) * out.size(1)))
                    : 1.0;
    const auto target = scaled_confidence(at::cat({member_logits, non_member_logits}), labels);
    const auto z = (target - mean) / std::max(pooled_std, 1e-12);
    report.attacks.push_back(score_attack("lira-offline", z.slice(0, 0, members.size()),
                                          z.slice(0, members.size())));
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

std::string MembershipAuditReport::to_json() const {
  nlohmann::json attacks_json = nlohmann::json::array();
  for (const auto& a : attacks) {
    attacks_json.push_back({{"attack", a.attack},
                            {"auc", a.auc},
                            {"balanced_accuracy", a.balanced_accuracy},
                            {"tpr_at_0.1%_fpr", a.tpr_at_0_1_fpr},
                            {"tpr_at_1%_fpr", a.tpr_at_1_fpr}});
  }
  const nlohmann::json j = {{"members", members},
                            {"non_members", non_members},
                            {"member_accuracy", member_accuracy},
                            {"non_member_accuracy", non_member_accuracy},
                            {"member_loss", member_loss},
                            {"non_member_loss", non_member_loss},
                            {"shadow_models", shadow_models},
                            {"attacks", attacks_json},
                            {"seconds", seconds}};
  return j.dump(2) + "\n";
}

std::string MembershipAuditReport::to_markdown(const std::string& title) const {
  std::string md = fmt::format("# {}\n\n", title);
  md += fmt::format(
      "{} members (accuracy {:.2f} %, mean loss {:.4f}) against {} non-members (accuracy "
      "{:.2f} %, mean loss {:.4f}){}.\n\n",
      members, 100 * member_accuracy, member_loss, non_members, 100 * non_member_accuracy,
      non_member_loss,
      shadow_models > 0 ? fmt::format("; LiRA with {} shadow models", shadow_models) : "");
  md += "| attack | ROC AUC | balanced accuracy | TPR at 0.1 % FPR | TPR at 1 % FPR |\n";
  md += "|---|---|---|---|---|\n";
  for (const auto& a : attacks) {
    md += fmt::format("| {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} |\n", a.attack, a.auc,
                      a.balanced_accuracy, a.tpr_at_0_1_fpr, a.tpr_at_1_fpr);
  }
  md += fmt::format(
      "\nAUC 0.5 and TPR equal to FPR mean no measurable leakage. The balanced accuracy is at "
      "the best threshold, chosen with the answers (an upper bound on a real attacker's). With "
      "{} non-members the FPR resolution is {:.2g} %.\n",
      non_members, 100.0 / static_cast<double>(non_members));
  return md;
}

}  // namespace bulwark
