// RDP and PRV accounting of the Poisson-subsampled Gaussian mechanism, and noise calibration.
#include "bulwark/privacy/accountant.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>

#include "core/check.h"

namespace bulwark {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void check_delta(const char* where, double delta) {
  BULWARK_CHECK(delta > 0 && delta < 1, "{}: delta must be in (0, 1), got {}", where, delta);
}

void check_mechanism(const char* where, double sigma, double q) {
  BULWARK_CHECK(std::isfinite(sigma) && sigma > 0,
                "{}: the noise multiplier must be finite and > 0, got {}", where, sigma);
  BULWARK_CHECK(q > 0 && q <= 1, "{}: the sampling rate must be in (0, 1], got {}", where, q);
}

double log_add(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

// log(exp(a) − exp(b)) for a >= b.
double log_sub(double a, double b) {
  if (b == -kInf) return a;
  if (a <= b) return -kInf;
  return a + std::log1p(-std::exp(b - a));
}

// log(erfc(x)), accurate where erfc underflows (x > 25: asymptotic series).
double log_erfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  const double r = 1.0 / (x * x);
  return -x * x - std::log(x) - 0.5 * std::log(std::numbers::pi) +
         std::log1p(-0.5 * r + 0.75 * r * r - 1.875 * r * r * r);
}

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

// ---- PRV -----------------------------------------------------------------------------------

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }
double normal_sf(double z) { return 0.5 * std::erfc(z / std::numbers::sqrt2); }

// The privacy loss Y = log(P(x) / Q(x)) of one step, P = (1−q) N(0, σ²) + q N(1, σ²),
// Q = N(0, σ²), as a distribution under x ~ P: Y is increasing in x.
struct StepPRV {
  double q, sigma;
  // Y at x.
  double loss(double x) const {
    const double shift = (2 * x - 1) / (2 * sigma * sigma);
    if (q >= 1) return shift;
    return log_add(std::log1p(-q), std::log(q) + shift);
  }
  // x at which Y = t (−∞ when t is at or below Y's lower bound log(1 − q)).
  double inverse(double t) const {
    if (q >= 1) return sigma * sigma * t + 0.5;
    const double inner = std::expm1(t) + q;  // e^t − (1 − q)
    if (inner <= 0) return -kInf;
    return sigma * sigma * (std::log(inner) - std::log(q)) + 0.5;
  }
  double cdf(double t) const {
    const double x = inverse(t);
    if (x == -kInf) return 0.0;
    return (1 - q) * normal_cdf(x / sigma) + q * normal_cdf((x - 1) / sigma);
  }
  double sf(double t) const {
    const double x = inverse(t);
    if (x == -kInf) return 1.0;
    return (1 - q) * normal_sf(x / sigma) + q * normal_sf((x - 1) / sigma);
  }
  // P(a < Y <= b), accurate in both tails.
  double mass(double a, double b) const {
    const double fa = cdf(a);
    if (fa < 0.5) return std::max(0.0, cdf(b) - fa);
    return std::max(0.0, sf(a) - sf(b));
  }
  // Mean and variance of Y by quadrature over x.
  std::pair<double, double> moments() const {
    const double lo = -14 * sigma, hi = 1 + 14 * sigma;
    constexpr int kPoints = 40001;
    const double dx = (hi - lo) / (kPoints - 1);
    double m0 = 0, m1 = 0, m2 = 0;
    for (int i = 0; i < kPoints; ++i) {
      const double x = lo + dx * i;
      const double density = (1 - q) * std::exp(-0.5 * x * x / (sigma * sigma)) +
                             q * std::exp(-0.5 * (x - 1) * (x - 1) / (sigma * sigma));
      const double y = loss(x);
      m0 += density;
      m1 += density * y;
      m2 += density * y * y;
    }
    const double mean = m1 / m0;
    return {mean, std::max(0.0, m2 / m0 - mean * mean)};
  }
};

