// Per-sample gradients from the autograd graph: each recognised parameter's per-sample gradient
// (or only its per-sample norm) is computed from the activation its consumer saved for backward
// and the gradient of that consumer's output, captured by one backward pass that stops at the
// parameters. Everything else goes through a microbatch loop.
#include "bulwark/privacy/per_sample_gradients.h"

#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/generated/Functions.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "bulwark/ops/clip_accumulate.h"
#include "core/check.h"

namespace bulwark {

std::string to_string(GradSampleMethod method) {
  switch (method) {
    case GradSampleMethod::Linear: return "linear";
    case GradSampleMethod::Conv: return "conv";
    case GradSampleMethod::Embedding: return "embedding";
    case GradSampleMethod::LayerNorm: return "layer-norm";
    case GradSampleMethod::GroupNorm: return "group-norm";
    case GradSampleMethod::Bias: return "bias";
    case GradSampleMethod::Microbatch: return "microbatch";
    case GradSampleMethod::Unused: return "unused";
  }
  return "?";
}

ClippingMode parse_clipping(const std::string& text) {
  if (text == "flat") return ClippingMode::Flat;
  if (text == "per-layer") return ClippingMode::PerLayer;
  throw Error(fmt::format("unknown clipping mode '{}': expected 'flat' or 'per-layer'", text));
}

namespace {

using torch::autograd::Node;
using NodePtr = c10::intrusive_ptr<Node>;

std::vector<int64_t> ints(const std::vector<c10::SymInt>& values) {
  std::vector<int64_t> out;
  out.reserve(values.size());
  for (const auto& v : values) out.push_back(v.expect_int());
  return out;
}

bool is_batchnorm(const Node& node) {
  return node.name().find("BatchNorm") != std::string::npos;
}

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

/// A tensor the node saved, without its history (undefined if it saved none).
at::Tensor unpacked(const torch::autograd::SavedVariable& saved, const NodePtr& node) {
  const auto t = saved.unpack(node);
  return t.defined() ? t.detach() : t;
}

/// Recognises a use; returns nullopt when the parameter needs the microbatch fallback.
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

/// A parameter's per-sample contribution: either materialized [n, D] or, for ghost norms, its
/// per-sample squared norms and a function that forms Σᵢ cᵢ gᵢ directly.
struct Contribution {
  at::Tensor materialized;   // [n, D] or undefined
  at::Tensor squared_norms;  // [n]
  std::function<at::Tensor(const at::Tensor&)> weighted_sum;  // c [n] -> parameter shape
  bool ghost = false;
  bool valid = true;  // false: the captured gradient did not fit; use the microbatch loop
};

/// [n, rows/n, k] from a [rows, k] matrix whose rows are batch-major.
at::Tensor per_sample_rows(const at::Tensor& matrix, int64_t n) {
  return matrix.reshape({n, -1, matrix.size(-1)});
}

Contribution linear_weight(const FastParameter& fast, const at::Tensor& grad_out, int64_t n,
                           bool materialize) {
  Contribution out;
  const auto a = per_sample_rows(fast.activation, n);  // [n, T, k]
  const auto g = per_sample_rows(grad_out, n);         // [n, T, o]
  const int64_t t = a.size(1);
  const int64_t k = a.size(2);
  const int64_t o = g.size(2);
  const double scale = fast.scale;
  const bool transposed = fast.transposed;
  out.ghost = !materialize && t * (k + o) < k * o;
  if (out.ghost) {
    if (t == 1) {
      out.squared_norms = a.square().sum({1, 2}) * g.square().sum({1, 2}) * (scale * scale);
    } else {
      out.squared_norms =
          (at::bmm(a, a.transpose(1, 2)) * at::bmm(g, g.transpose(1, 2))).sum({1, 2}) *
          (scale * scale);
    }
    out.weighted_sum = [a, g, scale, transposed, n](const at::Tensor& c) {
      const auto weighted = (g * c.view({n, 1, 1})).reshape({-1, g.size(2)});
      const auto sum = at::mm(weighted.t(), a.reshape({-1, a.size(2)})) * scale;  // [o, k]
      return transposed ? sum : sum.t().contiguous();
    };
    return out;
  }
  auto per_sample = at::bmm(g.transpose(1, 2), a) * scale;  // [n, o, k]
  if (!transposed) per_sample = per_sample.transpose(1, 2);
  out.materialized = per_sample.reshape({n, -1});
  return out;
}

Contribution conv_weight(const FastParameter& fast, const at::Tensor& grad_out, int64_t n,
                         bool materialize) {
  Contribution out;
  const bool one_d = fast.activation.dim() == 3;
  const auto lift = [one_d](std::vector<int64_t> v, int64_t fill) {
    if (one_d) v.insert(v.begin(), fill);
    return v;
  };
  const auto input = one_d ? fast.activation.unsqueeze(2) : fast.activation;
  const auto& weight = fast.weight;
  const int64_t kh = one_d ? 1 : weight.size(2);
  const int64_t kw = weight.size(-1);
  const int64_t groups = fast.groups;
  const int64_t length = grad_out.numel() / (n * weight.size(0));  // output positions
  const int64_t p = weight.size(1) * kh * kw;                       // inputs per output
  const int64_t q = weight.size(0) / groups;
  out.ghost = !materialize && length * (p + q) < p * q;
  if (!out.ghost) {
    // The per-sample weight gradients are the weight gradient of one convolution over the
    // batch folded into groups (n · groups), which the convolution kernels compute faster than
    // an unfolded matrix product (Rochette et al. 2019): 3.7× on SmallCNN's 26×26 layer, and
    // still faster on its 10×10 and 8×8 layers, where im2col alone cost more than the
    // convolutions of the plain backward pass.
    const auto folded_input = input.reshape({1, n * input.size(1), input.size(2), input.size(3)});
    const auto grad_2d = one_d ? grad_out.unsqueeze(2) : grad_out;
    const auto folded_grad =
        grad_2d.reshape({1, n * grad_2d.size(1), grad_2d.size(2), grad_2d.size(3)});
    const auto shaped = (one_d ? weight.unsqueeze(2) : weight).repeat({n, 1, 1, 1});
    const auto grads = at::convolution_backward(
        folded_grad, folded_input, shaped, std::nullopt, lift(fast.stride, 1),
        lift(fast.padding, 0), lift(fast.dilation, 1), false, lift(fast.output_padding, 0),
        n * groups, {false, true, false});
    out.materialized = std::get<1>(grads).reshape({n, -1});
    return out;
  }
  // Ghost norm: ‖Σ_t g_t a_tᵀ‖² = Σ_{t,s} (a_t·a_s)(g_t·g_s) per sample and group, from the
  // unfolded input; the clipped sum is one weight-gradient pass with per-sample weights.
  const auto columns = at::im2col(input, {kh, kw}, lift(fast.dilation, 1),
                                  lift(fast.padding, 0), lift(fast.stride, 1));  // [n, Cin kk, L]
  const auto a = columns.view({n, groups, p, length});
  const auto g = grad_out.reshape({n, groups, q, length});
  out.squared_norms = (at::matmul(a.transpose(2, 3), a) * at::matmul(g.transpose(2, 3), g))
                          .sum({1, 2, 3});
  out.weighted_sum = [fast, grad_out, n](const at::Tensor& c) {
    std::vector<int64_t> shape(static_cast<size_t>(grad_out.dim()), 1);
    shape[0] = n;
    const auto weighted = grad_out * c.view(shape);
    const auto grads = at::convolution_backward(
        weighted, fast.activation, fast.weight, std::nullopt, fast.stride, fast.padding,
        fast.dilation, false, fast.output_padding, fast.groups, {false, true, false});
    return std::get<1>(grads);
  };
  return out;
}

Contribution embedding_weight(const FastParameter& fast, const at::Tensor& grad_out,
                              const at::Tensor& parameter, int64_t n, bool materialize) {
  Contribution out;
  const int64_t rows = parameter.size(0);
  const int64_t width = parameter.size(1);
  auto indices = fast.indices.reshape({n, -1});  // [n, T]
  auto g = grad_out.reshape({n, -1, width});      // [n, T, d]
  if (fast.padding_idx >= 0) {
    g = g * (indices != fast.padding_idx).unsqueeze(2).to(g.scalar_type());
  }
  if (materialize) {
    const auto offsets = indices + at::arange(n, indices.options()).unsqueeze(1) * rows;
    out.materialized = at::zeros({n * rows, width}, g.options())
                           .index_add_(0, offsets.reshape(-1), g.reshape({-1, width}))
                           .view({n, rows * width});
    return out;
  }
  out.ghost = true;
  const auto same = (indices.unsqueeze(2) == indices.unsqueeze(1)).to(g.scalar_type());
  out.squared_norms = (at::bmm(g, g.transpose(1, 2)) * same).sum({1, 2});
  out.weighted_sum = [indices, g, rows, width, n](const at::Tensor& c) {
    return at::zeros({rows, width}, g.options())
        .index_add_(0, indices.reshape(-1), (g * c.view({n, 1, 1})).reshape({-1, width}));
  };
  return out;
}

/// Per-sample sums of `values` [n, ...] over every dimension but the batch and the last
/// `keep` ones: [n, *trailing].
at::Tensor sum_middle(const at::Tensor& values, int64_t keep) {
  std::vector<int64_t> shape{values.size(0), -1};
  for (int64_t d = values.dim() - keep; d < values.dim(); ++d) shape.push_back(values.size(d));
  return values.reshape(shape).sum(1);
}

at::Tensor norm_parameter(const FastParameter& fast, const at::Tensor& grad_out, int64_t n) {
  const bool weight = fast.edge == 1;
  if (fast.method == GradSampleMethod::LayerNorm) {
    const auto x = fast.activation;
    const int64_t keep = fast.normalized_dims;
    if (!weight) return sum_middle(grad_out.reshape(x.sizes()).unsqueeze(1), keep);
    const auto normalized = (x - fast.mean) * fast.rstd;
    return sum_middle((grad_out.reshape(x.sizes()) * normalized).unsqueeze(1), keep);
  }
  const auto x = fast.activation.reshape({n, fast.groups, -1});
  const int64_t channels = fast.activation.size(1);
  const auto g = grad_out.reshape({n, channels, -1});
  if (!weight) return g.sum(2);
  const auto normalized = ((x - fast.mean.reshape({n, fast.groups, 1})) *
                           fast.rstd.reshape({n, fast.groups, 1}))
                              .reshape({n, channels, -1});
  return (g * normalized).sum(2);
}

std::optional<at::Tensor> bias_per_sample(const FastParameter& fast, const at::Tensor& grad_out,
                                          const at::Tensor& parameter, int64_t n) {
  if (fast.node->name() == "AddmmBackward0") return grad_out * fast.scale;
  // A broadcast add: the parameter must match the output gradient's trailing dimensions.
  const int64_t pd = parameter.dim();
  if (grad_out.dim() <= pd || grad_out.size(0) != n) return std::nullopt;
  for (int64_t d = 0; d < pd; ++d) {
    if (grad_out.size(grad_out.dim() - pd + d) != parameter.size(d)) return std::nullopt;
  }
  return sum_middle(grad_out.unsqueeze(1), pd) * fast.scale;
}

Contribution contribution(const FastParameter& fast, const at::Tensor& captured,
                          const at::Tensor& parameter, int64_t n, bool materialize) {
  // A consumer whose output does not reach the loss gets no gradient: zero.
  if (!captured.defined()) {
    Contribution zero;
    zero.materialized = at::zeros({n, parameter.numel()}, parameter.options());
    return zero;
  }
  switch (fast.method) {
    case GradSampleMethod::Linear: return linear_weight(fast, captured, n, materialize);
    case GradSampleMethod::Conv:
      if (fast.edge == 1) return conv_weight(fast, captured, n, materialize);
      return {captured.reshape({n, parameter.numel(), -1}).sum(2), {}, {}, false, true};
    case GradSampleMethod::Embedding:
      return embedding_weight(fast, captured, parameter, n, materialize);
    case GradSampleMethod::LayerNorm:
    case GradSampleMethod::GroupNorm:
      return {norm_parameter(fast, captured, n).reshape({n, -1}), {}, {}, false, true};
    case GradSampleMethod::Bias: {
      const auto per_sample = bias_per_sample(fast, captured, parameter, n);
      if (!per_sample) {
        Contribution invalid;
        invalid.valid = false;
        return invalid;
      }
      return {per_sample->reshape({n, -1}), {}, {}, false, true};
    }
    default: break;
  }
  Contribution invalid;
  invalid.valid = false;
  return invalid;
}

}  // namespace

struct PerSampleGradients::Pass {
  std::vector<Contribution> contributions;  // per trainable parameter
  at::Tensor losses;
};

PerSampleGradients::PerSampleGradients(Model model) : model_(std::move(model)) {
  reject_batchnorm(model_);
  std::vector<std::string> all_names;
  if (const auto module = model_.module()) {
    for (const auto& item : module->named_parameters()) all_names.push_back(item.key());
  }
  const auto all = model_.parameters();
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].requires_grad()) continue;
    parameters_.push_back(all[i]);
    names_.push_back(all_names.size() == all.size() ? all_names[i]
                                                    : fmt::format("parameter {}", i));
  }
  BULWARK_CHECK(!parameters_.empty(),
                "per-sample gradients: the model '{}' has no trainable parameters",
                model_.name());
}

