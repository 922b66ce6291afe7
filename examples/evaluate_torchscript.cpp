// Evaluate a model exported from Python as TorchScript (examples/export_torchscript.py): clean
// accuracy, then robust accuracy under FGSM and PGD at three L-inf budgets, with the worst case
// per budget and the sanity checks that flag gradient masking. Gradients flow through the
// scripted module, so every attack works on it as on a C++ model.
//
//   evaluate_torchscript MODEL.pt [test-images] [report.json]   (default: 1000 images)
#include <bulwark/bulwark.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: evaluate_torchscript MODEL.pt [test-images] [report.json]\n";
    return 2;
  }
  const int64_t images = argc > 2 ? std::atoll(argv[2]) : 1000;
  // load_model reads Bulwark checkpoints and TorchScript archives alike.
  auto loaded = bulwark::load_model(argv[1]);
  auto& model = loaded.model;
  const auto test = bulwark::load_fashion_mnist(bulwark::Split::Test).head(images);
  std::cout << model.name() << ": clean accuracy " << bulwark::clean_accuracy(model, test).accuracy
            << " on " << test.size() << " test images\n";

  // The attacks work in the input box [0, 1]; the exported model normalizes inside. Each eps
  // below overrides the options' eps.
  const std::vector<std::shared_ptr<bulwark::Attack>> attacks = {
      std::make_shared<bulwark::FGSM>(bulwark::FGSMOptions(0.1)),
      std::make_shared<bulwark::PGD>(bulwark::PGDOptions(0.1).steps(20))};
  bulwark::manual_seed(0);
  const auto report = bulwark::evaluate(model, test, attacks, {0.03, 0.1, 0.2});
  std::cout << bulwark::to_markdown(report);
  if (argc > 3) bulwark::write_report(report, argv[3]);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "evaluate_torchscript: " << e.what() << "\n";
  return 1;
}
