// Finds each trainable parameter's consumers in the autograd graph and recognises the layers
// whose per-sample gradients need no loop over samples.
#include "privacy/per_sample_graph.h"

#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/generated/Functions.h>
#include <torch/torch.h>

#include <set>
#include <string>

#include "core/check.h"

namespace bulwark::detail {
namespace {

std::vector<int64_t> ints(const std::vector<c10::SymInt>& values) {
  std::vector<int64_t> out;
  out.reserve(values.size());
  for (const auto& v : values) out.push_back(v.expect_int());
  return out;
}

bool is_batchnorm(const Node& node) {
  return node.name().find("BatchNorm") != std::string::npos;
}

/// A tensor the node saved, without its history (undefined if it saved none).
at::Tensor unpacked(const torch::autograd::SavedVariable& saved, const NodePtr& node) {
  const auto t = saved.unpack(node);
  return t.defined() ? t.detach() : t;
}

}  // namespace

GraphInfo walk_graph(const NodePtr& root,
                     const std::unordered_map<const c10::TensorImpl*, size_t>& index,
                     size_t count) {
  GraphInfo info;
  info.uses.resize(count);
  std::vector<NodePtr> stack{root};
  std::set<Node*> seen{root.get()};
  const auto parameter_of = [&](const NodePtr& fn) -> std::optional<size_t> {
    auto* accumulate = dynamic_cast<torch::autograd::AccumulateGrad*>(fn.get());
    if (accumulate == nullptr) return std::nullopt;
    const auto it = index.find(accumulate->variable.unsafeGetTensorImpl());
    if (it == index.end()) return std::nullopt;
    return it->second;
  };
  while (!stack.empty()) {
    const NodePtr node = stack.back();
    stack.pop_back();
    BULWARK_CHECK(!is_batchnorm(*node),
                  "per-sample gradients: the model contains batch normalization ({}), which "
                  "mixes the samples of a batch so no per-sample gradient exists; use GroupNorm "
                  "instead (bulwark::replace_batchnorm does it for a Sequential)",
                  node->name());
    const auto& edges = node->next_edges();
    for (size_t e = 0; e < edges.size(); ++e) {
      const NodePtr& fn = edges[e].function;
      if (!fn) continue;
      ++info.consumers[fn.get()];
      if (const auto p = parameter_of(fn)) {
        // A transposition of a parameter was recorded as a use by each of its consumers.
        if (node->name() != "TBackward0" || node == root) {
          info.uses[*p].push_back({node, e, false, nullptr});
        }
        continue;
      }
      if (fn->name() == "TBackward0" && fn->next_edges().size() == 1 &&
          fn->next_edges()[0].function) {
        if (const auto p = parameter_of(fn->next_edges()[0].function)) {
          info.uses[*p].push_back({node, e, true, fn.get()});
        }
      }
      if (seen.insert(fn.get()).second) stack.push_back(fn);
    }
  }
  return info;
}

std::optional<FastParameter> recognise(const Use& use, const at::Tensor& parameter, int64_t n) {
  FastParameter fast;
  fast.node = use.node;
  fast.edge = use.edge;
  fast.transposed = use.transposed;
  const NodePtr& node = use.node;
  const std::string name = node->name();
  using namespace torch::autograd::generated;  // NOLINT(google-build-using-namespace)
  if (name == "ConvolutionBackward0") {
    auto* conv = dynamic_cast<ConvolutionBackward0*>(node.get());
    if (conv == nullptr || conv->transposed || use.transposed || use.edge == 0) return {};
    fast.activation = unpacked(conv->input_, node);
    fast.weight = unpacked(conv->weight_, node);
    if (!fast.activation.defined() || !fast.weight.defined()) return {};
    const auto dim = fast.activation.dim();
    if ((dim != 3 && dim != 4) || fast.activation.size(0) != n) return {};
    fast.method = GradSampleMethod::Conv;
    fast.stride = ints(conv->stride);
    fast.padding = ints(conv->padding);
    fast.dilation = ints(conv->dilation);
    fast.output_padding = ints(conv->output_padding);
    fast.groups = conv->groups.expect_int();
    return fast;
  }
  if (name == "AddmmBackward0") {
    auto* addmm = dynamic_cast<AddmmBackward0*>(node.get());
    if (addmm == nullptr) return {};
    fast.method = GradSampleMethod::Linear;
    fast.activation = unpacked(addmm->mat1_, node);
    if (!fast.activation.defined() || fast.activation.size(0) != n) return {};
    if (use.edge == 0 && !use.transposed && parameter.dim() == 1) {
      fast.scale = addmm->beta.toDouble();
      fast.method = GradSampleMethod::Bias;
      return fast;
    }
    if (use.edge != 2) return {};
    fast.scale = addmm->alpha.toDouble();
    return fast;
  }
  if (name == "MmBackward0") {
    auto* mm = dynamic_cast<MmBackward0*>(node.get());
    if (mm == nullptr || use.edge != 1) return {};
    fast.method = GradSampleMethod::Linear;
    fast.activation = unpacked(mm->self_, node);
    if (!fast.activation.defined() || fast.activation.size(0) % n != 0) return {};
    return fast;
  }
  if (name == "AddBackward0") {
    auto* add = dynamic_cast<AddBackward0*>(node.get());
    if (add == nullptr || use.transposed) return {};
    fast.method = GradSampleMethod::Bias;
    fast.scale = use.edge == 1 ? add->alpha.toDouble() : 1.0;
    return fast;  // the output gradient's shape is checked once captured
  }
  if (name == "EmbeddingBackward0") {
    auto* embedding = dynamic_cast<EmbeddingBackward0*>(node.get());
    if (embedding == nullptr || embedding->scale_grad_by_freq || embedding->sparse) return {};
    fast.indices = unpacked(embedding->indices_, node);
    if (!fast.indices.defined() || fast.indices.dim() < 1 || fast.indices.size(0) != n) return {};
    fast.method = GradSampleMethod::Embedding;
    fast.padding_idx = embedding->padding_idx.expect_int();
    return fast;
  }
  if (name == "NativeLayerNormBackward0") {
    auto* norm = dynamic_cast<NativeLayerNormBackward0*>(node.get());
    if (norm == nullptr || use.edge == 0) return {};
    fast.activation = unpacked(norm->input_, node);
    fast.mean = unpacked(norm->result1_, node);
    fast.rstd = unpacked(norm->result2_, node);
    fast.normalized_dims = static_cast<int64_t>(norm->normalized_shape.size());
    if (!fast.activation.defined() || fast.activation.dim() <= fast.normalized_dims ||
        fast.activation.size(0) != n) {
      return {};
    }
    fast.method = GradSampleMethod::LayerNorm;
    return fast;
  }
  if (name == "NativeGroupNormBackward0") {
    auto* norm = dynamic_cast<NativeGroupNormBackward0*>(node.get());
    if (norm == nullptr || use.edge == 0 || norm->N.expect_int() != n) return {};
    fast.activation = unpacked(norm->input_, node);
    fast.mean = unpacked(norm->result1_, node);
    fast.rstd = unpacked(norm->result2_, node);
    fast.groups = norm->group;
    if (!fast.activation.defined()) return {};
    fast.method = GradSampleMethod::GroupNorm;
    return fast;
  }
  return {};
}

}  // namespace bulwark::detail
