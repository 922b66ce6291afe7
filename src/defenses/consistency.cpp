#include "bulwark/defenses/consistency.h"

#include <torch/torch.h>

#include <cmath>

#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

void ConsistencyOptions::validate() const {
  BULWARK_CHECK(sigma_ > 0 && std::isfinite(sigma_),
                "consistency: sigma must be finite and > 0, got {}", sigma_);
  BULWARK_CHECK(samples_ >= 1, "consistency: samples must be >= 1, got {}", samples_);
  BULWARK_CHECK(adaptive_samples_ >= 1, "consistency: adaptive_samples must be >= 1, got {}",
                adaptive_samples_);
}

ConsistencyCheck::ConsistencyCheck(Model model, ConsistencyOptions options)
    : model_(std::move(model)), options_(options) {
  options_.validate();
  generator_ = make_generator(options_.seed(), model_.device());
}

// x [N, ...] → [copies · N, ...], copy-major: rows j·N … j·N + N − 1 are the j-th copies.
at::Tensor ConsistencyCheck::noisy(const at::Tensor& x, int64_t copies) {
  auto shape = x.sizes().vec();
  shape.insert(shape.begin(), copies);
  const auto noise =
      at::normal(0.0, options_.sigma(), shape, generator_, x.options()).flatten(0, 1);
  auto out = x.unsqueeze(0).expand(shape).flatten(0, 1) + noise;
  return options_.clamp() ? options_.box().clamp(out) : out;
}

at::Tensor ConsistencyCheck::agreement(const at::Tensor& x) {
  BULWARK_CHECK(x.defined() && x.dim() >= 2, "consistency: x must be a batch [N, ...], got {}",
                x.defined() ? detail::shape_string(x) : "undefined");
  detail::check_finite("consistency", "x", x);
  EvalModeGuard guard(model_);
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  const auto predicted = model_.forward(x).argmax(1);
  auto agree = at::zeros({n}, x.options().dtype(at::kDouble));
  // Bounded memory: at most 256 noisy inputs per forward pass.
  const int64_t per_pass = std::max<int64_t>(1, 256 / std::max<int64_t>(1, n));
  for (int64_t done = 0; done < options_.samples(); done += per_pass) {
    const int64_t copies = std::min(per_pass, options_.samples() - done);
    const auto labels = model_.forward(noisy(x, copies)).argmax(1).view({copies, n});
    agree += (labels == predicted.unsqueeze(0)).sum(0).to(at::kDouble);
  }
  return (agree / static_cast<double>(options_.samples())).cpu();
}

at::Tensor ConsistencyCheck::score(const at::Tensor& x) { return 1.0 - agreement(x); }

at::Tensor ConsistencyCheck::adaptive_score(const at::Tensor& x) {
  const int64_t n = x.size(0);
  const int64_t copies = options_.adaptive_samples();
  const auto clean = model_.forward(x).softmax(1);
  // The noise does not depend on x, so the gradient flows through x + noise.
  const auto noisy_probabilities = model_.forward(noisy(x, copies)).softmax(1).view({copies, n, -1});
  return 0.5 * (noisy_probabilities - clean.unsqueeze(0)).abs().sum(2).mean(0);
}

}  // namespace bulwark
