#pragma once
/// @file
/// Per-sample gradients and their clipped sum, the core of DP-SGD (Abadi et al. 2016), computed
/// from each layer's activations and output gradients in one backward pass.

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bulwark/core/model.h"

namespace bulwark {

/// How a parameter's per-sample gradients are obtained.
enum class GradSampleMethod {
  Linear,      ///< weight or bias of a matrix product (`torch::nn::Linear`, any leading dims)
  Conv,        ///< weight or bias of a 1-D or 2-D convolution (stride, padding, dilation, groups)
  Embedding,   ///< rows of an embedding table
  LayerNorm,   ///< affine parameters of a layer norm
  GroupNorm,   ///< affine parameters of a group norm
  Bias,        ///< a parameter added with broadcasting (e.g. the bias of a 3-D `Linear` input)
  Microbatch,  ///< anything else: one backward pass per sample (correct, slower)
  Unused,      ///< not reached by the loss: its gradient is zero
};
std::string to_string(GradSampleMethod method);

/// How one trainable parameter is handled, as found in the model's autograd graph.
struct ParameterHandling {
  std::string name;             ///< from `named_parameters()`, or "parameter i"
  std::vector<int64_t> shape;
  GradSampleMethod method = GradSampleMethod::Unused;
  std::string node;             ///< the autograd node that consumes it ("ConvolutionBackward0")
  /// Its per-sample norm comes from activation and gradient Gram matrices without forming the
  /// per-sample gradients ("ghost clipping", Li et al. 2022), chosen when that is cheaper
  /// (Bu et al. 2023's mixed rule).
  bool ghost_norm = false;
};

/// Clipping of per-sample gradients: `Flat` scales each sample's whole gradient to norm
/// <= C; `PerLayer` clips each parameter's gradient to C / √P (P trainable parameters), so the
/// whole gradient still has norm <= C (Opacus' per-layer mode with an equal split).
enum class ClippingMode { Flat, PerLayer };
/// "flat" or "per-layer". @throws Error otherwise.
ClippingMode parse_clipping(const std::string& text);

/// Per-sample losses of rows [begin, end) of the batch, shape [end − begin], computed by a
/// fresh forward pass of the model. Called once for the whole batch and, when a parameter
/// needs the microbatch fallback, once per sample.
using PerSampleLossFn = std::function<at::Tensor(int64_t begin, int64_t end)>;

/// The clipped sum over a batch.
struct ClippedGradientSum {
  /// Σᵢ clipᵢ(gᵢ), one tensor per trainable parameter (the order of `parameters()`).
  std::vector<at::Tensor> sum;
  /// Per-sample gradient norms before clipping [N] (the whole gradient, for either mode).
  at::Tensor norms;
  /// The per-sample losses of the batch [N], detached.
  at::Tensor losses;
};

/// Per-sample gradients of a model's trainable parameters, without a loop over samples for
/// Linear, Conv1d/Conv2d, Embedding, LayerNorm, GroupNorm and broadcast biases: each is computed
/// from the layer's input (saved by autograd) and its output gradient, captured in one backward
/// pass that computes no parameter gradient at all. Found by walking the autograd graph, so it
/// works for any `Model` — custom `forward`s, `Model::composite`, TorchScript — and reports how
/// it handled each parameter; parameters it does not recognise get a correct microbatch
/// fallback.
///
/// The clipped sum follows Bu et al. 2023's book-keeping: per-sample norms first (ghost norms
/// where cheaper), then the sum of clipped gradients by one weighted product per layer.
class PerSampleGradients {
 public:
  /// @throws Error when the model has no trainable parameters or contains BatchNorm (it mixes
  /// samples: use GroupNorm, see replace_batchnorm()).
  explicit PerSampleGradients(Model model);

  /// Every trainable parameter's per-sample gradients [N, *shape] of `losses(0, n)`.
  /// @throws Error when n < 1, the losses are not [n] or not finite, or the graph holds a
  /// BatchNorm node.
  std::vector<at::Tensor> compute(int64_t n, const PerSampleLossFn& losses);

  /// Σᵢ of the per-sample gradients clipped to `max_grad_norm`, without forming per-sample
  /// gradients where the layer allows it. @throws Error as compute(), or when
  /// max_grad_norm <= 0.
  ClippedGradientSum clipped_sum(int64_t n, const PerSampleLossFn& losses, double max_grad_norm,
                                 ClippingMode mode = ClippingMode::Flat);

  /// How each trainable parameter was handled in the last call (empty before).
  const std::vector<ParameterHandling>& handling() const { return handling_; }
  /// The same as a table, one line per parameter.
  std::string summary() const;

  /// The trainable parameters, in the order of the results.
  const std::vector<at::Tensor>& parameters() const { return parameters_; }

 private:
  struct Pass;
  Pass run(int64_t n, const PerSampleLossFn& losses, bool materialize);

  Model model_;
  std::vector<at::Tensor> parameters_;
  std::vector<std::string> names_;
  std::vector<ParameterHandling> handling_;
};

/// A copy of `sequential` with every BatchNorm1d/2d replaced by a GroupNorm over the same
/// channels (the largest group count <= `groups` that divides them); other modules are shared,
/// not copied. @throws Error when groups < 1.
torch::nn::Sequential replace_batchnorm(const torch::nn::Sequential& sequential,
                                        int64_t groups = 32);

/// Throws Error naming the first BatchNorm module of `model` (searched through
/// `Model::module()`'s tree; TorchScript models are checked in the autograd graph instead).
void reject_batchnorm(const Model& model);

}  // namespace bulwark
