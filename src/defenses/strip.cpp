#include "bulwark/defenses/strip.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "bulwark/core/seed.h"
#include "core/check.h"

namespace bulwark {

void StripOptions::validate() const {
  BULWARK_CHECK(overlays_ >= 1, "strip: overlays must be >= 1, got {}", overlays_);
  BULWARK_CHECK(adaptive_overlays_ >= 1, "strip: adaptive_overlays must be >= 1, got {}",
                adaptive_overlays_);
  BULWARK_CHECK(batch_size_ >= 1, "strip: batch_size must be >= 1, got {}", batch_size_);
  BULWARK_CHECK(std::isfinite(input_weight_) && std::isfinite(overlay_weight_) &&
                    (input_weight_ != 0 || overlay_weight_ != 0),
                "strip: the superimposition weights must be finite and not both 0, got {} and {}",
                input_weight_, overlay_weight_);
}

Strip::Strip(Model model, at::Tensor held_out, StripOptions options)
    : model_(std::move(model)), options_(options) {
  options_.validate();
  detail::check_float_tensor("strip", "held_out", held_out, 2);
  BULWARK_CHECK(held_out.size(0) >= 1, "strip: held_out must hold at least one image, got {}",
                detail::shape_string(held_out));
  detail::check_finite("strip", "held_out", held_out);
  held_out_ = held_out.to(model_.device()).contiguous();
  generator_ = make_generator(options_.seed());
}

void Strip::check_batch(const at::Tensor& x) const {
  detail::check_float_tensor("strip", "x", x, 2);
  BULWARK_CHECK(x.sizes().slice(1) == held_out_.sizes().slice(1),
                "strip: x must be a batch of the held-out images' shape [N, {}], got {}",
                fmt::join(held_out_.sizes().slice(1), ", "), detail::shape_string(x));
  detail::check_finite("strip", "x", x);
}

at::Tensor Strip::mean_entropy(const at::Tensor& x, int64_t overlays) {
  const int64_t n = x.size(0);
  if (n == 0) return at::empty({0}, x.options());
  // All draws first, on the CPU generator: the same seed gives the same overlays however the
  // inputs are cut into forward passes, on any device.
  const auto drawn = at::randint(held_out_.size(0), {n, overlays}, generator_,
                                 at::TensorOptions().dtype(at::kLong))
                         .to(held_out_.device());
  const int64_t per_pass = std::max<int64_t>(1, options_.batch_size() / overlays);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < n; start += per_pass) {
    const int64_t end = std::min(n, start + per_pass);
    auto shape = held_out_.sizes().vec();  // [M, ...] → [c, overlays, ...]
    shape[0] = overlays;
    shape.insert(shape.begin(), end - start);
    const auto images = held_out_.index_select(0, drawn.slice(0, start, end).flatten())
                            .view(shape)
                            .to(x.dtype());
    auto mixed = (options_.input_weight() * x.slice(0, start, end).unsqueeze(1) +
                  options_.overlay_weight() * images)
                     .flatten(0, 1);
    if (options_.saturate()) mixed = options_.box().clamp(mixed);
    const auto log_p = model_.forward(mixed).log_softmax(1);
    classes_ = log_p.size(1);
    const auto entropy = -(log_p.exp() * log_p).sum(1) / std::numbers::ln2;
    parts.push_back(entropy.view({end - start, overlays}).mean(1));
  }
  return at::cat(parts);
}

at::Tensor Strip::entropy(const at::Tensor& x) {
  check_batch(x);
  EvalModeGuard guard(model_);
  torch::NoGradGuard no_grad;
  return mean_entropy(x.to(held_out_.device()), options_.overlays()).to(at::kDouble).cpu();
}

at::Tensor Strip::score(const at::Tensor& x) {
  const auto h = entropy(x);
  return h.numel() == 0 ? h : std::log2(static_cast<double>(classes_)) - h;
}

at::Tensor Strip::adaptive_score(const at::Tensor& x) {
  const auto h = mean_entropy(x, options_.adaptive_overlays());
  return std::log2(static_cast<double>(classes_)) - h;
}

}  // namespace bulwark
