#include "bulwark/privacy/per_sample_gradients.h"

#include <torch/torch.h>

#include "bulwark/ops/clip_accumulate.h"
#include "test_util.h"

namespace bulwark {
namespace {

using testing::SeededTest;
class PerSampleGradientsTest : public SeededTest {};

namespace nn = torch::nn;

PerSampleLossFn cross_entropy_losses(Model model, at::Tensor x, at::Tensor y) {
  return [model, x, y](int64_t begin, int64_t end) {
    return torch::nn::functional::cross_entropy(
        model(x.slice(0, begin, end)), y.slice(0, begin, end),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  };
}

/// The reference: one backward pass per sample.
std::vector<at::Tensor> loop_gradients(const std::vector<at::Tensor>& parameters,
                                       const PerSampleLossFn& losses, int64_t n) {
  std::vector<std::vector<at::Tensor>> rows(parameters.size());
  for (int64_t i = 0; i < n; ++i) {
    const auto grads =
        torch::autograd::grad({losses(i, i + 1).sum()}, parameters, {}, false, false, true);
    for (size_t p = 0; p < parameters.size(); ++p) {
      rows[p].push_back(grads[p].defined() ? grads[p] : torch::zeros_like(parameters[p]));
    }
  }
  std::vector<at::Tensor> out;
  for (auto& r : rows) out.push_back(torch::stack(r));
  return out;
}

/// Per-sample gradients, and both clipped sums, equal the loop's to 1e-6 relative (double).
void expect_matches_loop(Model model, const at::Tensor& x, const at::Tensor& y,
                         const std::map<std::string, GradSampleMethod>& expected_methods,
                         bool expect_some_ghost) {
  const int64_t n = x.size(0);
  const auto losses = cross_entropy_losses(model, x, y);
  PerSampleGradients engine(model);
  const auto reference = loop_gradients(engine.parameters(), losses, n);
  const auto computed = engine.compute(n, losses);
  ASSERT_EQ(computed.size(), reference.size());
  for (size_t p = 0; p < reference.size(); ++p) {
    const auto& name = engine.handling()[p].name;
    ASSERT_EQ(computed[p].sizes(), reference[p].sizes()) << name;
    const double scale = reference[p].abs().max().item<double>() + 1e-30;
    EXPECT_LT((computed[p] - reference[p]).abs().max().item<double>() / scale, 1e-6)
        << name << " handled as " << to_string(engine.handling()[p].method) << "\n"
        << engine.summary();
  }
  for (const auto& [name, method] : expected_methods) {
    bool found = false;
    for (const auto& h : engine.handling()) {
      if (h.name != name) continue;
      found = true;
      EXPECT_EQ(to_string(h.method), to_string(method)) << name << "\n" << engine.summary();
    }
    EXPECT_TRUE(found) << name << " not in\n" << engine.summary();
  }

  // Clipped sums against clipping the loop's gradients by hand.
  auto squared = torch::zeros({n}, x.options().dtype(torch::kDouble));
  for (const auto& r : reference) squared += r.reshape({n, -1}).square().sum(1);
  const auto norms = squared.sqrt();
  const double c = norms.median().item<double>();  // about half the samples get clipped
  for (const auto mode : {ClippingMode::Flat, ClippingMode::PerLayer}) {
    const auto result = engine.clipped_sum(n, losses, c, mode);
    EXPECT_TRUE(torch::allclose(result.norms, norms, 1e-6, 1e-12));
    // Nothing keeps the model's graph alive (it would chain one step's graph to the next).
    EXPECT_FALSE(result.norms.requires_grad());
    for (const auto& t : result.sum) EXPECT_FALSE(t.requires_grad());
    const double layer_c =
        mode == ClippingMode::Flat ? c : c / std::sqrt(double(reference.size()));
    auto clipped_total = torch::zeros({n}, norms.options());
    for (size_t p = 0; p < reference.size(); ++p) {
      const auto rows = reference[p].reshape({n, -1});
      const auto used = mode == ClippingMode::Flat ? norms : rows.norm(2, {1});
      const auto factors = (layer_c / (used + ops::kClipStabilizer)).clamp_max(1.0);
      const auto expected = (rows * factors.unsqueeze(1)).sum(0).view(engine.parameters()[p].sizes());
      const double scale = expected.abs().max().item<double>() + 1e-30;
      EXPECT_LT((result.sum[p] - expected).abs().max().item<double>() / scale, 1e-6)
          << engine.handling()[p].name << (mode == ClippingMode::Flat ? " flat" : " per-layer");
      clipped_total += (rows * factors.unsqueeze(1)).square().sum(1);
    }
    // No sample's clipped gradient exceeds C.
    EXPECT_LE(clipped_total.sqrt().max().item<double>(), c * (1 + 1e-9));
  }
  bool ghost = false;
  for (const auto& h : engine.handling()) ghost = ghost || h.ghost_norm;
  EXPECT_EQ(ghost, expect_some_ghost) << engine.summary();
}

TEST_F(PerSampleGradientsTest, Conv2dWithStridePaddingDilationGroupsGroupNormAndLinear) {
  nn::Sequential net(
      nn::Conv2d(nn::Conv2dOptions(4, 6, 3).stride(2).padding(1).dilation(2).groups(2)),
      nn::GroupNorm(3, 6), nn::ReLU(),
      // 6 → 32 channels on a 4×4 map: the Gram matrices are cheaper (ghost norm).
      nn::Conv2d(nn::Conv2dOptions(6, 32, 3).padding(1)), nn::Tanh(),
      nn::Conv2d(nn::Conv2dOptions(32, 8, 2).stride(1).bias(false)), nn::Flatten(),
      nn::Linear(8 * 3 * 3, 5));
  net->to(torch::kDouble);
  const auto x = torch::randn({7, 4, 10, 9}, torch::kDouble);
  const auto y = torch::randint(0, 5, {7});
  expect_matches_loop(Model(net), x, y,
                      {{"0.weight", GradSampleMethod::Conv},
                       {"0.bias", GradSampleMethod::Conv},
                       {"1.weight", GradSampleMethod::GroupNorm},
                       {"1.bias", GradSampleMethod::GroupNorm},
                       {"3.weight", GradSampleMethod::Conv},
                       {"7.weight", GradSampleMethod::Linear},
                       {"7.bias", GradSampleMethod::Bias}},
                      true);
}

TEST_F(PerSampleGradientsTest, Conv2dOnLargeMapsWithStridePaddingDilationGroups) {
  // 7 × 7 output positions, more than the 9 inputs per output: the folded-batch path.
  nn::Sequential net(
      nn::Conv2d(nn::Conv2dOptions(2, 4, 3).stride(2).padding(1).dilation(2).groups(2)),
      nn::Tanh(), nn::Flatten(), nn::Linear(4 * 7 * 7, 3));
  net->to(torch::kDouble);
  const auto x = torch::randn({4, 2, 16, 15}, torch::kDouble);
  const auto y = torch::randint(0, 3, {4});
  expect_matches_loop(Model(net), x, y,
                      {{"0.weight", GradSampleMethod::Conv}, {"0.bias", GradSampleMethod::Conv}},
                      true);  // the Linear's norm is a ghost norm
}

TEST_F(PerSampleGradientsTest, Conv1dWithGroupsAndDilationAndAMaterializedLinear) {
  nn::Sequential net(
      nn::Conv1d(nn::Conv1dOptions(4, 6, 3).stride(2).padding(2).dilation(2).groups(2)),
      nn::ReLU(), nn::Conv1d(nn::Conv1dOptions(6, 3, 1)), nn::Flatten(), nn::Linear(3 * 10, 3));
  net->to(torch::kDouble);
  // Length 20: 10 output positions, more than the 6 inputs per output (the folded-batch path).
  const auto x = torch::randn({5, 4, 20}, torch::kDouble);
  const auto y = torch::randint(0, 3, {5});
  expect_matches_loop(Model(net), x, y,
                      {{"0.weight", GradSampleMethod::Conv},
                       {"2.weight", GradSampleMethod::Conv},
                       {"4.weight", GradSampleMethod::Linear}},
                      true);
}

struct TextNetImpl : nn::Module {
  TextNetImpl()
      : embedding(register_module(
            "embedding", nn::Embedding(nn::EmbeddingOptions(20, 6).padding_idx(0)))),
        norm(register_module("norm", nn::LayerNorm(nn::LayerNormOptions({6})))),
        wide(register_module("wide", nn::Linear(6, 16))),
        narrow(register_module("narrow", nn::Linear(16, 2))),
        head(register_module("head", nn::Linear(2, 3))) {}
  at::Tensor forward(const at::Tensor& tokens) {
    // Linear layers on [N, T, features]: a matrix product over N·T rows plus a broadcast bias.
    auto h = norm(embedding(tokens));
    h = narrow(torch::tanh(wide(h)));  // wide: 4·(6+16) < 6·16, ghost; narrow: 4·(16+2) > 16·2, materialized
    return head(h.mean(1));
  }
  nn::Embedding embedding;
  nn::LayerNorm norm;
  nn::Linear wide, narrow, head;
};
TORCH_MODULE(TextNet);

TEST_F(PerSampleGradientsTest, EmbeddingWithPaddingLayerNormAndLinearOnSequences) {
  TextNet net;
  net->to(torch::kDouble);
  auto tokens = torch::randint(0, 20, {6, 4});
  tokens[0][1] = 0;  // padding: no gradient for row 0
  tokens[1][0] = tokens[1][2] = 7;  // a repeated token: the ghost norm's cross terms
  const auto y = torch::randint(0, 3, {6});
  expect_matches_loop(Model(net), tokens, y,
                      {{"embedding.weight", GradSampleMethod::Embedding},
                       {"norm.weight", GradSampleMethod::LayerNorm},
                       {"norm.bias", GradSampleMethod::LayerNorm},
                       {"wide.weight", GradSampleMethod::Linear},
                       {"wide.bias", GradSampleMethod::Bias},
                       {"narrow.weight", GradSampleMethod::Linear},
                       {"head.weight", GradSampleMethod::Linear}},
                      true);
}

struct TiedNetImpl : nn::Module {
  TiedNetImpl()
      : shared(register_module("shared", nn::Linear(5, 5))),
        prelu(register_module("prelu", nn::PReLU())),
        head(register_module("head", nn::Linear(5, 2))) {}
  at::Tensor forward(const at::Tensor& x) { return head(shared(prelu(shared(x)))); }
  nn::Linear shared;
  nn::PReLU prelu;
  nn::Linear head;
};
TORCH_MODULE(TiedNet);

TEST_F(PerSampleGradientsTest, SharedWeightsAndUnknownLayersFallBackToMicrobatches) {
  TiedNet net;
  net->to(torch::kDouble);
  const auto x = torch::randn({4, 5}, torch::kDouble);
  const auto y = torch::randint(0, 2, {4});
  expect_matches_loop(Model(net), x, y,
                      {{"shared.weight", GradSampleMethod::Microbatch},
                       {"shared.bias", GradSampleMethod::Microbatch},
                       {"prelu.weight", GradSampleMethod::Microbatch},
                       {"head.weight", GradSampleMethod::Linear}},
                      true);
}

TEST_F(PerSampleGradientsTest, FunctionModelsAndUnusedParametersWork) {
  // A weight used as [in, out] directly (no transpose node) and a parameter the loss ignores.
  const auto w = torch::randn({3, 4}, torch::kDouble).requires_grad_();
  const auto unused = torch::randn({2}, torch::kDouble).requires_grad_();
  const auto model = Model::from_function(
      [w](const at::Tensor& x) { return torch::mm(x, w); }, {w, unused});
  const auto x = torch::randn({5, 3}, torch::kDouble);
  const auto y = torch::randint(0, 4, {5});
  expect_matches_loop(model, x, y,
                      {{"parameter 0", GradSampleMethod::Linear},
                       {"parameter 1", GradSampleMethod::Unused}},
                      true);  // t (k + o) = 7 < k o = 12: ghost norm
}

TEST_F(PerSampleGradientsTest, BatchNormIsRejectedAndReplaceBatchnormFixesIt) {
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 12, 3)), nn::BatchNorm2d(12), nn::ReLU(),
                     nn::Flatten(), nn::BatchNorm1d(12 * 16), nn::Linear(12 * 16, 3));
  EXPECT_BULWARK_ERROR(PerSampleGradients{Model(net)}, "batch normalization", "GroupNorm",
                       "replace_batchnorm");
  // A model whose BatchNorm hides in a function is caught in the graph.
  const auto weight = torch::ones({2}).requires_grad_();
  const auto hidden = Model::from_function(
      [weight](const at::Tensor& x) {
        return torch::batch_norm(x, weight, {}, {}, {}, true, 0.1, 1e-5, false);
      },
      {weight});
  PerSampleGradients engine(hidden);
  const auto x = torch::randn({4, 2});
  EXPECT_BULWARK_ERROR(engine.compute(4, cross_entropy_losses(hidden, x, torch::zeros({4}, torch::kLong))),
                       "batch normalization", "GroupNorm");

