#pragma once
// Small models with known optima for the attack tests.

#include <torch/torch.h>

#include "bulwark/core/model.h"

namespace bulwark::testing {

/// logits = x.flatten(1) @ weight.T + bias, as a Model with its parameters.
struct LinearModel {
  at::Tensor weight, bias;
  Model model;
  LinearModel(at::Tensor w, at::Tensor b)
      : weight(w.requires_grad_(true)),
        bias(b.requires_grad_(true)),
        model(Model::from_function(
            [w = weight, b = bias](const at::Tensor& x) {
              return torch::addmm(b, x.flatten(1), w.t());
            },
            {weight, bias}, "linear")) {}
};

}  // namespace bulwark::testing
