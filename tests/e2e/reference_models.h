#pragma once
// The reference models of the end-to-end tests, trained once per test run by the ctest
// fixtures of tests/e2e/reference_models.cmake into the build tree. The tests only load them.

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bulwark/core/error.h"
#include "bulwark/models/model_zoo.h"
#include "test_paths.h"

namespace bulwark::testing {

inline std::filesystem::path reference_model_path(const std::string& name,
                                                  const std::string& extension = ".pt") {
  return std::filesystem::path(reference_models_dir()) / (name + extension);
}

/// The model `name` (standard, fast-at, gaussian, dp-tanh).
/// @throws Error when it is missing: the test was run without its ctest fixture.
inline Model reference_model(const std::string& name) {
  const auto path = reference_model_path(name);
  if (!std::filesystem::exists(path)) {
    throw Error("reference model '" + path.string() +
                "' is missing: run this test through ctest, whose fixture reference_model_" +
                name + " trains it");
  }
  return load_model(path).model;
}

/// The per-epoch history `bulwark train --report` wrote for the model `name`.
inline nlohmann::json reference_history(const std::string& name) {
  std::ifstream in(reference_model_path(name, ".json"));
  if (!in.good()) throw Error("the training report of reference model '" + name + "' is missing");
  return nlohmann::json::parse(in);
}

}  // namespace bulwark::testing
