// A program outside the project that links the installed bulwark::bulwark.
#include <bulwark/bulwark.h>
#include <torch/torch.h>

#include <iostream>

int main() {
  bulwark::manual_seed(0);
  bulwark::SmallCNN net;
  bulwark::Model model(net);
  const auto x = torch::rand({4, 1, 28, 28});
  const auto logits = model.forward(x);
  const auto grad = torch::randn_like(x);
  const auto x_adv = bulwark::ops::project_step(x, grad, x, 0.1, 0.1, bulwark::Norm::Linf, 0, 1);
  const double linf = (x_adv - x).abs().max().item<double>();
  std::cout << "logits " << logits.sizes() << ", max |x_adv - x| = " << linf << "\n";
  try {
    bulwark::ops::project_step(x, grad, x, 0.1, -1.0, bulwark::Norm::Linf, 0, 1);
    return 1;
  } catch (const bulwark::Error& e) {
    std::cout << "rejected: " << e.what() << "\n";
  }
  return (logits.size(1) == 10 && linf <= 0.1 + 1e-6) ? 0 : 1;
}
