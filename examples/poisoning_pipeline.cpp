// A backdoor from start to finish: poison -> train -> measure -> inspect -> remove -> retrain ->
// measure again, and the other road, scan the model -> unlearn -> measure.
//
// BadNets (Gu et al. 2017) plants a white 3×3 square in the bottom-right corner of 5% of the
// Fashion-MNIST training images and relabels them 8 (bag). A SmallCNN trained on them learns to
// send any image carrying the square to class 8 while its clean accuracy stays normal. Activation
// clustering finds the poisoned samples in the training set through that model's activations;
// removing them and retraining gives a model without the backdoor. Neural Cleanse finds the
// backdoor in the model alone, without the training set, and unlearning removes it.
//
//   poisoning_pipeline [train-samples] [epochs] [neural-cleanse-checks]
//   (defaults: 20000 5 30; on 2 threads about 6 minutes)
#include <bulwark/bulwark.h>

#include <cstdlib>
#include <iostream>
#include <stdexcept>

namespace {

constexpr int64_t kTarget = 8;

bulwark::Model train_small_cnn(const bulwark::Dataset& data, int64_t epochs) {
  bulwark::manual_seed(0);
  // The built-in SmallCNN as the CLI makes it, so its layers are named as in the docs.
  auto model = bulwark::make_model(bulwark::ModelSpec());
  bulwark::Trainer(model, bulwark::TrainerOptions().epochs(epochs).batch_size(64).keep_best(false))
      .fit(data);
  return model;
}

void report(const char* what, bulwark::Model& model, const bulwark::Dataset& test,
            const bulwark::Trigger& trigger) {
  const auto e = bulwark::evaluate_backdoor(model, test, trigger,
                                            bulwark::BackdoorOptions().target(kTarget));
  std::cout << what << ": clean accuracy " << 100 * e.clean_accuracy << "%, attack success "
            << 100 * e.attack_success_rate << "% of " << e.triggered << " triggered images\n";
}

}  // namespace

int main(int argc, char** argv) try {
  const int64_t limit = argc > 1 ? std::atoll(argv[1]) : 20000;
  const int64_t epochs = argc > 2 ? std::atoll(argv[2]) : 5;
  const int64_t checks = argc > 3 ? std::atoll(argv[3]) : 30;
  if (limit < 100 || limit > 59000) {
    throw std::invalid_argument("train-samples must be in [100, 59000]");
  }
  const auto full_train = bulwark::load_fashion_mnist(bulwark::Split::Train);
  const auto train = full_train.head(limit);
  // Clean images the defender holds, never trained on: for unlearning.
  const auto held_out = full_train.slice(limit, limit + 1000);
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test);

  // 1. Poison: 5% of the training set, all to class 8; `changed` is the ground truth.
  const auto trigger = bulwark::Trigger::parse("square:3");
  const auto poisoned = bulwark::plant_backdoor(
      train, trigger, bulwark::BackdoorOptions().rate(0.05).target(kTarget).seed(0));
  std::cout << "poisoned " << poisoned.changed.size(0) << " of " << train.size()
            << " training images (" << trigger.describe() << ", to class " << kTarget << ")\n";

  // 2. Train on it and measure.
  auto backdoored = train_small_cnn(poisoned.data, epochs);
  report("trained on the poisoned set", backdoored, test, trigger);

  // 3. Inspect the training set through the model: activation clustering at the last hidden
  // layer, one verdict per class; only classes judged poisoned have samples flagged.
  const auto activations =
      bulwark::collect_activations(backdoored, "net.classifier.3", poisoned.data.images);
  const auto inspection = bulwark::activation_clustering(activations, poisoned.data.labels,
                                                         poisoned.data.num_classes);
  for (const auto& c : inspection.classes) {
    if (c.poisoned) std::cout << "  class " << c.label << " judged poisoned: " << c.flagged
                              << " of its " << c.samples << " samples flagged\n";
  }
  const auto score = bulwark::score_detection(inspection.flagged, poisoned.changed);
  std::cout << "activation clustering flagged " << score.flagged << " samples: precision "
            << 100 * score.precision << "%, recall " << 100 * score.recall << "%\n";

  // 4. Remove what it flagged, retrain with the same recipe, measure again.
  auto retrained = train_small_cnn(bulwark::remove_samples(poisoned.data, inspection.flagged),
                                   epochs);
  report("retrained without the flagged samples", retrained, test, trigger);

  // 5. The other road: Neural Cleanse on the model alone, then unlearning on 1000 clean images.
  const auto scan = bulwark::neural_cleanse(backdoored, test.head(500).images,
                                            test.num_classes,
                                            bulwark::NeuralCleanseOptions().checks(checks));
  if (!scan.backdoored) {
    std::cout << "Neural Cleanse flagged no class\n";
    return 0;
  }
  for (const auto label : scan.flagged) {
    const auto& c = scan.classes[label];
    std::cout << "Neural Cleanse flagged class " << label << ": mask L1 " << c.l1_norm
              << ", anomaly index " << c.anomaly_index << "\n";
    bulwark::unlearn_backdoor(backdoored, held_out, c.trigger());
  }
  report("after unlearning the reversed trigger", backdoored, test, trigger);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "poisoning_pipeline: " << e.what() << "\n";
  return 1;
}
