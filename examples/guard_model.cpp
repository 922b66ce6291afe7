// Guard a served model: feature squeezing and a consistency check calibrated for 5% false
// positives, measured against PGD and against the adaptive attack that knows them; then an
// ensemble of two models attacked as one model. (Certification: examples/certify.cpp.)
//
//   guard_model [train-samples] [test-images]   (defaults: 60000 1000)
#include <bulwark/bulwark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
  const int64_t limit = argc > 1 ? std::atoll(argv[1]) : 60000;
  const int64_t images = argc > 2 ? std::atoll(argv[2]) : 1000;
  const auto train = bulwark::load_fashion_mnist(bulwark::Split::Train).head(limit);
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test).head(images);

  // Two SmallCNNs trained the standard way (different seeds).
  const auto train_model = [&](uint64_t seed) {
    bulwark::manual_seed(seed);
    bulwark::SmallCNN net;
    bulwark::Model model(net);
    bulwark::Trainer(model, bulwark::TrainerOptions().epochs(1).batch_size(64).seed(seed))
        .fit(train);
    return model;
  };
  auto model = train_model(0);
  auto twin = train_model(1);

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

  // Serving: answer with the ensemble, refuse what feature squeezing flags. Calibrated on clean
  // images, then fed clean and PGD images (PGD that ignores the detector; the tables above show
  // how much an adaptive attack takes back).
  auto guarded = bulwark::make_ensemble({model, twin});
  bulwark::FeatureSqueezing guard(guarded);
  const auto calibration = test.head(test.size() / 2);
  const auto incoming = test.slice(test.size() / 2, test.size());
  guard.calibrate(bulwark::score_in_batches(guard, calibration.images), 0.05);
  const auto adversarial = attack.run(guarded, incoming.images, incoming.labels).adversarial;
  const auto mean = [](const at::Tensor& t) { return t.to(torch::kFloat).mean().item<float>(); };
  for (const auto& [what, x] :
       {std::pair{"clean", incoming.images}, std::pair{"PGD", adversarial}}) {
    const auto refused = guard.flag(x);
    const auto answered_right =
        bulwark::predict(guarded, x).eq(incoming.labels).logical_and(refused.logical_not());
    std::cout << "guarded ensemble on " << what << " inputs: " << mean(refused) << " refused, "
              << mean(answered_right) << " answered correctly\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "guard_model: " << e.what() << "\n";
  return 1;
}
