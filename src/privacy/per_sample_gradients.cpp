// Per-sample gradients from the autograd graph: each recognised parameter's per-sample gradient
// (or only its per-sample norm) is computed from the activation its consumer saved for backward
// and the gradient of that consumer's output, captured by one backward pass that stops at the
// parameters. Everything else goes through a microbatch loop.
#include "bulwark/privacy/per_sample_gradients.h"

#include <torch/csrc/autograd/engine.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>

#include "bulwark/ops/clip_accumulate.h"
#include "core/check.h"
#include "privacy/per_sample_graph.h"
#include "privacy/per_sample_layers.h"

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

using detail::contribution;
using detail::Contribution;
using detail::FastParameter;
using detail::Node;
using detail::recognise;
using detail::walk_graph;

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

}  // namespace bulwark
