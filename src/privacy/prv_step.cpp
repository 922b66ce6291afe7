// One step's privacy loss, its pessimistic ("connect the dots") discretization, and the
// Chernoff bounds on the composed tails.
#include "privacy/prv_step.h"

#include <algorithm>
#include <cmath>

#include "privacy/accountant_math.h"

namespace bulwark::detail {

namespace {

// Composed mass allowed to wrap around each end of the FFT mesh (added to δ).
constexpr double kWrapMass = 1e-18;
// Each step's mesh covers the losses where both Gaussians are within ±11.5 standard deviations
// (mass below 1e-30 outside; what is there is added to δ exactly).
constexpr double kStepTailZ = 11.5;
// Bins per block in the moment generating function bounds.
constexpr int64_t kBlock = 64;

}  // namespace

double StepLoss::removal_loss(double x) const {
  const double u = (2 * x - 1) / (2 * sigma * sigma);
  if (q >= 1) return u;
  return detail::log_add(std::log1p(-q), std::log(q) + u);
}

double StepLoss::removal_inverse(double z) const {
  if (q >= 1) return sigma * sigma * z + 0.5;
  const double inner = std::expm1(z) + q;  // e^z − (1 − q)
  if (inner <= 0) return -kInf;
  return sigma * sigma * (std::log(inner) - std::log(q)) + 0.5;
}

StepLoss::Tails StepLoss::tails(double y) const {
  const double x = removal_inverse(direction == Direction::kRemove ? y : -y);
  const double n0_below = normal_cdf(x / sigma), n0_above = normal_sf(x / sigma);
  const double n1_below = normal_cdf((x - 1) / sigma), n1_above = normal_sf((x - 1) / sigma);
  const double mix_below = (1 - q) * n0_below + q * n1_below;
  const double mix_above = (1 - q) * n0_above + q * n1_above;
  if (direction == Direction::kRemove) return {mix_below, mix_above, n0_below, n0_above};
  return {n0_above, n0_below, mix_above, mix_below};
}

std::pair<double, double> StepLoss::support() const {
  const double lo = removal_loss(-kStepTailZ * sigma);
  const double hi = removal_loss(1 + kStepTailZ * sigma);
  if (direction == Direction::kRemove) return {lo, hi};
  return {-hi, -lo};
}

double StepLoss::stddev() const {
  const double lo = -14 * sigma, hi = 1 + 14 * sigma;
  constexpr int kPoints = 40001;
  const double dx = (hi - lo) / (kPoints - 1);
  double m0 = 0, m1 = 0, m2 = 0;
  for (int i = 0; i < kPoints; ++i) {
    const double x = lo + dx * i;
    const double density = (1 - q) * std::exp(-0.5 * x * x / (sigma * sigma)) +
                           q * std::exp(-0.5 * (x - 1) * (x - 1) / (sigma * sigma));
    const double y = removal_loss(x);
    m0 += density;
    m1 += density * y;
    m2 += density * y * y;
  }
  const double mean = m1 / m0;
  return std::sqrt(std::max(0.0, m2 / m0 - mean * mean));
}

StepPmf discretize(const StepLoss& loss, double mesh, int64_t count) {
  const auto [lo, hi] = loss.support();
  StepPmf out;
  out.first = static_cast<int64_t>(std::floor(lo / mesh));
  const auto last = static_cast<int64_t>(std::ceil(hi / mesh));
  out.count = count;
  out.pmf.assign(static_cast<size_t>(last - out.first + 1), 0.0);
  const double cell_spread = -std::expm1(-mesh);  // 1 − e^−h
  const auto bottom = loss.tails(static_cast<double>(out.first) * mesh);
  auto below = bottom;
  for (int64_t j = out.first; j < last; ++j) {
    const double y = static_cast<double>(j) * mesh;
    const auto above = loss.tails(y + mesh);
    const double p = std::max(
        0.0, below.p_below < 0.5 ? above.p_below - below.p_below : below.p_above - above.p_above);
    const double r = std::max(
        0.0, below.q_below < 0.5 ? above.q_below - below.q_below : below.q_above - above.q_above);
    // Mass w at the top end and p − w at the bottom keep the cell's Q-mass:
    // (p − w) e^−y + w e^−(y+h) = r.
    const double r_scaled = r > 0 ? std::exp(std::log(r) + y) : 0.0;
    const double w = std::clamp((p - r_scaled) / cell_spread, 0.0, p);
    const auto i = static_cast<size_t>(j - out.first);
    out.pmf[i] += p - w;
    out.pmf[i + 1] += w;
    below = above;
  }
  out.outside = bottom.p_below + below.p_above;
  return out;
}

std::vector<Block> blocks_of(const StepPmf& step, double mesh) {
  std::vector<Block> blocks;
  const auto n = static_cast<int64_t>(step.pmf.size());
  for (int64_t b = 0; b < n; b += kBlock) {
    double mass = 0;
    const int64_t end = std::min(n, b + kBlock);
    for (int64_t i = b; i < end; ++i) mass += step.pmf[static_cast<size_t>(i)];
    if (mass > 0) {
      blocks.push_back({mass, static_cast<double>(step.first + b) * mesh,
                        static_cast<double>(step.first + end - 1) * mesh});
    }
  }
  return blocks;
}

double log_mgf_bound(const std::vector<Block>& blocks, double lambda) {
  double top = -kInf;
  for (const auto& b : blocks) top = std::max(top, lambda * (lambda > 0 ? b.high : b.low));
  double sum = 0;
  for (const auto& b : blocks) {
    sum += b.mass * std::exp(lambda * (lambda > 0 ? b.high : b.low) - top);
  }
  return top + std::log(sum);
}

TailBound tail_bound(const std::vector<std::pair<std::vector<Block>, int64_t>>& steps,
                     double sign) {
  const double log_inverse_tau = -std::log(kWrapMass);
  const auto log_mgf = [&](double lambda) {
    double k = 0;
    for (const auto& [blocks, count] : steps) {
      k += static_cast<double>(count) * log_mgf_bound(blocks, sign * lambda);
    }
    return k;
  };
  const auto reach = [&](double t) {
    const double lambda = std::exp(t);
    return (log_mgf(lambda) + log_inverse_tau) / lambda;
  };
  constexpr double kGolden = 0.6180339887498949;
  double lo = std::log(1e-6), hi = std::log(1e9);
  double a = hi - kGolden * (hi - lo), b = lo + kGolden * (hi - lo);
  double reach_a = reach(a), reach_b = reach(b);
  for (int it = 0; it < 80; ++it) {
    if (reach_a < reach_b) {
      hi = b, b = a, reach_b = reach_a;
      a = hi - kGolden * (hi - lo), reach_a = reach(a);
    } else {
      lo = a, a = b, reach_a = reach_b;
      b = lo + kGolden * (hi - lo), reach_b = reach(b);
    }
  }
  const double lambda = std::exp(0.5 * (lo + hi));
  const double k = log_mgf(lambda);
  return {sign * (k + log_inverse_tau) / lambda, lambda, k};
}

}  // namespace bulwark::detail