PerSampleGradients::Pass PerSampleGradients::run(int64_t n, const PerSampleLossFn& losses,
                                                 bool materialize) {
  BULWARK_CHECK(n >= 1, "per-sample gradients: the batch must hold at least one sample, got {}",
                n);
  BULWARK_CHECK(static_cast<bool>(losses), "per-sample gradients: the loss function is empty");
  const auto check_losses = [&](const at::Tensor& l, int64_t count) {
    BULWARK_CHECK(l.defined() && l.dim() == 1 && l.size(0) == count,
                  "per-sample gradients: the loss function must return one loss per sample "
                  "[{}], got {}",
                  count, l.defined() ? detail::shape_string(l) : "an undefined tensor");
    BULWARK_CHECK(l.is_floating_point(),
                  "per-sample gradients: the losses must be floating point, got {}",
                  detail::dtype_string(l));
    detail::check_finite("per-sample gradients", "losses", l.detach());
  };

  const auto batch_losses = losses(0, n);
  check_losses(batch_losses, n);
  Pass pass;
  pass.losses = batch_losses.detach();
  pass.contributions.resize(parameters_.size());
  handling_.assign(parameters_.size(), {});
  for (size_t p = 0; p < parameters_.size(); ++p) {
    handling_[p].name = names_[p];
    handling_[p].shape = parameters_[p].sizes().vec();
  }
  const auto total = batch_losses.sum();
  BULWARK_CHECK(total.requires_grad(),
                "per-sample gradients: the losses do not depend on any trainable parameter");

  std::unordered_map<const c10::TensorImpl*, size_t> index;
  for (size_t p = 0; p < parameters_.size(); ++p) {
    index[parameters_[p].unsafeGetTensorImpl()] = p;
  }
  const auto graph = walk_graph(total.grad_fn(), index, parameters_.size());

  std::vector<std::optional<FastParameter>> fast(parameters_.size());
  std::vector<size_t> microbatch;
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const auto& uses = graph.uses[p];
    auto& handling = handling_[p];
    if (uses.empty()) {
      handling.method = GradSampleMethod::Unused;
      pass.contributions[p].materialized = at::zeros({n, parameters_[p].numel()},
                                                     parameters_[p].options());
      continue;
    }
    handling.node = uses.front().node->name();
    const bool single = uses.size() == 1 &&
                        (!uses.front().transposed ||
                         graph.consumers.at(uses.front().transpose_node) == 1);
    if (single) fast[p] = recognise(uses.front(), parameters_[p], n);
    if (fast[p]) {
      handling.method = fast[p]->method;
    } else {
      handling.method = GradSampleMethod::Microbatch;
      microbatch.push_back(p);
    }
  }

  // One backward pass that captures the recognised consumers' output gradients and computes
  // no parameter gradient.
  torch::autograd::edge_list captures;
  std::map<std::pair<Node*, uint32_t>, size_t> capture_index;
  for (const auto& f : fast) {
    if (!f) continue;
    const auto key = std::make_pair(f->node.get(), uint32_t{0});
    if (capture_index.emplace(key, captures.size()).second) {
      captures.emplace_back(f->node, 0);
    }
  }
  torch::autograd::variable_list captured;
  if (!captures.empty()) {
    captured = torch::autograd::Engine::get_default_engine().execute(
        {torch::autograd::impl::gradient_edge(total)}, {at::ones_like(total)},
        /*keep_graph=*/false, /*create_graph=*/false, /*accumulate_grad=*/false, captures);
  }
  // What follows only measures gradients: no graph may grow from it (a norm that kept the
  // activations' history would chain every step's graph to the next through `.grad()`).
  torch::NoGradGuard no_grad;
  for (size_t p = 0; p < parameters_.size(); ++p) {
    if (!fast[p]) continue;
    const auto& grad = captured[capture_index.at({fast[p]->node.get(), 0})];
    auto c = contribution(*fast[p], grad, parameters_[p], n, materialize);
    if (!c.valid) {
      handling_[p].method = GradSampleMethod::Microbatch;
      microbatch.push_back(p);
      continue;
    }
    handling_[p].ghost_norm = c.ghost;
    pass.contributions[p] = std::move(c);
  }

  if (!microbatch.empty()) {
    torch::AutoGradMode enable_grad(true);
    std::vector<at::Tensor> targets;
    for (const auto p : microbatch) targets.push_back(parameters_[p]);
    std::vector<std::vector<at::Tensor>> rows(microbatch.size());
    for (int64_t i = 0; i < n; ++i) {
      const auto loss = losses(i, i + 1);
      check_losses(loss, 1);
      const auto grads = torch::autograd::grad({loss.sum()}, targets, {}, false, false, true);
      for (size_t j = 0; j < microbatch.size(); ++j) {
        rows[j].push_back(grads[j].defined() ? grads[j].detach().reshape(-1)
                                             : at::zeros({targets[j].numel()},
                                                         targets[j].options()));
      }
    }
    for (size_t j = 0; j < microbatch.size(); ++j) {
      pass.contributions[microbatch[j]] = {at::stack(rows[j]), {}, {}, false, true};
    }
  }
  for (auto& c : pass.contributions) {
    if (c.materialized.defined()) {
      c.materialized = c.materialized.detach();
      c.squared_norms = c.materialized.square().sum(1);
    }
  }
  return pass;
}

