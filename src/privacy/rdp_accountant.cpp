// Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov 2017; Mironov, Talwar & Zhang
// 2019) and its conversion to (ε, δ) (Balle et al. 2020).
#include <cmath>
#include <cstdint>
#include <vector>

#include "bulwark/privacy/accountant.h"
#include "privacy/accountant_math.h"

namespace bulwark {

namespace {

using detail::kInf;
using detail::log_add;
using detail::log_erfc;
using detail::log_sub;

// log A_α for integer α: Σᵢ C(α, i) (1−q)^(α−i) qⁱ exp((i² − i) / (2σ²)).
double log_a_integer(double q, double sigma, int64_t alpha) {
  double log_a = -kInf;
  const double a = static_cast<double>(alpha);
  for (int64_t i = 0; i <= alpha; ++i) {
    const double k = static_cast<double>(i);
    const double log_coef = std::lgamma(a + 1) - std::lgamma(k + 1) - std::lgamma(a - k + 1);
    log_a = log_add(log_a, log_coef + k * std::log(q) + (a - k) * std::log1p(-q) +
                               (k * k - k) / (2 * sigma * sigma));
  }
  return log_a;
}

// log A_α for fractional α: the two series of Mironov, Talwar & Zhang 2019 (Section 3.3),
// split at z₀ = σ² log(1/q − 1) + 1/2, summed until both terms fall below e^−30.
double log_a_fractional(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double s2 = std::sqrt(2.0) * sigma;
  double log_abs_coef = 0.0;  // log |C(α, i)|
  bool positive = true;
  for (int64_t i = 0; i < 100000; ++i) {
    const double k = static_cast<double>(i);
    if (i > 0) {
      const double factor = (alpha - (k - 1)) / k;
      if (factor == 0) break;
      log_abs_coef += std::log(std::abs(factor));
      if (factor < 0) positive = !positive;
    }
    const double j = alpha - k;
    const double log_t0 = log_abs_coef + k * std::log(q) + j * std::log1p(-q);
    const double log_t1 = log_abs_coef + j * std::log(q) + k * std::log1p(-q);
    const double log_e0 = std::log(0.5) + log_erfc((k - z0) / s2);
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / s2);
    const double log_s0 = log_t0 + (k * k - k) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (positive) {
      log_a0 = log_add(log_a0, log_s0);
      log_a1 = log_add(log_a1, log_s1);
    } else {
      log_a0 = log_sub(log_a0, log_s0);
      log_a1 = log_sub(log_a1, log_s1);
    }
    if (std::max(log_s0, log_s1) < -30) break;
  }
  return log_add(log_a0, log_a1);
}

std::vector<double> default_orders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

}  // namespace

double subsampled_gaussian_rdp(double sample_rate, double noise_multiplier, double order) {
  detail::check_mechanism("subsampled_gaussian_rdp", noise_multiplier, sample_rate);
  BULWARK_CHECK(std::isfinite(order) && order > 1,
                "subsampled_gaussian_rdp: the order must be finite and > 1, got {}", order);
  const double sigma = noise_multiplier;
  if (sample_rate >= 1) return order / (2 * sigma * sigma);
  const double log_a = order == std::floor(order)
                           ? log_a_integer(sample_rate, sigma, static_cast<int64_t>(order))
                           : log_a_fractional(sample_rate, sigma, order);
  return log_a / (order - 1);
}

RDPAccountant::RDPAccountant() : orders_(default_orders()) {}

RDPAccountant::RDPAccountant(std::vector<double> orders) : orders_(std::move(orders)) {
  BULWARK_CHECK(!orders_.empty(), "RDPAccountant: the list of orders is empty");
  for (const double a : orders_) {
    BULWARK_CHECK(std::isfinite(a) && a > 1, "RDPAccountant: orders must be finite and > 1, got {}",
                  a);
  }
}

PrivacySpent RDPAccountant::spent(double delta) const {
  detail::check_delta("RDPAccountant::spent", delta);
  if (steps() == 0) return {.epsilon = 0.0, .delta = delta};
  PrivacySpent out{.epsilon = kInf, .delta = delta};
  for (const double alpha : orders_) {
    double rdp = 0;
    for (const auto& h : history_) {
      if (h.steps > 0) {
        rdp += static_cast<double>(h.steps) *
               subsampled_gaussian_rdp(h.sample_rate, h.noise_multiplier, alpha);
      }
    }
    // Balle et al. 2020, Theorem 21.
    const double eps =
        rdp - (std::log(delta) + std::log(alpha)) / (alpha - 1) + std::log((alpha - 1) / alpha);
    if (std::isfinite(eps) && eps < out.epsilon) {
      out.epsilon = eps;
      out.best_order = alpha;
    }
  }
  out.epsilon = std::max(0.0, out.epsilon);
  // The conversion is an upper bound with no estimate of its own beside it.
  out.epsilon_estimate = out.epsilon;
  return out;
}

std::unique_ptr<Accountant> RDPAccountant::clone() const {
  return std::make_unique<RDPAccountant>(*this);
}

}  // namespace bulwark
