#pragma once
// Small models with known optima for the attack tests.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "bulwark/attacks/attack.h"
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

// Asserts every invariant an attack result must satisfy.
inline void expect_valid(const AttackResult& r, const at::Tensor& x, double eps, Norm norm) {
  ASSERT_EQ(r.adversarial.sizes(), x.sizes());
  EXPECT_GE(r.adversarial.min().item<double>(), 0.0);
  EXPECT_LE(r.adversarial.max().item<double>(), 1.0);
  const auto delta = (r.adversarial - x).to(torch::kDouble);
  EXPECT_LE(per_sample_norm(delta, norm).max().item<double>(), eps * (1 + 1e-6) + 1e-7);
  EXPECT_TRUE(torch::allclose(r.linf, per_sample_norm(delta, Norm::Linf)));
  EXPECT_TRUE(torch::allclose(r.l2, per_sample_norm(delta, Norm::L2)));
  EXPECT_EQ(r.success.scalar_type(), torch::kBool);
}

}  // namespace bulwark::testing
