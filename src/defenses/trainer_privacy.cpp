// DP-SGD in the training loop: the sampling rate, the noise calibrated to a target epsilon,
// the steps an epsilon budget allows, and the privacy spent.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "defenses/trainer_state.h"

namespace bulwark {

void Trainer::State::set_sample_rate(int64_t train_size, int64_t batch_size) {
  const double rate = std::min(1.0, static_cast<double>(batch_size) /
                                        static_cast<double>(train_size));
  BULWARK_CHECK(!calibrated || std::abs(rate - sample_rate) < 1e-12,
                "Trainer::fit: the training set has {} samples, so the sampling rate would be "
                "{}, but training so far used {}; privacy accounting needs the same dataset",
                train_size, rate, sample_rate);
  sample_rate = rate;
}

void Trainer::State::calibrate(const DPSGDOptions& privacy, int64_t total_steps) {
  if (privacy.target_epsilon() > 0) {
    const double sigma = calibrate_noise_multiplier(privacy.target_epsilon(), privacy.delta(),
                                                    sample_rate, total_steps,
                                                    privacy.accountant());
    dp->set_noise_multiplier(sigma);
    spdlog::info("DP-SGD: noise multiplier {:.4f} spends epsilon {} at delta {} over {} steps "
                 "at sampling rate {:.6f} ({} accountant)",
                 sigma, privacy.target_epsilon(), privacy.delta(), total_steps, sample_rate,
                 privacy.accountant());
  }
  calibrated = true;
}

// Found once by bisection (ε grows with the steps), since a PRV query takes a fraction of a
// second.
int64_t Trainer::State::steps_within_budget(const DPSGDOptions& privacy,
                                            int64_t remaining) const {
  const double sigma = dp->options().noise_multiplier();
  const auto exceeds = [&](int64_t steps) {
    auto next = accountant->clone();
    if (steps > 0) next->step(sigma, sample_rate, steps);
    return next->spent(privacy.delta()).epsilon > privacy.epsilon_budget();
  };
  if (!exceeds(remaining)) return -1;
  int64_t lo = 0, hi = remaining;  // the answer is in [lo, hi)
  if (exceeds(0)) hi = 0;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (exceeds(mid) ? hi : lo) = mid;
  }
  return lo;
}

double Trainer::noise_multiplier() const {
  BULWARK_CHECK(state_->dp != nullptr, "Trainer: not training with differential privacy");
  return state_->dp->options().noise_multiplier();
}

PrivacySpent Trainer::privacy_spent() const {
  BULWARK_CHECK(state_->dp != nullptr, "Trainer: not training with differential privacy");
  return state_->accountant->spent(options_.privacy().delta());
}

bool Trainer::stopped_at_budget() const { return state_->stopped; }

}  // namespace bulwark
