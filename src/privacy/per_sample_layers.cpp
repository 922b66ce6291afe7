// Per-sample gradients and norms of Linear, Conv1d/Conv2d, Embedding, LayerNorm, GroupNorm and
// broadcast-bias parameters, from the activation their consumer saved and its output gradient.
#include "privacy/per_sample_layers.h"

#include <torch/torch.h>

#include <optional>
#include <vector>

namespace bulwark::detail {
namespace {

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

}  // namespace

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

}  // namespace bulwark::detail
