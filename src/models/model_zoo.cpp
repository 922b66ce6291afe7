#include "bulwark/models/model_zoo.h"

#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "bulwark/core/files.h"
#include "bulwark/models/mlp.h"
#include "bulwark/models/normalize.h"
#include "bulwark/models/resnet.h"
#include "bulwark/models/small_cnn.h"
#include "bulwark/models/tanh_cnn.h"
#include "core/check.h"

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

ModelSpec ModelSpec::from_json(const std::string& text) {
  ModelSpec spec;
  try {
    const auto j = nlohmann::json::parse(text);
    spec.arch = j.at("arch").get<std::string>();
    spec.in_channels = j.at("in_channels").get<int64_t>();
    spec.image_size = j.at("image_size").get<int64_t>();
    spec.num_classes = j.at("num_classes").get<int64_t>();
    spec.hidden = j.at("hidden").get<std::vector<int64_t>>();
    spec.depth = j.at("depth").get<int64_t>();
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

LoadedModel load_model(const std::filesystem::path& path, c10::Device device) {
  BULWARK_CHECK(std::filesystem::is_regular_file(path),
                "load_model: '{}' does not exist or is not a file", path.string());
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string(), device);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("load_model: '{}' is not a model file (corrupt or unknown format): {}",
                            path.string(), e.what_without_backtrace()));
  }
  c10::IValue spec_value;
  if (!archive.try_read(kSpecKey, spec_value)) {
    return {Model::load_torchscript(path, device), std::nullopt, {}};
  }
  BULWARK_CHECK(spec_value.isString(), "load_model: '{}' has a malformed model spec",
                path.string());
  auto spec = ModelSpec::from_json(spec_value.toStringRef());
  auto model = make_model(spec);
  try {
    model.module()->load(archive);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("load_model: the weights in '{}' do not fit its {} spec: {}",
                            path.string(), spec.arch, e.what_without_backtrace()));
  }
  model.to(device);
  std::string metadata;
  c10::IValue metadata_value;
  if (archive.try_read(kMetadataKey, metadata_value)) {
    BULWARK_CHECK(metadata_value.isString(), "load_model: '{}' has malformed metadata",
                  path.string());
    metadata = metadata_value.toStringRef();
  }
  return {model, spec, metadata};
}

}  // namespace bulwark
