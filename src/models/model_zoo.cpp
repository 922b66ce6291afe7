#include "bulwark/models/model_zoo.h"

#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

#include "bulwark/core/files.h"
#include "bulwark/models/mlp.h"
#include "bulwark/models/normalize.h"
#include "bulwark/models/resnet.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/models/tanh_cnn.h"
#include "core/check.h"
#include "core/torch_errors.h"

namespace bulwark {
namespace {

constexpr const char* kSpecKey = "bulwark_model_spec";
constexpr const char* kFormatKey = "bulwark_format_version";
constexpr const char* kMetadataKey = "bulwark_metadata";
constexpr int64_t kFormatVersion = 1;

}  // namespace

std::vector<std::string> model_architectures() { return {"mlp", "small-cnn", "tanh-cnn", "resnet"}; }

void ModelSpec::validate() const {
  const auto archs = model_architectures();
  BULWARK_CHECK(std::find(archs.begin(), archs.end(), arch) != archs.end(),
                "ModelSpec: unknown architecture '{}', expected one of: {}", arch,
                fmt::join(archs, ", "));
  BULWARK_CHECK(in_channels >= 1 && image_size >= 1 && num_classes >= 2,
                "ModelSpec: need in_channels >= 1, image_size >= 1, num_classes >= 2, got {}, {}, "
                "{}",
                in_channels, image_size, num_classes);
  // Bounds far beyond any model a spec describes, so that a corrupt or hostile model file
  // cannot make make_model allocate without limit.
  BULWARK_CHECK(in_channels <= 64 && image_size <= 1024 && num_classes <= 100000,
                "ModelSpec: need in_channels <= 64, image_size <= 1024, num_classes <= 100000, "
                "got {}, {}, {}",
                in_channels, image_size, num_classes);
  BULWARK_CHECK(hidden.size() <= 64, "ModelSpec: at most 64 hidden layers, got {}", hidden.size());
  for (const auto h : hidden) {
    BULWARK_CHECK(h >= 1 && h <= 65536, "ModelSpec: hidden sizes must be in [1, 65536], got {}", h);
  }
  BULWARK_CHECK(depth >= 8 && depth <= 1202 && (depth - 2) % 6 == 0,
                "ModelSpec: depth must be 6n + 2 in [8, 1202], got {}", depth);
  BULWARK_CHECK(in_channels * image_size * image_size * (hidden.empty() ? 1 : hidden.front()) <=
                    (int64_t{1} << 30),
                "ModelSpec: the first layer of {} inputs and {} units is too large",
                in_channels * image_size * image_size, hidden.empty() ? 0 : hidden.front());
  for (const double v : mean) {
    BULWARK_CHECK(std::isfinite(v), "ModelSpec: mean values must be finite, got {}", v);
  }
  for (const double v : std) {
    BULWARK_CHECK(std::isfinite(v) && v > 0, "ModelSpec: std values must be finite and > 0, got {}",
                  v);
  }
  BULWARK_CHECK(mean.size() == std.size() &&
                    (mean.empty() || static_cast<int64_t>(mean.size()) == in_channels),
                "ModelSpec: mean and std need one entry per input channel ({}), got {} and {}",
                in_channels, mean.size(), std.size());
}

std::string ModelSpec::to_json() const {
  nlohmann::json j = {{"arch", arch},       {"in_channels", in_channels},
                      {"image_size", image_size}, {"num_classes", num_classes},
                      {"hidden", hidden},   {"depth", depth},
                      {"mean", mean},       {"std", std}};
  return j.dump();
}

namespace {

// A JSON integer as int64: a float (3e50, 2.5) or an integer past int64 is refused, not cast
// (nlohmann's get<int64_t> casts, which is undefined behaviour out of range).
int64_t integer(const nlohmann::json& value, const char* key) {
  const bool fits = value.is_number_integer() &&
                    (!value.is_number_unsigned() ||
                     value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX));
  if (!fits) {
    throw Error(fmt::format("ModelSpec::from_json: '{}' must be an integer, got {}", key,
                            value.dump()));
  }
  return value.get<int64_t>();
}

}  // namespace

ModelSpec ModelSpec::from_json(const std::string& text) {
  ModelSpec spec;
  try {
    const auto j = nlohmann::json::parse(text);
    spec.arch = j.at("arch").get<std::string>();
    spec.in_channels = integer(j.at("in_channels"), "in_channels");
    spec.image_size = integer(j.at("image_size"), "image_size");
    spec.num_classes = integer(j.at("num_classes"), "num_classes");
    const auto& hidden = j.at("hidden");
    if (!hidden.is_array()) throw Error("ModelSpec::from_json: 'hidden' must be an array");
    spec.hidden.clear();  // the default spec has hidden layers of its own
    for (const auto& width : hidden) spec.hidden.push_back(integer(width, "hidden"));
    spec.depth = integer(j.at("depth"), "depth");
    spec.mean = j.at("mean").get<std::vector<double>>();
    spec.std = j.at("std").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("ModelSpec::from_json: not a valid model spec: {}", e.what()));
  }
  spec.validate();
  return spec;
}