  auto fixed = replace_batchnorm(net, 8);
  const auto groups = fixed->ptr<nn::GroupNormImpl>(1);
  ASSERT_NE(groups, nullptr);
  EXPECT_EQ(groups->options.num_groups(), 6);  // the largest divisor of 12 not above 8
  EXPECT_EQ(groups->options.num_channels(), 12);
  EXPECT_NE(fixed->ptr<nn::GroupNormImpl>(4), nullptr);
  // Shared, not copied: the convolution is the same module.
  EXPECT_EQ(fixed->ptr(0).get(), net->ptr(0).get());
  fixed->to(torch::kDouble);
  expect_matches_loop(Model(fixed), torch::randn({3, 1, 6, 6}, torch::kDouble),
                      torch::randint(0, 3, {3}), {{"1.weight", GradSampleMethod::GroupNorm}},
                      true);
  EXPECT_BULWARK_ERROR(replace_batchnorm(net, 0), "groups");
}

TEST_F(PerSampleGradientsTest, BadInputIsRejected) {
  nn::Linear linear(3, 2);
  const Model model(linear);
  PerSampleGradients engine(model);
  const auto x = torch::randn({4, 3});
  const auto losses = cross_entropy_losses(model, x, torch::zeros({4}, torch::kLong));
  EXPECT_BULWARK_ERROR(engine.compute(0, losses), "at least one sample");
  EXPECT_BULWARK_ERROR(engine.clipped_sum(4, losses, 0.0), "max_grad_norm", "positive");
  EXPECT_BULWARK_ERROR(engine.clipped_sum(4, losses, -1.0), "max_grad_norm");
  EXPECT_BULWARK_ERROR(engine.compute(4, [&](int64_t b, int64_t e) { return losses(b, e).sum(); }),
                       "one loss per sample");
  EXPECT_BULWARK_ERROR(engine.compute(4,
                                      [&](int64_t b, int64_t e) {
                                        return losses(b, e) * std::numeric_limits<float>::quiet_NaN();
                                      }),
                       "NaN");
  EXPECT_BULWARK_ERROR(parse_clipping("layer"), "flat", "per-layer");
  for (auto& p : linear->parameters()) p.requires_grad_(false);
  EXPECT_BULWARK_ERROR(PerSampleGradients{model}, "no trainable parameters");
}

}  // namespace
}  // namespace bulwark
