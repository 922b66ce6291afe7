// The robustness bracket as an SVG line plot: accuracy (0–100%) against the L2 budget, the band
// between the smoothed classifier's certified and attacked accuracy shaded, the base model under
// attack dashed beside it. Plain SVG 1.1 text: any browser or Markdown viewer shows it.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bulwark/eval/robustness_bracket.h"
#include "core/check.h"

namespace bulwark {

namespace {

constexpr double kWidth = 640, kHeight = 400;
constexpr double kLeft = 64, kRight = 190, kTop = 36, kBottom = 52;  // margins

struct Frame {
  double max_eps;
  double x(double eps) const { return kLeft + (kWidth - kLeft - kRight) * eps / max_eps; }
  double y(double accuracy) const { return kTop + (kHeight - kTop - kBottom) * (1 - accuracy); }
};

std::string polyline(const Frame& f, const std::vector<BracketPoint>& points,
                     double BracketPoint::*field, const char* colour, const char* dash) {
  std::string coords;
  for (const auto& p : points) coords += fmt::format("{:.1f},{:.1f} ", f.x(p.eps), f.y(p.*field));
  std::string svg = fmt::format(
      "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", coords,
      colour, dash[0] ? fmt::format(" stroke-dasharray=\"{}\"", dash) : "");
  for (const auto& p : points) {
    svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", f.x(p.eps),
                       f.y(p.*field), colour);
  }
  return svg;
}

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else if (static_cast<unsigned char>(c) < 0x20) out += ' ';  // not allowed in XML 1.0
    else out += c;
  }
  return out;
}

}  // namespace

std::string to_svg(const RobustnessBracket& bracket) {
  const auto& points = bracket.points;
  for (const auto& p : points) {
    for (const double a : {p.base_under_attack, p.smoothed_under_attack, p.certified}) {
      BULWARK_CHECK(a >= 0 && a <= 1, "to_svg: accuracies must be in [0, 1], got {}", a);
    }
    BULWARK_CHECK(std::isfinite(p.eps) && p.eps >= 0, "to_svg: eps must be finite and >= 0, got {}",
                  p.eps);
  }
  double max_eps = 0;
  for (const auto& p : points) max_eps = std::max(max_eps, p.eps);
  const Frame f{max_eps > 0 ? max_eps : 1.0};
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n",
      kWidth, kHeight);
  svg += fmt::format("<text x=\"{}\" y=\"20\" font-size=\"14\">L2 robustness bracket: {} on {} "
                     "({} samples, σ = {})</text>\n",
                     kLeft, escape(bracket.model), escape(bracket.data), bracket.samples,
                     bracket.certification.options.sigma());
  // Axes and grid: accuracy every 20%, eps at each budget.
  for (int i = 0; i <= 5; ++i) {
    const double a = i / 5.0;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}%</text>\n",
        f.x(0), f.y(a), f.x(f.max_eps), kLeft - 6, f.y(a) + 4, i * 20);
  }
  for (const auto& p : points) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:.3g}</text>\n",
                       f.x(p.eps), kHeight - kBottom + 18, p.eps);
  }
  svg += fmt::format(
      "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"black\"/>\n"
      "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{3:.1f}\" stroke=\"black\"/>\n"
      "<text x=\"{4:.1f}\" y=\"{5:.1f}\" text-anchor=\"middle\">L2 budget eps (certified "
      "radius)</text>\n"
      "<text x=\"16\" y=\"{6:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {6:.1f})\">"
      "accuracy</text>\n",
      f.x(0), f.y(0), f.x(f.max_eps), f.y(1), (f.x(0) + f.x(f.max_eps)) / 2, kHeight - 12,
      (f.y(0) + f.y(1)) / 2);
  // The band: up along the attacked accuracy, back along the certified one.
  std::string band;
  for (const auto& p : points) band += fmt::format("{:.1f},{:.1f} ", f.x(p.eps), f.y(p.smoothed_under_attack));
  for (auto it = points.rbegin(); it != points.rend(); ++it) {
    band += fmt::format("{:.1f},{:.1f} ", f.x(it->eps), f.y(it->certified));
  }
  svg += fmt::format("<polygon points=\"{}\" fill=\"#4a7ebb\" fill-opacity=\"0.18\"/>\n", band);
  svg += polyline(f, points, &BracketPoint::smoothed_under_attack, "#c0392b", "");
  svg += polyline(f, points, &BracketPoint::certified, "#1f5fa8", "");
  svg += polyline(f, points, &BracketPoint::base_under_attack, "#666", "6 4");
  // Legend.
  const double lx = kWidth - kRight + 16;
  const struct {
    const char* colour;
    const char* dash;
    const char* label;
  } legend[] = {{"#c0392b", "", "smoothed, under attack"},
                {"#1f5fa8", "", "smoothed, certified"},
                {"#666", "6 4", "base model, under attack"}};
  double ly = kTop + 10;
  for (const auto& l : legend) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\"{4}/>\n<text x=\"{5:.1f}\" y=\"{6:.1f}\">{7}</text>\n",
        lx, ly, lx + 24, l.colour,
        l.dash[0] ? fmt::format(" stroke-dasharray=\"{}\"", l.dash) : "", lx + 30, ly + 4,
        l.label);
    ly += 20;
  }
  svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"24\" height=\"10\" fill=\"#4a7ebb\" "
                     "fill-opacity=\"0.18\"/>\n<text x=\"{:.1f}\" y=\"{:.1f}\">true robustness "
                     "of the</text>\n<text x=\"{:.1f}\" y=\"{:.1f}\">smoothed classifier</text>\n",
                     lx, ly - 5, lx + 30, ly + 4, lx + 30, ly + 18);
  svg += "</svg>\n";
  return svg;
}

}  // namespace bulwark
