#include "bulwark/privacy/membership_inference.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "bulwark/core/seed.h"
#include "bulwark/models/mlp.h"
#include "test_util.h"

namespace bulwark {
namespace {

class MembershipInferenceTest : public testing::SeededTest {};

// Random points with random labels: nothing to learn, everything to memorize, so a model
// that fits its training set leaks membership.
Dataset noise_task(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed);
  return Dataset(torch::randn({n, 1, 4, 4}, gen, torch::TensorOptions()),
                 torch::randint(0, 10, {n}, gen, torch::kLong), 10, "noise");
}

Model memorize(const Dataset& train, uint64_t seed, int64_t steps = 150) {
  bulwark::manual_seed(seed);
  MLP net(MLPOptions(16, 10).hidden({64}));
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-2));
  for (int64_t s = 0; s < steps; ++s) {
    optimizer.zero_grad();
    const auto loss = torch::nn::functional::cross_entropy(net->forward(train.images), train.labels);
    loss.backward();
    optimizer.step();
  }
  return Model(net);
}

TEST_F(MembershipInferenceTest, AnOverfitModelLeaksAndAnUnrelatedOneDoesNot) {
  const auto members = noise_task(200, 1), non_members = noise_task(200, 2);
  const auto population = noise_task(400, 3);
  auto target = memorize(members, 7);
  const auto report = audit_membership(
      target, members, non_members, MembershipAuditOptions().shadow_models(4).seed(1), population,
      [](const Dataset& train, uint64_t seed) { return memorize(train, seed); });
  EXPECT_GT(report.member_accuracy, 0.99);  // memorized
  EXPECT_LT(report.non_member_accuracy, 0.5);
  ASSERT_EQ(report.attacks.size(), 2u);
  EXPECT_EQ(report.attacks[0].attack, "loss-threshold");
  EXPECT_EQ(report.attacks[1].attack, "lira-offline");
  for (const auto& a : report.attacks) {
    // Chance-level correct guesses (10 %) on non-members look like members: AUC near 0.9.
    EXPECT_GT(a.auc, 0.85) << a.attack;
    EXPECT_GT(a.balanced_accuracy, 0.75) << a.attack;
    EXPECT_GT(a.tpr_at_1_fpr, 0.02) << a.attack;
    EXPECT_EQ(a.member_scores.size(0), 200);
  }

  // The same architecture trained on the population only: members are just more non-members.
  auto unrelated = memorize(population.slice(0, 200), 8);
  const auto baseline = audit_membership(unrelated, members, non_members,
                                         MembershipAuditOptions().shadow_models(0));
  ASSERT_EQ(baseline.attacks.size(), 1u);
  EXPECT_NEAR(baseline.attacks[0].auc, 0.5, 0.12);
  EXPECT_LT(baseline.attacks[0].tpr_at_1_fpr, 0.1);

  // Both reports render, with every attack.
  const auto json = nlohmann::json::parse(report.to_json());
  EXPECT_EQ(json.at("attacks").size(), 2u);
  EXPECT_NEAR(json.at("attacks")[1].at("auc").get<double>(), report.attacks[1].auc, 1e-12);
  const auto md = report.to_markdown();
  EXPECT_NE(md.find("| lira-offline |"), std::string::npos);
  EXPECT_NE(md.find("TPR at 0.1 % FPR"), std::string::npos);
}

TEST_F(MembershipInferenceTest, BadInputIsRejected) {
  const auto data = noise_task(10, 1);
  auto model = memorize(data, 1, 1);
  EXPECT_BULWARK_ERROR(audit_membership(model, data.slice(0, 0), data), "member set", "empty");
  EXPECT_BULWARK_ERROR(audit_membership(model, data, data.slice(0, 0)), "non-member set");
  EXPECT_BULWARK_ERROR(audit_membership(model, data, data, MembershipAuditOptions()),
                       "shadow trainer");
  const ShadowTrainer trainer = [](const Dataset& d, uint64_t s) { return memorize(d, s, 1); };
  EXPECT_BULWARK_ERROR(audit_membership(model, data, data, MembershipAuditOptions(), Dataset(),
                                        trainer),
                       "population");
  const Dataset other(torch::zeros({5, 1, 3, 3}), torch::zeros({5}, torch::kLong), 4);
  EXPECT_BULWARK_ERROR(
      audit_membership(model, data, other, MembershipAuditOptions().shadow_models(0)),
      "same task");
  EXPECT_BULWARK_ERROR(audit_membership(model, data, data,
                                        MembershipAuditOptions().shadow_models(-1)),
                       "shadow_models");
}

}  // namespace
}  // namespace bulwark
