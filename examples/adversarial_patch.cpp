// Physical-world attacks on a Fashion-MNIST classifier: train SmallCNN, then a universal patch
// that pushes any garment towards "bag" wherever it is put, and a sticker confined to two
// strips; measure both on held-out images under random views and write them as PNG.
//
//   adversarial_patch [train-samples] [patch-steps] [output-dir] [test-images]
//   (defaults: 60000 500 . 1000)
#include <bulwark/bulwark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) try {
  const int64_t limit = argc > 1 ? std::atoll(argv[1]) : 60000;
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 500;
  const std::filesystem::path out = argc > 3 ? argv[3] : ".";
  const int64_t images = argc > 4 ? std::atoll(argv[4]) : 1000;
  bulwark::manual_seed(0);
  const auto train = bulwark::load_fashion_mnist(bulwark::Split::Train).head(limit);
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test).head(images);

  bulwark::SmallCNN net;
  bulwark::Model model(net);
  bulwark::Trainer(model, bulwark::TrainerOptions().epochs(1).batch_size(64)).fit(train);
  std::cout << "clean accuracy: " << bulwark::clean_accuracy(model, test).accuracy << "\n";

  // A square patch covering 10% of the image, placed anywhere, rotated up to 22.5 degrees.
  constexpr int64_t kBag = 8;
  const auto patch = bulwark::train_patch(
      model, train.head(5000),
      bulwark::PatchOptions().size(0.1).target(kBag).steps(steps).seed(1));
  const auto on_patch = bulwark::evaluate_patch(model, test, patch.patch);
  std::cout << "patch success on held-out images: " << on_patch.success_rate
            << " (a random patch: " << on_patch.baseline_success_rate << ")\n";
  bulwark::write_png(out / "patch.png", patch.patch.pixels, patch.patch.mask, 8);

  // A sticker on two strips across the middle, robust to pose, light and noise.
  auto mask = torch::zeros({28, 28});
  mask.slice(0, 8, 11).slice(1, 4, 24).fill_(1);
  mask.slice(0, 17, 20).slice(1, 4, 24).fill_(1);
  const auto options = bulwark::StickerOptions(mask).target(kBag).steps(steps).seed(1);
  const auto sticker = bulwark::train_sticker(model, train.head(5000), options);
  const auto on_sticker = bulwark::evaluate_sticker(
      model, test, sticker.sticker,
      bulwark::EOTEvaluationOptions().transforms(options.transforms()));
  std::cout << "sticker success on held-out images: " << on_sticker.success_rate
            << " (random signs: " << on_sticker.baseline_success_rate << ")\n";
  bulwark::write_image_grid(out / "sticker-grid.png", on_sticker.example_clean,
                            on_sticker.example_views, on_sticker.example_clean_predictions,
                            on_sticker.example_view_predictions, on_sticker.example_labels);
  std::cout << "wrote " << (out / "patch.png").string() << " and "
            << (out / "sticker-grid.png").string() << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "adversarial_patch: " << e.what() << "\n";
  return 1;
}
