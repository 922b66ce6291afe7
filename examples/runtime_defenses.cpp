// Runtime defenses for a served model: feature squeezing and a consistency check calibrated
// for 5% false positives, measured against PGD and against the adaptive attack that knows
// them; an ensemble attacked as one model; and certified accuracy by randomized smoothing.
//
//   runtime_defenses [train-samples] [test-images]   (defaults: 60000 1000)
#include <bulwark/bulwark.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
  const int64_t limit = argc > 1 ? std::atoll(argv[1]) : 60000;
  const int64_t images = argc > 2 ? std::atoll(argv[2]) : 1000;
  const auto train = bulwark::load_fashion_mnist(bulwark::Split::Train).head(limit);
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test).head(images);

  // Two SmallCNNs trained the standard way (different seeds), one with Gaussian noise.
  const auto train_model = [&](uint64_t seed, bulwark::StrategyOptions strategy) {
    bulwark::manual_seed(seed);
    bulwark::SmallCNN net;
    bulwark::Model model(net);
    bulwark::Trainer(model, bulwark::TrainerOptions().epochs(1).batch_size(64).seed(seed).strategy(strategy))
        .fit(train);
    return model;
  };
  auto model = train_model(0, bulwark::StrategyOptions());
  auto twin = train_model(1, bulwark::StrategyOptions());

  // Detectors: calibrated on the first half of the test images, measured on the rest.
  const std::vector<std::shared_ptr<bulwark::Attack>> pgd = {
      std::make_shared<bulwark::PGD>(bulwark::PGDOptions(0.1).steps(20))};
  bulwark::FeatureSqueezing squeeze(model);
  bulwark::ConsistencyCheck consistency(model, bulwark::ConsistencyOptions().sigma(0.1));
  for (bulwark::Detector* detector : {static_cast<bulwark::Detector*>(&squeeze),
                                      static_cast<bulwark::Detector*>(&consistency)}) {
    const auto report = bulwark::evaluate_detector(
        model, *detector, test, pgd,
        bulwark::DetectionEvaluationOptions().target_fpr(0.05).adaptive(
            bulwark::AdaptiveAttackOptions(0.1).steps(30)));
    std::cout << bulwark::to_markdown(report) << "\n";
  }

  // An ensemble is a Model: PGD attacks it directly.
  bulwark::PGD attack(bulwark::PGDOptions(0.1).steps(20));
  const auto diversity = bulwark::ensemble_diversity(
      {model, twin}, bulwark::EnsembleMode::MeanLogits, test.head(200), attack);
  std::cout << "ensemble of two: agreement " << diversity.agreement[0][1] << ", transfer rate "
            << diversity.transfer[0][1] << ", ensemble accuracy under transfer "
            << diversity.ensemble_accuracy_under_transfer[0] << ", under PGD through it "
            << diversity.ensemble_robust_accuracy << "\n";

  // Certified L2 robustness of a noise-trained model.
  auto noisy = train_model(2, bulwark::StrategyOptions(bulwark::StrategyKind::GaussianNoise).sigma(0.25));
  const auto certified = bulwark::certify_dataset(
      noisy, test.head(50), bulwark::SmoothingOptions().sigma(0.25).n(1000), {0.0, 0.25, 0.5});
  std::cout << bulwark::to_markdown(certified);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "runtime_defenses: " << e.what() << "\n";
  return 1;
}