Model make_model(const ModelSpec& spec) {
  spec.validate();
  torch::nn::Sequential net;
  if (!spec.mean.empty()) net->push_back("normalize", Normalize(spec.mean, spec.std));
  if (spec.arch == "mlp") {
    net->push_back("net", MLP(MLPOptions(spec.in_channels * spec.image_size * spec.image_size,
                                         spec.num_classes)
                                  .hidden(spec.hidden)));
  } else if (spec.arch == "small-cnn") {
    net->push_back("net", SmallCNN(SmallCNNOptions()
                                       .in_channels(spec.in_channels)
                                       .num_classes(spec.num_classes)
                                       .image_size(spec.image_size)));
  } else if (spec.arch == "tanh-cnn") {
    net->push_back("net", TanhCNN(TanhCNNOptions()
                                      .in_channels(spec.in_channels)
                                      .num_classes(spec.num_classes)
                                      .image_size(spec.image_size)));
  } else {
    net->push_back("net", ResNet(ResNetOptions()
                                     .depth(spec.depth)
                                     .in_channels(spec.in_channels)
                                     .num_classes(spec.num_classes)));
  }
  return Model(net, spec.arch);
}

void save_model(const Model& model, const ModelSpec& spec, const std::filesystem::path& path,
                const std::string& metadata) {
  spec.validate();
  const auto module = model.module();
  BULWARK_CHECK(module != nullptr,
                "save_model: '{}' is not a torch::nn module (TorchScript and function models are "
                "saved by their own tools)",
                model.name());
  torch::serialize::OutputArchive archive;
  module->save(archive);
  archive.write(kSpecKey, c10::IValue(spec.to_json()));
  archive.write(kFormatKey, c10::IValue(kFormatVersion));
  if (!metadata.empty()) archive.write(kMetadataKey, c10::IValue(metadata));
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    try {
      archive.save_to(tmp.string());
    } catch (const c10::Error& e) {
      throw Error(fmt::format("save_model: writing '{}' failed: {}", path.string(),
                              e.what_without_backtrace()));
    }
  });
}

namespace {

// A Bulwark checkpoint from its archive, or the TorchScript module `load_script` reads.
template <typename LoadScript>
LoadedModel from_archive(torch::serialize::InputArchive& archive, const std::string& where,
                         c10::Device device, LoadScript&& load_script) {
  c10::IValue spec_value;
  if (!archive.try_read(kSpecKey, spec_value)) return {load_script(), std::nullopt, {}};
  BULWARK_CHECK(spec_value.isString(), "load_model: '{}' has a malformed model spec", where);
  auto spec = ModelSpec::from_json(spec_value.toStringRef());
  auto model = make_model(spec);
  try {
    model.module()->load(archive);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("load_model: the weights in '{}' do not fit its {} spec: {}", where,
                            spec.arch, e.what_without_backtrace()));
  }
  model.to(device);
  std::string metadata;
  c10::IValue metadata_value;
  if (archive.try_read(kMetadataKey, metadata_value)) {
    BULWARK_CHECK(metadata_value.isString(), "load_model: '{}' has malformed metadata", where);
    metadata = metadata_value.toStringRef();
  }
  return {model, spec, metadata};
}

}  // namespace

LoadedModel load_model(const std::filesystem::path& path, c10::Device device,
                       const UnsealOptions& sealed) {
  BULWARK_CHECK(std::filesystem::is_regular_file(path),
                "load_model: '{}' does not exist or is not a file", path.string());
  auto options = sealed;
  if (options.key() || !options.passphrase().empty() || !options.trusted_keys().empty()) {
    options.require_sealed(true);
  }
  torch::serialize::InputArchive archive;
  if (!options.require_sealed() && !is_sealed_file(path)) {
    try {
      archive.load_from(path.string(), device);
    } catch (const std::exception& e) {
      throw Error(fmt::format(
          "load_model: '{}' is not a model file (corrupt or unknown format): {}", path.string(),
          detail::torch_error_reason(e)));
    }
    return from_archive(archive, path.string(), device,
                        [&] { return Model::load_torchscript(path, device); });
  }
  // Sealed: opened, checked and decrypted in memory; the plain bytes never touch the disk and
  // are wiped once loaded (the weights live on in the model), on errors too.
  std::string content;
  struct Wipe {
    std::string& bytes;
    ~Wipe() { wipe_bytes(bytes); }
  } wipe{content};
  try {
    content = read_possibly_sealed(path, options);
  } catch (const Error& e) {
    throw Error(fmt::format("load_model: {}", e.what()));
  }
  try {
    archive.load_from(content.data(), content.size(), device);
  } catch (const std::exception& e) {
    throw Error(fmt::format(
        "load_model: the content of the sealed file '{}' is not a model (corrupt or unknown "
        "format): {}",
        path.string(), detail::torch_error_reason(e)));
  }
  return from_archive(archive, path.string(), device, [&] {
    return Model::load_torchscript_bytes(content, "torchscript:" + path.filename().string(),
                                         device);
  });
}

}  // namespace bulwark
