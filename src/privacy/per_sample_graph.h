#pragma once
// Private: the autograd-graph side of per-sample gradients: where each trainable parameter is
// used, and whether its consumer is a layer whose per-sample gradients come from the activation
// it saved and its output gradient.

#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/function.h>

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bulwark/privacy/per_sample_gradients.h"

namespace bulwark::detail {

using torch::autograd::Node;
using NodePtr = c10::intrusive_ptr<Node>;

/// One use of a parameter: edge `edge` of `node` leads to it, directly or through a
/// `TBackward0` node (`transposed`).
struct Use {
  NodePtr node;
  size_t edge = 0;
  bool transposed = false;
  Node* transpose_node = nullptr;
};

/// What the graph walk found.
struct GraphInfo {
  std::vector<std::vector<Use>> uses;         // per trainable parameter
  std::unordered_map<Node*, int> consumers;   // incoming edges per node
};

/// Walks the graph from `root`, recording the uses of the parameters in `index` (their
/// position among `count`). @throws Error at a BatchNorm node.
GraphInfo walk_graph(const NodePtr& root,
                     const std::unordered_map<const c10::TensorImpl*, size_t>& index,
                     size_t count);

/// How one parameter's per-sample gradients come out of its consumer.
struct FastParameter {
  size_t parameter = 0;
  GradSampleMethod method = GradSampleMethod::Microbatch;
  NodePtr node;      // its output gradient is captured
  size_t edge = 0;
  bool transposed = false;
  // Saved by the node, unpacked before the backward pass releases them.
  at::Tensor activation;   // Linear: mat1; Conv, LayerNorm, GroupNorm: input
  at::Tensor indices;      // Embedding
  at::Tensor weight;       // Conv: the weight (for convolution_backward)
  at::Tensor mean, rstd;   // LayerNorm, GroupNorm
  double scale = 1.0;      // alpha / beta of addmm, alpha of add
  int64_t padding_idx = -1;
  int64_t groups = 1;
  std::vector<int64_t> stride, padding, dilation, output_padding;
  int64_t normalized_dims = 0;
};

/// Recognises a use; returns nullopt when the parameter needs the microbatch fallback.
std::optional<FastParameter> recognise(const Use& use, const at::Tensor& parameter, int64_t n);

}  // namespace bulwark::detail
