#pragma once
// Private helpers shared by the RDP and PRV accountants: log-space arithmetic, the normal
// distribution's tails, and the argument checks both make.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "core/check.h"

namespace bulwark::detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();

inline void check_delta(const char* where, double delta) {
  BULWARK_CHECK(delta > 0 && delta < 1, "{}: delta must be in (0, 1), got {}", where, delta);
}

inline void check_mechanism(const char* where, double sigma, double q) {
  BULWARK_CHECK(std::isfinite(sigma) && sigma > 0,
                "{}: the noise multiplier must be finite and > 0, got {}", where, sigma);
  BULWARK_CHECK(q > 0 && q <= 1, "{}: the sampling rate must be in (0, 1], got {}", where, q);
}

/// log(exp(a) + exp(b)).
inline double log_add(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

/// log(exp(a) − exp(b)) for a >= b.
inline double log_sub(double a, double b) {
  if (b == -kInf) return a;
  if (a <= b) return -kInf;
  return a + std::log1p(-std::exp(b - a));
}

/// log(erfc(x)), accurate where erfc underflows (x > 25: asymptotic series).
inline double log_erfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  const double r = 1.0 / (x * x);
  return -x * x - std::log(x) - 0.5 * std::log(std::numbers::pi) +
         std::log1p(-0.5 * r + 0.75 * r * r - 1.875 * r * r * r);
}

/// Φ(z) and 1 − Φ(z) of the standard normal, each accurate in its own tail.
inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }
inline double normal_sf(double z) { return 0.5 * std::erfc(z / std::numbers::sqrt2); }

}  // namespace bulwark::detail
