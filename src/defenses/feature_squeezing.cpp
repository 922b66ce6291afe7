#include "bulwark/defenses/feature_squeezing.h"

#include <torch/torch.h>

#include <charconv>

#include "bulwark/ops/median_filter.h"
#include "core/check.h"

namespace bulwark {

at::Tensor reduce_bit_depth(const at::Tensor& x, int64_t bits, const InputBox& box) {
  BULWARK_CHECK(bits >= 1 && bits <= 24, "reduce_bit_depth: bits must be in [1, 24], got {}",
                bits);
  detail::check_float_tensor("reduce_bit_depth", "x", x);
  const double levels = std::ldexp(1.0, static_cast<int>(bits)) - 1.0;
  const double width = box.upper - box.lower;
  return ((x - box.lower) * (levels / width)).round_() * (width / levels) + box.lower;
}

Squeezer Squeezer::parse(std::string_view text) {
  const auto colon = text.find(':');
  const auto kind = text.substr(0, colon);
  int64_t value = 0;
  const auto digits = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  BULWARK_CHECK((kind == "bits" || kind == "median") && !digits.empty() && ec == std::errc() &&
                    end == digits.data() + digits.size(),
                "squeezer: expected bits:<1-24> or median:<1-11>, got '{}'", text);
  Squeezer squeezer = kind == "bits" ? bit_depth(value) : median(value);
  squeezer.validate();
  return squeezer;
}

std::string Squeezer::to_string() const {
  return fmt::format("{}:{}", kind == Kind::BitDepth ? "bits" : "median", value);
}

void Squeezer::validate() const {
  if (kind == Kind::BitDepth) {
    BULWARK_CHECK(value >= 1 && value <= 24, "squeezer: bits must be in [1, 24], got {}", value);
  } else {
    BULWARK_CHECK(value >= 1 && value <= ops::kMaxMedianWindow,
                  "squeezer: the median window must be in [1, {}], got {}",
                  ops::kMaxMedianWindow, value);
  }
}

at::Tensor Squeezer::apply(const at::Tensor& x, const InputBox& box) const {
  if (kind == Kind::BitDepth) return reduce_bit_depth(x, value, box);
  return ops::median_filter(x, value);
}

FeatureSqueezing::FeatureSqueezing(Model model, FeatureSqueezingOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  BULWARK_CHECK(!options_.squeezers().empty(), "FeatureSqueezing: needs at least one squeezer");
  for (const auto& squeezer : options_.squeezers()) squeezer.validate();
}

at::Tensor FeatureSqueezing::distance(const at::Tensor& x, bool bpda) {
  BULWARK_CHECK(x.defined() && x.dim() == 4,
                "FeatureSqueezing: inputs must be images [N, C, H, W], got {}",
                x.defined() ? detail::shape_string(x) : "undefined");
  const auto probabilities = model_.forward(x).softmax(1);
  at::Tensor worst;
  for (const auto& squeezer : options_.squeezers()) {
    at::Tensor squeezed;
    {
      torch::NoGradGuard no_grad;
      squeezed = squeezer.apply(x.detach(), options_.box());
    }
    // BPDA: the squeezed input in the forward pass, the identity in the backward pass.
    if (bpda) squeezed = x + (squeezed - x.detach());
    const auto l1 = (probabilities - model_.forward(squeezed).softmax(1)).abs().sum(1);
    worst = worst.defined() ? at::maximum(worst, l1) : l1;
  }
  return worst;
}

at::Tensor FeatureSqueezing::score(const at::Tensor& x) {
  detail::check_finite("FeatureSqueezing", "x", x);
  EvalModeGuard guard(model_);
  torch::NoGradGuard no_grad;
  return distance(x, false).to(at::kDouble).cpu();
}

at::Tensor FeatureSqueezing::adaptive_score(const at::Tensor& x) { return distance(x, true); }

}  // namespace bulwark
