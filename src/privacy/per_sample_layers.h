#pragma once
// Private: the per-layer math of per-sample gradients: from a recognised consumer's saved
// activation and captured output gradient, each sample's gradient or only its norm (ghost
// norms, Li et al. 2022; Bu et al. 2023).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "privacy/per_sample_graph.h"

namespace bulwark::detail {

/// A parameter's per-sample contribution: either materialized [n, D] or, for ghost norms, its
/// per-sample squared norms and a function that forms Σᵢ cᵢ gᵢ directly.
struct Contribution {
  at::Tensor materialized;   // [n, D] or undefined
  at::Tensor squared_norms;  // [n]
  std::function<at::Tensor(const at::Tensor&)> weighted_sum;  // c [n] -> parameter shape
  bool ghost = false;
  bool valid = true;  // false: the captured gradient did not fit; use the microbatch loop
};

/// The per-sample contribution of the parameter `fast` describes, from its consumer's captured
/// output gradient (undefined when that output does not reach the loss: zero); materialized
/// [n, D] when `materialize`, else by ghost norm where that is cheaper.
Contribution contribution(const FastParameter& fast, const at::Tensor& captured,
                          const at::Tensor& parameter, int64_t n, bool materialize);

}  // namespace bulwark::detail