// The composed privacy loss on a mesh: pmf[m] is the mass at centre + offset(m) · mesh, with
// offsets in [−N/2, N/2) stored in FFT order; `lost` is the mass that left the mesh at the top
// (counted as a privacy failure).
struct ComposedPRV {
  std::vector<double> pmf;
  double centre = 0, mesh = 0, lost = 0;
  double value(size_t m) const {
    const auto n = static_cast<int64_t>(pmf.size());
    auto offset = static_cast<int64_t>(m);
    if (offset >= n / 2) offset -= n;
    return centre + static_cast<double>(offset) * mesh;
  }
  double delta(double epsilon) const {
    double d = 0;
    for (size_t m = 0; m < pmf.size(); ++m) {
      const double y = value(m);
      if (y > epsilon) d += pmf[m] * -std::expm1(epsilon - y);
    }
    return std::min(1.0, d + lost);
  }
};

ComposedPRV compose(const std::vector<MechanismSteps>& history, double epsilon_error) {
  // Merge identical mechanisms.
  std::map<std::pair<double, double>, int64_t> runs;
  for (const auto& h : history) runs[{h.noise_multiplier, h.sample_rate}] += h.steps;
  double mean = 0, variance = 0, spread = 0;
  int64_t total = 0;
  std::vector<std::pair<StepPRV, std::pair<double, int64_t>>> steps;  // (prv, (mean, count))
  for (const auto& [key, count] : runs) {
    if (count == 0) continue;
    const StepPRV prv{key.second, key.first};
    const auto [m, v] = prv.moments();
    mean += m * static_cast<double>(count);
    variance += v * static_cast<double>(count);
    spread = std::max(spread, std::sqrt(v));
    total += count;
    steps.push_back({prv, {m, count}});
  }
  ComposedPRV out;
  out.centre = mean;
  // Half-width: far beyond the composed spread and each step's own, and at least 10.
  const double half = std::max({10.0, 14 * std::sqrt(variance), 30 * spread});
  // Gopi et al.: the ε error of a mesh h over k steps grows like h √k; aim below epsilon_error.
  double mesh = epsilon_error / (2 * std::sqrt(static_cast<double>(std::max<int64_t>(total, 1))));
  constexpr int64_t kMaxPoints = int64_t{1} << 23;
  int64_t points = 1024;
  while (points < kMaxPoints && static_cast<double>(points) * mesh < 2 * half) points *= 2;
  mesh = std::max(mesh, 2 * half / static_cast<double>(points));
  out.mesh = mesh;

  auto spectrum = at::ones({points / 2 + 1}, at::kComplexDouble);
  double survive = 1.0;  // probability that no step's loss left the mesh at the top
  for (const auto& [prv, mc] : steps) {
    const auto [step_mean, count] = mc;
    auto pmf = at::zeros({points}, at::kDouble);
    auto* p = pmf.data_ptr<double>();
    for (int64_t m = 0; m < points; ++m) {
      const int64_t offset = m < points / 2 ? m : m - points;
      const double y = step_mean + static_cast<double>(offset) * mesh;
      double lo = y - mesh / 2, hi = y + mesh / 2;
      if (offset == -points / 2) lo = -kInf;  // the bottom bin keeps everything below it
      p[m] = lo == -kInf ? prv.cdf(hi) : prv.mass(lo, hi);
    }
    const double top = step_mean + static_cast<double>(points / 2 - 1) * mesh + mesh / 2;
    survive *= std::pow(1 - prv.sf(top), static_cast<double>(count));
    spectrum = spectrum * at::pow(at::fft_rfft(pmf), static_cast<double>(count));
  }
  const auto composed = at::fft_irfft(spectrum, points).clamp_min(0.0).contiguous();
  out.pmf.assign(composed.data_ptr<double>(), composed.data_ptr<double>() + points);
  out.lost = 1 - survive;
  return out;
}

}  // namespace

// ---- Accountant ----------------------------------------------------------------------------

void Accountant::step(double noise_multiplier, double sample_rate, int64_t steps) {
  check_mechanism("Accountant::step", noise_multiplier, sample_rate);
  BULWARK_CHECK(steps >= 0, "Accountant::step: steps must be >= 0, got {}", steps);
  if (!history_.empty() && history_.back().noise_multiplier == noise_multiplier &&
      history_.back().sample_rate == sample_rate) {
    history_.back().steps += steps;
  } else {
    history_.push_back({noise_multiplier, sample_rate, steps});
  }
}

int64_t Accountant::steps() const {
  int64_t total = 0;
  for (const auto& h : history_) total += h.steps;
  return total;
}

