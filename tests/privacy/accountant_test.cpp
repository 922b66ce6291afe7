#include "bulwark/privacy/accountant.h"

#include <cmath>

#include "test_util.h"

namespace bulwark {
namespace {

struct Reference {
  double q, sigma;
  int64_t steps;
  double delta;
  double rdp_epsilon, rdp_order, prv_epsilon;
};

// Opacus 1.6.0's RDPAccountant.get_privacy_spent and PRVAccountant.get_epsilon (eps_error
// 0.01) on the same histories, computed in the project's virtual environment.
constexpr Reference kOpacus[] = {
    {0.01, 4.0, 10000, 1e-5, 1.0354900660362476, 17.0, 0.956936183403828},
    {0.01, 1.1, 1000, 1e-5, 1.7117700912203435, 9.6, 1.52547264980387},
    {256.0 / 60000, 1.0, 2344, 1e-5, 1.3523378362358764, 9.9, 1.1099907059501186},
    {1.0, 2.0, 10, 1e-5, 8.079406222420491, 3.9, 7.52164100707157},
    {0.05, 0.8, 500, 1e-6, 14.849331329456104, 2.6, 13.566864603359393},
};

double rdp_epsilon(double q, double sigma, int64_t steps, double delta = 1e-5) {
  RDPAccountant accountant;
  accountant.step(sigma, q, steps);
  return accountant.spent(delta).epsilon;
}

TEST(AccountantTest, RdpMatchesOpacusAndAbadiEtAl) {
  for (const auto& r : kOpacus) {
    RDPAccountant accountant;
    accountant.step(r.sigma, r.q, r.steps);
    const auto spent = accountant.spent(r.delta);
    EXPECT_NEAR(spent.epsilon, r.rdp_epsilon, 1e-6 * r.rdp_epsilon) << r.q << " " << r.sigma;
    EXPECT_DOUBLE_EQ(spent.best_order, r.rdp_order);
  }
  // Abadi et al. 2016 (Section 5): q 0.01, σ 4, 10000 steps, δ 1e-5 gives ε 1.26 with the
  // moments accountant; RDP with the Balle et al. conversion is tighter, and within 25 %.
  const double eps = rdp_epsilon(0.01, 4.0, 10000);
  EXPECT_LT(eps, 1.26);
  EXPECT_GT(eps, 0.75 * 1.26);
}

TEST(AccountantTest, PrvMatchesOpacusAndIsTighterThanRdp) {
  for (const auto& r : kOpacus) {
    PRVAccountant accountant(0.01);
    accountant.step(r.sigma, r.q, r.steps);
    const double eps = accountant.spent(r.delta).epsilon;
    EXPECT_NEAR(eps, r.prv_epsilon, 0.03) << r.q << " " << r.sigma;
    EXPECT_LT(eps, r.rdp_epsilon) << r.q << " " << r.sigma;
    // δ(ε) is what it inverts.
    EXPECT_NEAR(accountant.delta_at(eps), r.delta, 0.05 * r.delta);
  }
}

TEST(AccountantTest, GaussianWithoutSamplingIsExact) {
  // Without subsampling the Gaussian mechanism's RDP is α / (2σ²) at every order...
  EXPECT_DOUBLE_EQ(subsampled_gaussian_rdp(1.0, 2.0, 7.5), 7.5 / 8.0);
  // ... and its exact δ(ε) (Balle & Wang 2018) for T steps is that of one step at σ/√T:
  // Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2), μ = √T / σ.
  PRVAccountant prv(0.005);
  prv.step(2.0, 1.0, 10);
  const double mu = std::sqrt(10.0) / 2.0, eps = 3.0;
  const auto phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  const double exact = phi(-eps / mu + mu / 2) - std::exp(eps) * phi(-eps / mu - mu / 2);
  EXPECT_NEAR(prv.delta_at(eps), exact, 0.01 * exact);
}

TEST(AccountantTest, FractionalAndIntegerOrdersAgree) {
  // The two-series expansion at a non-integer order next to an integer one.
  for (const double q : {0.001, 0.02, 0.3}) {
    for (const double sigma : {0.7, 1.5, 5.0}) {
      const double integer = subsampled_gaussian_rdp(q, sigma, 4.0);
      const double fractional = subsampled_gaussian_rdp(q, sigma, 4.0 + 1e-7);
      EXPECT_NEAR(fractional, integer, 1e-5 * integer + 1e-12) << q << " " << sigma;
    }
  }
}

TEST(AccountantTest, EpsilonIsMonotoneInStepsRateAndNoise) {
  for (const std::string name : {"rdp", "prv"}) {
    const auto eps = [&](double q, double sigma, int64_t steps) {
      auto a = make_accountant(name);
      a->step(sigma, q, steps);
      return a->spent(1e-5).epsilon;
    };
    double last = 0;
    for (const int64_t steps : {10, 100, 1000, 5000}) {
      const double e = eps(0.01, 1.0, steps);
      EXPECT_GT(e, last) << name << " steps " << steps;
      last = e;
    }
    last = 0;
    for (const double q : {0.001, 0.01, 0.05, 0.2}) {
      const double e = eps(q, 1.0, 500);
      EXPECT_GT(e, last) << name << " q " << q;
      last = e;
    }
    last = std::numeric_limits<double>::infinity();
    for (const double sigma : {0.6, 0.8, 1.2, 2.0, 4.0}) {
      const double e = eps(0.01, sigma, 500);
      EXPECT_LT(e, last) << name << " sigma " << sigma;
      last = e;
    }
  }
  // Histories compose: two halves spend what the whole does.
  RDPAccountant halves;
  halves.step(1.0, 0.01, 500);
  halves.step(2.0, 0.02, 300);
  halves.step(1.0, 0.01, 500);
  RDPAccountant whole;
  whole.step(1.0, 0.01, 1000);
  whole.step(2.0, 0.02, 300);
  EXPECT_NEAR(halves.spent(1e-5).epsilon, whole.spent(1e-5).epsilon, 1e-12);
  EXPECT_EQ(RDPAccountant().spent(1e-5).epsilon, 0.0);
}

TEST(AccountantTest, CalibrationInvertsTheAccountant) {
  const double q = 256.0 / 60000;
  const int64_t steps = 2350;
  const double sigma = calibrate_noise_multiplier(3.0, 1e-5, q, steps);
  EXPECT_LE(rdp_epsilon(q, sigma, steps), 3.0);
  EXPECT_GT(rdp_epsilon(q, sigma * 0.995, steps), 3.0);
  // Opacus' get_noise_multiplier gives 0.7428 (its tolerance is 0.01 in ε).
  EXPECT_NEAR(sigma, 0.7428, 0.01);
  const double prv_sigma = calibrate_noise_multiplier(3.0, 1e-5, q, steps, "prv");
  EXPECT_LT(prv_sigma, sigma);  // the tighter accountant needs less noise
  EXPECT_NEAR(prv_sigma, 0.6952, 0.015);
}

TEST(AccountantTest, BadInputIsRejected) {
  RDPAccountant a;
  EXPECT_BULWARK_ERROR(a.step(-1.0, 0.01), "noise multiplier");
  EXPECT_BULWARK_ERROR(a.step(1.0, 0.0), "sampling rate", "(0, 1]");
  EXPECT_BULWARK_ERROR(a.step(1.0, 1.5), "sampling rate");
  EXPECT_BULWARK_ERROR(a.step(1.0, 0.1, -1), "steps");
  EXPECT_BULWARK_ERROR(a.spent(0.0), "delta", "(0, 1)");
  EXPECT_BULWARK_ERROR(a.spent(1.0), "delta");
  EXPECT_BULWARK_ERROR(RDPAccountant({0.5}), "orders");
  EXPECT_BULWARK_ERROR(PRVAccountant(0.0), "epsilon_error");
  EXPECT_BULWARK_ERROR(make_accountant("moments"), "rdp", "prv");
  EXPECT_BULWARK_ERROR(calibrate_noise_multiplier(0.0, 1e-5, 0.01, 100), "target epsilon");
  EXPECT_BULWARK_ERROR(calibrate_noise_multiplier(1.0, 2.0, 0.01, 100), "delta");
  EXPECT_BULWARK_ERROR(calibrate_noise_multiplier(1.0, 1e-5, 0.01, 0), "steps");
  EXPECT_BULWARK_ERROR(subsampled_gaussian_rdp(0.1, 1.0, 1.0), "order");
}

}  // namespace
}  // namespace bulwark
