// The accountant interface shared by RDP and PRV: the step history, the factory, and the noise
// calibration that inverts an accountant.
#include "bulwark/privacy/accountant.h"

#include <cmath>

#include "privacy/accountant_math.h"

namespace bulwark {

void Accountant::step(double noise_multiplier, double sample_rate, int64_t steps) {
  detail::check_mechanism("Accountant::step", noise_multiplier, sample_rate);
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
  detail::check_delta(where, delta);
  BULWARK_CHECK(sample_rate > 0 && sample_rate <= 1,
                "{}: the sampling rate must be in (0, 1], got {}", where, sample_rate);
  BULWARK_CHECK(steps >= 1, "{}: steps must be >= 1, got {}", where, steps);
  // `epsilon` of PrivacySpent is the upper bound (certified for PRV), so the σ found is safe.
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
