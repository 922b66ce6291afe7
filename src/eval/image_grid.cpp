#include "bulwark/eval/image_grid.h"

#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <vector>

#include "bulwark/core/files.h"
#include "core/check.h"
#include "data/png_bytes.h"

namespace bulwark {
namespace {

// 3×5 pixel digits, one row of three bits per line, top to bottom.
constexpr std::array<std::array<uint8_t, 5>, 10> kDigits = {{
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
}};

struct Canvas {
  int64_t width, height;
  std::vector<uint8_t> rgb;
  Canvas(int64_t w, int64_t h) : width(w), height(h), rgb(static_cast<size_t>(w * h * 3), 255) {}
  void set(int64_t x, int64_t y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    auto* p = &rgb[static_cast<size_t>((y * width + x) * 3)];
    p[0] = r, p[1] = g, p[2] = b;
  }
  // A number up to two digits, each pixel drawn as a 2×2 block.
  void number(int64_t x, int64_t y, int64_t value, bool good) {
    const std::string text = std::to_string(value);
    for (size_t k = 0; k < text.size(); ++k) {
      const auto& glyph = kDigits[static_cast<size_t>(text[k] - '0')];
      for (int row = 0; row < 5; ++row) {
        for (int col = 0; col < 3; ++col) {
          if (((glyph[row] >> (2 - col)) & 1) == 0) continue;
          for (int dy = 0; dy < 2; ++dy) {
            for (int dx = 0; dx < 2; ++dx) {
              set(x + static_cast<int64_t>(k) * 8 + col * 2 + dx, y + row * 2 + dy,
                  good ? 0 : 200, good ? 150 : 0, 0);
            }
          }
        }
      }
    }
  }
  // An image [C, H, W] in [0, 1], scaled up.
  void image(int64_t x, int64_t y, const at::Tensor& img, int64_t scale) {
    const auto rgb_img = (img.size(0) == 1 ? img.expand({3, img.size(1), img.size(2)}) : img)
                             .mul(255)
                             .round()
                             .clamp(0, 255)
                             .to(at::kByte)
                             .contiguous();
    const auto a = rgb_img.accessor<uint8_t, 3>();
    for (int64_t i = 0; i < img.size(1) * scale; ++i) {
      for (int64_t j = 0; j < img.size(2) * scale; ++j) {
        set(x + j, y + i, a[0][i / scale][j / scale], a[1][i / scale][j / scale],
            a[2][i / scale][j / scale]);
      }
    }
  }
};

}  // namespace

void write_image_grid(const std::filesystem::path& path, const at::Tensor& clean,
                      const at::Tensor& adversarial, const at::Tensor& clean_predictions,
                      const at::Tensor& adversarial_predictions, const at::Tensor& labels,
                      int64_t scale) {
  constexpr std::string_view where = "write_image_grid";
  detail::check_float_tensor(where, "clean", clean, 4);
  BULWARK_CHECK(clean.dim() == 4 && (clean.size(1) == 1 || clean.size(1) == 3) && clean.size(0) > 0,
                "write_image_grid: clean must be [N > 0, 1 or 3, H, W], got {}",
                detail::shape_string(clean));
  detail::check_same_layout(where, "adversarial", adversarial, "clean", clean);
  BULWARK_CHECK(scale >= 1, "write_image_grid: scale must be >= 1, got {}", scale);
  const int64_t n = clean.size(0);
  for (const auto* t : {&clean_predictions, &adversarial_predictions, &labels}) {
    detail::check_labels(where, "predictions and labels", *t, n, 100);
  }
  const auto c = clean.detach().cpu().to(at::kFloat);
  const auto a = adversarial.detach().cpu().to(at::kFloat);
  BULWARK_CHECK(c.min().item<float>() >= 0 && c.max().item<float>() <= 1 &&
                    a.min().item<float>() >= 0 && a.max().item<float>() <= 1,
                "write_image_grid: images must lie in [0, 1]");
  const auto diff = (a - c).abs();
  const int64_t h = clean.size(2) * scale, w = clean.size(3) * scale;
  constexpr int64_t kPad = 4, kText = 14;
  Canvas canvas(3 * w + 4 * kPad, n * (h + kText + kPad) + kPad);
  const auto cp = clean_predictions.cpu(), ap = adversarial_predictions.cpu(), l = labels.cpu();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = kPad + i * (h + kText + kPad);
    const auto label = l[i].item<int64_t>();
    canvas.number(kPad, top, cp[i].item<int64_t>(), cp[i].item<int64_t>() == label);
    canvas.number(2 * kPad + w, top, ap[i].item<int64_t>(), ap[i].item<int64_t>() == label);
    canvas.image(kPad, top + kText, c[i], scale);
    canvas.image(2 * kPad + w, top + kText, a[i], scale);
    const double peak = std::max(diff[i].max().item<double>(), 1e-12);
    canvas.image(3 * kPad + 2 * w, top + kText, diff[i] / peak, scale);
  }
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    detail::write_png_bytes(tmp, canvas.width, canvas.height, 3, canvas.rgb);
  });
}

}  // namespace bulwark
