// Private training in a few lines: TanhCNN on Fashion-MNIST with DP-SGD, the noise calibrated
// so that the whole run spends epsilon 3 at delta 1e-5, then a membership-inference audit of
// what the model leaks about its training images.
//
//   private_training [train-samples] [epochs]   (defaults: 60000 5; 83.5 % test accuracy)
#include <bulwark/bulwark.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
  const int64_t limit = argc > 1 ? std::atoll(argv[1]) : 60000;
  const int64_t epochs = argc > 2 ? std::atoll(argv[2]) : 5;
  const auto train = bulwark::load_fashion_mnist(bulwark::Split::Train).head(limit);
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test);

  bulwark::manual_seed(0);
  bulwark::TanhCNN net;  // no BatchNorm: it mixes samples (bulwark::replace_batchnorm swaps it)
  bulwark::Model model(net);
  // DP-SGD's recipe (SGD 1.0, momentum 0.9): Poisson sampling at rate 1024 / N, every
  // sample's gradient clipped to norm 1, Gaussian noise of sigma * 1 on the sum, sigma
  // calibrated for epsilon 3 over all steps (RDP).
  bulwark::Trainer trainer(model, bulwark::TrainerOptions()
                                      .epochs(epochs)
                                      .keep_best(false)
                                      .differential_privacy(true)
                                      .privacy(bulwark::DPSGDOptions()
                                                   .target_epsilon(3.0)
                                                   .delta(1e-5)
                                                   .max_grad_norm(1.0)));
  trainer.on_epoch([](const bulwark::EpochMetrics& m) {
    std::cout << "epoch " << m.epoch + 1 << ": loss " << m.train_loss << ", epsilon spent "
              << m.epsilon << ", " << 100 * m.clipped_fraction << "% of samples clipped\n";
  });
  trainer.fit(train);
  const auto spent = trainer.privacy_spent();
  std::cout << "noise multiplier " << trainer.noise_multiplier() << ": (epsilon "
            << spent.epsilon << ", delta " << spent.delta << ")-differentially private\n";
  std::cout << "test accuracy " << bulwark::clean_accuracy(model, test).accuracy << "\n";

  // The audit: can a loss threshold tell 1000 training images from 1000 test images?
  const int64_t audited = std::min<int64_t>(1000, train.size());
  const auto audit = bulwark::audit_membership(model, train.head(audited), test.head(audited),
                                               bulwark::MembershipAuditOptions().shadow_models(0));
  const auto& attack = audit.attacks.front();
  std::cout << "membership audit (" << attack.attack << "): AUC " << attack.auc
            << ", TPR at 1% FPR " << attack.tpr_at_1_fpr << " (0.5 and 0.01: no leakage)\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "private_training: " << e.what() << "\n";
  return 1;
}