std::vector<at::Tensor> PerSampleGradients::compute(int64_t n, const PerSampleLossFn& losses) {
  auto pass = run(n, losses, /*materialize=*/true);
  std::vector<at::Tensor> out;
  for (size_t p = 0; p < parameters_.size(); ++p) {
    auto shape = parameters_[p].sizes().vec();
    shape.insert(shape.begin(), n);
    out.push_back(pass.contributions[p].materialized.view(shape));
  }
  return out;
}

ClippedGradientSum PerSampleGradients::clipped_sum(int64_t n, const PerSampleLossFn& losses,
                                                   double max_grad_norm, ClippingMode mode) {
  BULWARK_CHECK(std::isfinite(max_grad_norm) && max_grad_norm > 0,
                "per-sample gradients: max_grad_norm must be a positive number, got {}",
                max_grad_norm);
  auto pass = run(n, losses, /*materialize=*/false);
  torch::NoGradGuard no_grad;
  ClippedGradientSum out;
  out.losses = pass.losses;
  auto squared = at::zeros({n}, parameters_.front().options());
  for (const auto& c : pass.contributions) squared = squared + c.squared_norms;
  out.norms = squared.sqrt();
  const double layer_norm = mode == ClippingMode::Flat
                                ? max_grad_norm
                                : max_grad_norm / std::sqrt(static_cast<double>(
                                                      parameters_.size()));
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const auto& c = pass.contributions[p];
    const auto norms = mode == ClippingMode::Flat ? out.norms : c.squared_norms.sqrt();
    at::Tensor sum;
    if (c.ghost) {
      const auto factors = (layer_norm / (norms + ops::kClipStabilizer)).clamp_max(1.0);
      sum = c.weighted_sum(factors);
    } else {
      sum = std::get<0>(ops::clip_accumulate(c.materialized, norms, layer_norm));
    }
    out.sum.push_back(sum.reshape(parameters_[p].sizes()));
  }
  return out;
}

std::string PerSampleGradients::summary() const {
  std::string text = fmt::format("{:<36} {:<18} {:<12} {:<6} {}\n", "parameter", "shape",
                                 "method", "ghost", "autograd node");
  for (const auto& h : handling_) {
    text += fmt::format("{:<36} {:<18} {:<12} {:<6} {}\n", h.name,
                        fmt::format("[{}]", fmt::join(h.shape, ", ")), to_string(h.method),
                        h.ghost_norm ? "yes" : "no", h.node.empty() ? "-" : h.node);
  }
  return text;
}

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
