// Certify with randomized smoothing (Cohen et al. 2019): train a SmallCNN on Gaussian-noise
// augmented images (sigma 0.25), then CERTIFY each test image: the smoothed classifier's
// prediction and the L2 radius within which no perturbation can change it, with probability
// at least 1 - alpha over the noise draws. Prints certified accuracy at three radii.
//
//   certify [train-samples] [test-images] [draws]   (defaults: 60000 500 10000)
#include <bulwark/bulwark.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
  const int64_t limit = argc > 1 ? std::atoll(argv[1]) : 60000;
  const int64_t images = argc > 2 ? std::atoll(argv[2]) : 500;
  const int64_t draws = argc > 3 ? std::atoll(argv[3]) : 10000;
  const auto train = bulwark::load_fashion_mnist(bulwark::Split::Train).head(limit);
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test).head(images);

  // The base classifier must be accurate under the same noise the certificate uses.
  bulwark::manual_seed(0);
  bulwark::SmallCNN net;
  bulwark::Model model(net);
  bulwark::Trainer(model, bulwark::TrainerOptions().epochs(1).batch_size(64).strategy(
                              bulwark::StrategyOptions(bulwark::StrategyKind::GaussianNoise)
                                  .sigma(0.25)))
      .fit(train);

  // n0 draws pick the class, n draws bound its probability (Clopper-Pearson at alpha 0.001);
  // the radius is sigma times the inverse normal CDF of that bound.
  const auto options = bulwark::SmoothingOptions().sigma(0.25).n0(100).n(draws).alpha(0.001);
  const auto report = bulwark::certify_dataset(model, test, options, {0.0, 0.25, 0.5, 1.0});
  std::cout << bulwark::to_markdown(report);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "certify: " << e.what() << "\n";
  return 1;
}