double subsampled_gaussian_rdp(double sample_rate, double noise_multiplier, double order) {
  check_mechanism("subsampled_gaussian_rdp", noise_multiplier, sample_rate);
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
  check_delta("RDPAccountant::spent", delta);
  PrivacySpent out{kInf, delta, 0.0};
  if (steps() == 0) return {0.0, delta, 0.0};
  for (const double alpha : orders_) {
    double rdp = 0;
    for (const auto& h : history_) {
      if (h.steps > 0) {
        rdp += static_cast<double>(h.steps) *
               subsampled_gaussian_rdp(h.sample_rate, h.noise_multiplier, alpha);
      }
    }
    // Balle et al. 2020, Theorem 21.
    const double eps = rdp - (std::log(delta) + std::log(alpha)) / (alpha - 1) +
                       std::log((alpha - 1) / alpha);
    if (std::isfinite(eps) && eps < out.epsilon) {
      out.epsilon = eps;
      out.best_order = alpha;
    }
  }
  out.epsilon = std::max(0.0, out.epsilon);
  return out;
}

std::unique_ptr<Accountant> RDPAccountant::clone() const {
  return std::make_unique<RDPAccountant>(*this);
}

PRVAccountant::PRVAccountant(double epsilon_error) : epsilon_error_(epsilon_error) {
  BULWARK_CHECK(std::isfinite(epsilon_error) && epsilon_error > 0,
                "PRVAccountant: epsilon_error must be finite and > 0, got {}", epsilon_error);
}

double PRVAccountant::delta_at(double epsilon) const {
  if (steps() == 0) return 0.0;
  return compose(history_, epsilon_error_).delta(epsilon);
}

PrivacySpent PRVAccountant::spent(double delta) const {
  check_delta("PRVAccountant::spent", delta);
  if (steps() == 0) return {0.0, delta, 0.0};
  const auto prv = compose(history_, epsilon_error_);
  if (prv.delta(0.0) <= delta) return {0.0, delta, 0.0};
  double hi = prv.value(prv.pmf.size() / 2 - 1);
  if (prv.delta(hi) > delta) return {kInf, delta, 0.0};
  double lo = 0.0;
  while (hi - lo > 1e-3 * epsilon_error_) {
    const double mid = 0.5 * (lo + hi);
    (prv.delta(mid) > delta ? lo : hi) = mid;
  }
  return {hi, delta, 0.0};
}

std::unique_ptr<Accountant> PRVAccountant::clone() const {
  return std::make_unique<PRVAccountant>(*this);
}

std::unique_ptr<Accountant> make_accountant(const std::string& name) {
  if (name == "rdp") return std::make_unique<RDPAccountant>();
  if (name == "prv") return std::make_unique<PRVAccountant>();
  throw Error(fmt::format("unknown privacy accountant '{}': expected 'rdp' or 'prv'", name));
}

double calibrate_noise_multiplier(double target_epsilon, double delta, double sample_rate,
                                  int64_t steps, const std::string& accountant) {
  const char* where = "calibrate_noise_multiplier";
  BULWARK_CHECK(std::isfinite(target_epsilon) && target_epsilon > 0,
                "{}: the target epsilon must be finite and > 0, got {}", where, target_epsilon);
  check_delta(where, delta);
  BULWARK_CHECK(sample_rate > 0 && sample_rate <= 1,
                "{}: the sampling rate must be in (0, 1], got {}", where, sample_rate);
  BULWARK_CHECK(steps >= 1, "{}: steps must be >= 1, got {}", where, steps);
  const auto epsilon = [&](double sigma) {
    auto a = make_accountant(accountant);
    a->step(sigma, sample_rate, steps);
    return a->spent(delta).epsilon;
  };
  double hi = 1.0;
  while (epsilon(hi) > target_epsilon) {
    hi *= 2;
    BULWARK_CHECK(hi <= 1e4,
                  "{}: even a noise multiplier of 1e4 spends more than epsilon {} at delta {} "
                  "over {} steps at rate {}",
                  where, target_epsilon, delta, steps, sample_rate);
  }
  double lo = hi / 2;
  if (epsilon(lo) <= target_epsilon) {
    while (lo > 1e-3 && epsilon(lo) <= target_epsilon) lo /= 2;
    hi = lo * 2;
  }
  while ((hi - lo) / hi > 1e-3) {
    const double mid = 0.5 * (lo + hi);
    (epsilon(mid) > target_epsilon ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace bulwark
