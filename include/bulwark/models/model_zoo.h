#pragma once
/// @file
/// Built-in architectures by name, and model files: Bulwark checkpoints and TorchScript.

#include <c10/core/Device.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/core/model.h"
#include "bulwark/security/sealed_file.h"

namespace bulwark {

/// What a built-in model is: enough to rebuild it before loading its weights.
struct ModelSpec {
  /// "mlp", "small-cnn", "tanh-cnn" (for DP-SGD) or "resnet".
  std::string arch = "small-cnn";
  int64_t in_channels = 1;
  int64_t image_size = 28;
  int64_t num_classes = 10;
  std::vector<int64_t> hidden = {256, 256};  ///< mlp only
  int64_t depth = 20;                        ///< resnet only
  /// When non-empty, a Normalize layer with these statistics comes first.
  std::vector<double> mean, std;

  /// @throws Error when arch is unknown or a field is out of range.
  void validate() const;
  std::string to_json() const;
  /// @throws Error when the text is not a valid spec.
  static ModelSpec from_json(const std::string& text);
};

/// The names make_model accepts.
std::vector<std::string> model_architectures();

/// A freshly initialised model of `spec` (LibTorch's default initialisation, drawn from the
/// global generator: seed it first with manual_seed for reproducible weights).
Model make_model(const ModelSpec& spec);

/// Writes the weights and the spec of a built-in model atomically to `path`, with optional
/// free-form `metadata` (e.g. a detector's threshold, as JSON) that load_model returns.
/// @throws Error when the model is not an nn module or the file cannot be written.
void save_model(const Model& model, const ModelSpec& spec, const std::filesystem::path& path,
                const std::string& metadata = "");

/// A model read from a file: `spec` is set for Bulwark checkpoints, empty for TorchScript.
struct LoadedModel {
  Model model;
  std::optional<ModelSpec> spec;
  std::string metadata;  ///< what save_model was given, or empty
};

/// Loads a Bulwark checkpoint written by save_model, or else a TorchScript module; either may be
/// sealed (security/sealed_file.h), and is then opened in memory with `sealed`: its key or
/// passphrase, and the public keys one of which must have signed it. When `sealed` names a key,
/// a passphrase or trusted keys, a plain (unsealed) file is refused.
/// @throws Error naming the file when it is missing, corrupt, fails any sealed-file check, or
/// its weights do not fit its spec.
LoadedModel load_model(const std::filesystem::path& path,
                       c10::Device device = c10::Device(c10::kCPU),
                       const UnsealOptions& sealed = {});

}  // namespace bulwark
