// Backdoor triggers: a stamped patch, or a pattern blended into the whole image.
#include "bulwark/poisoning/trigger.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdio>

#include "core/check.h"

namespace bulwark {

namespace {

at::Tensor checked_pattern(at::Tensor pattern, const char* what) {
  BULWARK_CHECK(pattern.defined() && pattern.numel() > 0, "{}: the pattern is empty", what);
  BULWARK_CHECK(pattern.dim() == 2 || pattern.dim() == 3,
                "{}: the pattern must be [C, h, w] or [h, w], got {} dimensions", what,
                pattern.dim());
  pattern = pattern.detach().to(torch::kFloat).cpu();
  if (pattern.dim() == 2) pattern = pattern.unsqueeze(0);
  BULWARK_CHECK(pattern.isfinite().all().item<bool>(), "{}: the pattern has non-finite values",
                what);
  return pattern.contiguous();
}

}  // namespace

Trigger::Trigger(at::Tensor pattern, int64_t row, int64_t col, double alpha)
    : pattern_(std::move(pattern)), row_(row), col_(col), alpha_(alpha) {}

Trigger Trigger::patch(at::Tensor pattern, int64_t row, int64_t col) {
  BULWARK_CHECK((row >= 0 && col >= 0) || (row == -1 && col == -1),
                "Trigger::patch: the position must be >= 0 (or -1, -1 for the bottom-right "
                "corner), got ({}, {})",
                row, col);
  return Trigger(checked_pattern(std::move(pattern), "Trigger::patch"), row, col, 0);
}

Trigger Trigger::checkerboard(int64_t size, int64_t channels, int64_t row, int64_t col) {
  BULWARK_CHECK(size >= 1 && channels >= 1,
                "Trigger::checkerboard: size and channels must be >= 1, got {} and {}", size,
                channels);
  const auto i = torch::arange(size, torch::kLong);
  const auto board = (i.unsqueeze(1) + i.unsqueeze(0)).remainder(2).eq(0).to(torch::kFloat);
  return patch(board.unsqueeze(0).expand({channels, size, size}).clone(), row, col);
}

Trigger Trigger::parse(const std::string& spec) {
  const auto fail = [&spec] {
    return Error(fmt::format("trigger: expected checkerboard:<size> or square:<size>, optionally "
                             "followed by @<row>,<col>; got '{}'",
                             spec));
  };
  const auto colon = spec.find(':');
  if (colon == std::string::npos) throw fail();
  const auto kind = spec.substr(0, colon);
  if (kind != "checkerboard" && kind != "square") throw fail();
  int64_t size = 0, row = -1, col = -1;
  const auto rest = spec.substr(colon + 1);
  char at = 0, comma = 0, extra = 0;
  const int fields = std::sscanf(rest.c_str(), "%ld%c%ld%c%ld%c", &size, &at, &row, &comma,
                                 &col, &extra);
  const bool plain = fields == 1 && rest.find_first_not_of("0123456789") == std::string::npos;
  const bool placed = fields == 5 && at == '@' && comma == ',';
  if (!plain && !placed) throw fail();
  BULWARK_CHECK(size >= 1 && (plain || (row >= 0 && col >= 0)),
                "trigger: the size must be >= 1 and the position >= 0, got '{}'", spec);
  if (kind == "checkerboard") return checkerboard(size, 1, row, col);
  return patch(torch::ones({1, size, size}), row, col);
}

Trigger Trigger::blend(at::Tensor pattern, double alpha) {
  BULWARK_CHECK(alpha > 0 && alpha <= 1, "Trigger::blend: alpha must be in (0, 1], got {}", alpha);
  return Trigger(checked_pattern(std::move(pattern), "Trigger::blend"), 0, 0, alpha);
}

Trigger Trigger::masked(at::Tensor mask, at::Tensor pattern) {
  auto m = checked_pattern(std::move(mask), "Trigger::masked");
  BULWARK_CHECK(m.size(0) == 1, "Trigger::masked: the mask must be [H, W] or [1, H, W], got {} "
                                "channels", m.size(0));
  BULWARK_CHECK(m.min().item<double>() >= 0 && m.max().item<double>() <= 1,
                "Trigger::masked: the mask must lie in [0, 1]");
  auto p = checked_pattern(std::move(pattern), "Trigger::masked");
  BULWARK_CHECK(p.size(1) == m.size(1) && p.size(2) == m.size(2),
                "Trigger::masked: the mask is {}x{} but the pattern {}x{}", m.size(1), m.size(2),
                p.size(1), p.size(2));
  Trigger t(std::move(p), 0, 0, 0);
  t.mask_ = std::move(m);
  return t;
}

at::Tensor Trigger::apply(const at::Tensor& images) const {
  BULWARK_CHECK(images.defined() && images.dim() == 4,
                "Trigger::apply: images must be [N, C, H, W], got {} dimensions",
                images.defined() ? images.dim() : 0);
  BULWARK_CHECK(images.is_floating_point(), "Trigger::apply: images must be floating point, got {}",
                c10::toString(images.scalar_type()));
  const auto c = images.size(1), h = images.size(2), w = images.size(3);
  const auto pattern = pattern_.to(images.options());
  BULWARK_CHECK(pattern.size(0) == c || pattern.size(0) == 1,
                "Trigger::apply: the trigger has {} channels, the images {}", pattern.size(0), c);
  if (!is_patch()) {
    BULWARK_CHECK(pattern.size(1) == h && pattern.size(2) == w,
                  "Trigger::apply: the {} pattern is {}x{}, the images {}x{}",
                  is_masked() ? "masked" : "blend", pattern.size(1), pattern.size(2), h, w);
    if (is_masked()) {
      const auto m = mask_.to(images.options()).unsqueeze(0);
      return images * (1 - m) + pattern.unsqueeze(0) * m;
    }
    return images * (1 - alpha_) + pattern.unsqueeze(0) * alpha_;
  }
  const auto ph = pattern.size(1), pw = pattern.size(2);
  BULWARK_CHECK(ph <= h && pw <= w, "Trigger::apply: the {}x{} patch is larger than the {}x{} image",
                ph, pw, h, w);
  const int64_t row = row_ >= 0 ? row_ : std::max<int64_t>(0, h - ph - 1);
  const int64_t col = col_ >= 0 ? col_ : std::max<int64_t>(0, w - pw - 1);
  BULWARK_CHECK(row + ph <= h && col + pw <= w,
                "Trigger::apply: the {}x{} patch at ({}, {}) runs off the {}x{} image", ph, pw, row,
                col, h, w);
  auto out = images.clone();
  out.slice(2, row, row + ph).slice(3, col, col + pw).copy_(pattern.unsqueeze(0).expand({images.size(0), c, ph, pw}));
  return out;
}

std::string Trigger::describe() const {
  if (is_masked()) return fmt::format("mask of L1 norm {:.3g}", mask_.sum().item<double>());
  if (!is_patch()) return fmt::format("blend alpha {}", alpha_);
  if (row_ < 0) {
    return fmt::format("patch {}x{} in the bottom-right corner", pattern_.size(1), pattern_.size(2));
  }
  return fmt::format("patch {}x{} at ({}, {})", pattern_.size(1), pattern_.size(2), row_, col_);
}

}  // namespace bulwark
