#pragma once
// The demo SmallCNN of scripts/demo (one epoch on the full Fashion-MNIST training split,
// batch 64, Adam 1e-3, seed 0), loaded from $BULWARK_HOME/models where the demo keeps it, or
// trained the same way and stored there (atomically) for the demo and later runs.

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "bulwark/core/error.h"
#include "bulwark/core/seed.h"
#include "bulwark/data/idx.h"
#include "bulwark/defenses/trainer.h"
#include "bulwark/models/model_zoo.h"

namespace bulwark::testing {

inline std::filesystem::path demo_model_path() {
  const char* home = std::getenv("BULWARK_HOME");
  const char* user = std::getenv("HOME");
  const std::filesystem::path base = home != nullptr ? std::filesystem::path(home)
                                     : user != nullptr
                                         ? std::filesystem::path(user) / ".cache" / "bulwark"
                                         : std::filesystem::temp_directory_path() / "bulwark";
  return base / "models" / "smallcnn-fashion-mnist-1epoch.pt";
}

inline Model demo_model() {
  const auto path = demo_model_path();
  if (std::filesystem::exists(path)) {
    try {
      auto loaded = load_model(path);
      if (loaded.spec && loaded.spec->arch == "small-cnn") return loaded.model;
    } catch (const Error& e) {
      std::cout << "retraining the demo model: " << e.what() << "\n";
    }
  }
  manual_seed(0);
  ModelSpec spec;  // SmallCNN for 1×28×28, 10 classes
  auto model = make_model(spec);
  Trainer(model, TrainerOptions().epochs(1).batch_size(64).seed(0))
      .fit(load_fashion_mnist(Split::Train));
  std::filesystem::create_directories(path.parent_path());
  save_model(model, spec, path);
  return model;
}

}  // namespace bulwark::testing
