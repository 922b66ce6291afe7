// DP-SGD on the real Fashion-MNIST: a TanhCNN trained at epsilon 3, delta 1e-5 keeps most of
// its accuracy, and a membership-inference audit finds less leakage in it than in a model
// overfit without privacy.
#include <iostream>

#include "bulwark/data/idx.h"
#include "bulwark/defenses/trainer.h"
#include "bulwark/eval/accuracy.h"
#include "bulwark/models/model_zoo.h"
#include "bulwark/privacy/membership_inference.h"
#include "test_util.h"

namespace bulwark {
namespace {

class PrivateTrainingTest : public testing::SeededTest {};

TEST_F(PrivateTrainingTest, DpSgdAtEpsilon3ReachesHighAccuracyAndLeaksLessThanAnOverfitModel) {
  const auto train = load_fashion_mnist(Split::Train);
  const auto test = load_fashion_mnist(Split::Test);

  // Private: all 60000 images, Poisson rate 1024/60000, 5 epochs (295 steps), sigma calibrated
  // for epsilon 3 at delta 1e-5 (RDP), C = 1, SGD with momentum.
  bulwark::manual_seed(0);
  ModelSpec spec;
  spec.arch = "tanh-cnn";
  auto private_model = make_model(spec);
  Trainer trainer(private_model,
                  TrainerOptions()
                      .epochs(5)
                      .batch_size(1024)
                      .optimizer(OptimizerKind::SGD)
                      .momentum(0.9)
                      .learning_rate(1.0)
                      .seed(0)
                      .keep_best(false)
                      .differential_privacy(true)
                      .privacy(DPSGDOptions().target_epsilon(3.0).delta(1e-5).max_grad_norm(1.0)));
  const auto history = trainer.fit(train);
  const double private_accuracy = clean_accuracy(private_model, test).accuracy;
  std::cout << "DP-SGD: sigma " << trainer.noise_multiplier() << ", epsilon "
            << trainer.privacy_spent().epsilon << ", test accuracy " << private_accuracy << ", "
            << history.back().samples_per_second << " samples/s\n";
  EXPECT_LE(trainer.privacy_spent().epsilon, 3.0);
  EXPECT_GT(trainer.privacy_spent().epsilon, 2.95);
  // Measured: 0.8346 (sigma 0.883). Papernot et al. 2021 report 0.861 at epsilon 2.93 after
  // longer training.
  EXPECT_GE(private_accuracy, 0.80);

  // Not private: an MLP (784-512-10) overfit on 1000 images.
  bulwark::manual_seed(0);
  ModelSpec mlp;
  mlp.arch = "mlp";
  mlp.hidden = {512};
  auto overfit = make_model(mlp);
  Trainer plain(overfit, TrainerOptions().epochs(60).batch_size(50).seed(0).keep_best(false));
  plain.fit(train.head(1000));

  // Audit both on 1000 of their training images against 1000 test images.
  const auto members = train.head(1000), non_members = test.head(1000);
  const auto options = MembershipAuditOptions().shadow_models(0);
  const auto private_audit = audit_membership(private_model, members, non_members, options);
  const auto overfit_audit = audit_membership(overfit, members, non_members, options);
  const double private_auc = private_audit.attacks.front().auc;
  const double overfit_auc = overfit_audit.attacks.front().auc;
  std::cout << "loss-threshold AUC: private " << private_auc << " (members "
            << private_audit.member_accuracy << ", non-members "
            << private_audit.non_member_accuracy << "), overfit " << overfit_auc << " (members "
            << overfit_audit.member_accuracy << ", non-members "
            << overfit_audit.non_member_accuracy << ")\n";
  EXPECT_GT(overfit_audit.member_accuracy, 0.99);  // it did overfit
  // Measured: private 0.529 (members 0.859, non-members 0.847 accurate), overfit 0.628
  // (members 0.999, non-members 0.802).
  EXPECT_LT(private_auc, 0.56);
  EXPECT_GT(overfit_auc, 0.6);
  EXPECT_GT(overfit_auc, private_auc + 0.06);
}

}  // namespace
}  // namespace bulwark
