// BatchNorm mixes the samples of a batch, so it has no per-sample gradients: finding it, and
// replacing it by GroupNorm.
#include "bulwark/privacy/per_sample_gradients.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "core/check.h"

namespace bulwark {
namespace {

bool is_batchnorm_module(const torch::nn::Module& module) {
  const auto name = module.name();
  return name.find("BatchNorm") != std::string::npos;
}

int64_t group_count(int64_t channels, int64_t groups) {
  for (int64_t g = std::min(groups, channels); g > 1; --g) {
    if (channels % g == 0) return g;
  }
  return 1;
}

}  // namespace

torch::nn::Sequential replace_batchnorm(const torch::nn::Sequential& sequential, int64_t groups) {
  BULWARK_CHECK(groups >= 1, "replace_batchnorm: groups must be >= 1, got {}", groups);
  torch::nn::Sequential out;
  const auto children = sequential->named_children();
  size_t i = 0;
  for (const auto& any : *sequential) {
    const auto& name = children[i++].key();
    const auto child = any.ptr();
    int64_t channels = -1;
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(child)) {
      channels = bn->options.num_features();
    } else if (auto bn1 = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(child)) {
      channels = bn1->options.num_features();
    }
    if (channels > 0) {
      out->push_back(name, torch::nn::AnyModule(torch::nn::GroupNorm(
                                group_count(channels, groups), channels)));
    } else {
      out->push_back(name, any);
    }
  }
  return out;
}

void reject_batchnorm(const Model& model) {
  const auto module = model.module();
  if (!module) return;
  const auto check = [&](const std::string& path, const torch::nn::Module& m) {
    BULWARK_CHECK(!is_batchnorm_module(m),
                  "the model '{}' contains batch normalization ({} '{}'), which mixes the "
                  "samples of a batch, so it has no per-sample gradients and cannot be trained "
                  "with DP-SGD; use GroupNorm instead (bulwark::replace_batchnorm does it for a "
                  "Sequential)",
                  model.name(), m.name(), path.empty() ? "<root>" : path);
  };
  check("", *module);
  for (const auto& item : module->named_modules("", false)) check(item.key(), *item.value());
}

}  // namespace bulwark
