// Train the built-in SmallCNN on Fashion-MNIST, measure its clean accuracy, and take one
// FGSM step (eps = 0.1) with the fused step-and-project op to see how fragile it is.
//
//   quickstart [train-samples]      (default: all 60000)
#include <bulwark/bulwark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
  const int64_t limit = argc > 1 ? std::atoll(argv[1]) : 60000;
  bulwark::manual_seed(0);
  const auto train = bulwark::load_fashion_mnist(bulwark::Split::Train).head(limit);
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test).head(2000);

  bulwark::SmallCNN net;
  bulwark::Model model(net);
  bulwark::Trainer(model, bulwark::TrainerOptions().epochs(1).batch_size(64)).fit(train);
  std::cout << "clean accuracy: " << bulwark::clean_accuracy(model, test).accuracy << "\n";

  // One FGSM step: the gradient of the loss with respect to the input only.
  bulwark::EvalModeGuard eval_mode(model);
  auto x = test.images.clone().requires_grad_(true);
  const auto loss = bulwark::cross_entropy(model.forward(x), test.labels);
  const auto grad = torch::autograd::grad({loss}, {x})[0];
  const auto x_adv = bulwark::ops::project_step(x.detach(), grad, x.detach(), 0.1, 0.1,
                                                bulwark::Norm::Linf, 0.0, 1.0);
  const auto fooled = bulwark::predict(model, x_adv).ne(test.labels).to(torch::kFloat).mean();
  std::cout << "accuracy under one FGSM step (eps 0.1): " << 1 - fooled.item<float>() << "\n";
  return 0;
} catch (const bulwark::Error& e) {
  std::cerr << "quickstart: " << e.what() << "\n";
  return 1;
}
