#pragma once
/// @file
/// Privacy accounting for DP-SGD: the privacy loss of the Poisson-subsampled Gaussian mechanism
/// composed over training steps, by Rényi DP (Mironov 2017; Mironov, Talwar & Zhang 2019) with
/// the improved RDP → (ε, δ) conversion of Balle et al. 2020, or by the privacy loss random
/// variable (PRV) accountant of Gopi, Lee & Wutschitz 2021; and the noise calibration that
/// picks σ for a target (ε, δ).
///
/// All accountants describe add/remove-one-sample adjacency with Poisson sampling at rate q,
/// as Opacus does, and match its values (see tests/privacy/accountant_test.cpp).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bulwark {

/// ε and the order or method it came from.
struct PrivacySpent {
  double epsilon = 0.0;
  double delta = 0.0;
  /// The Rényi order that gave the smallest ε (RDP only; 0 for PRV).
  double best_order = 0.0;
};

/// One run of identical steps: `steps` noisy steps at noise multiplier σ, sampling rate q.
struct MechanismSteps {
  double noise_multiplier = 0.0;
  double sample_rate = 0.0;
  int64_t steps = 0;
};

/// Adds steps and answers ε(δ). Histories of different (σ, q) compose.
class Accountant {
 public:
  virtual ~Accountant() = default;
  /// Records `steps` steps of the subsampled Gaussian mechanism.
  /// @throws Error when σ <= 0 or not finite, q outside (0, 1], or steps < 0.
  void step(double noise_multiplier, double sample_rate, int64_t steps = 1);
  /// The ε spent so far at this δ (0 before any step). @throws Error when δ is outside (0, 1).
  virtual PrivacySpent spent(double delta) const = 0;
  /// "rdp" or "prv".
  virtual std::string name() const = 0;
  const std::vector<MechanismSteps>& history() const { return history_; }
  int64_t steps() const;
  virtual std::unique_ptr<Accountant> clone() const = 0;

 protected:
  std::vector<MechanismSteps> history_;
};

/// Rényi DP accountant. Orders: 1.1, 1.2, …, 10.9 and 12, 13, …, 63 (Opacus' defaults), so
/// both give the same ε; integer orders use the exact binomial expansion, fractional ones the
/// two-series expansion of Mironov et al. 2019 (Section 3.3).
class RDPAccountant : public Accountant {
 public:
  RDPAccountant();
  /// @throws Error when an order is <= 1 or not finite, or the list is empty.
  explicit RDPAccountant(std::vector<double> orders);
  PrivacySpent spent(double delta) const override;
  std::string name() const override { return "rdp"; }
  std::unique_ptr<Accountant> clone() const override;
  const std::vector<double>& orders() const { return orders_; }

 private:
  std::vector<double> orders_;
};

/// The Rényi divergence of order α between the subsampled Gaussian mechanism's output
/// distributions for one step: log E[(P/Q)^α] / (α − 1). q = 1 gives α / (2σ²).
/// @throws Error when α <= 1, σ <= 0 or q outside (0, 1].
double subsampled_gaussian_rdp(double sample_rate, double noise_multiplier, double order);

/// PRV accountant: discretizes each step's privacy loss random variable on a uniform mesh,
/// composes the steps exactly by FFT and reads δ(ε) off the result; ε is then found by
/// bisection. The mesh is chosen so the discretization moves ε by at most about
/// `epsilon_error` (Gopi et al.'s error bound grows as √steps · mesh).
class PRVAccountant : public Accountant {
 public:
  /// @throws Error when epsilon_error <= 0.
  explicit PRVAccountant(double epsilon_error = 0.01);
  PrivacySpent spent(double delta) const override;
  std::string name() const override { return "prv"; }
  std::unique_ptr<Accountant> clone() const override;
  /// δ at a given ε for the history so far (the curve the accountant inverts).
  double delta_at(double epsilon) const;

 private:
  double epsilon_error_;
};

/// "rdp" or "prv". @throws Error otherwise.
std::unique_ptr<Accountant> make_accountant(const std::string& name);

/// The smallest noise multiplier σ (to 0.1 % relative) for which `steps` steps at sampling
/// rate q spend at most `target_epsilon` at `delta` under the accountant `accountant`
/// ("rdp" or "prv").
/// @throws Error on target_epsilon <= 0, δ outside (0, 1), q outside (0, 1], steps < 1, or when
/// even σ = 10⁴ does not reach the target.
double calibrate_noise_multiplier(double target_epsilon, double delta, double sample_rate,
                                  int64_t steps, const std::string& accountant = "rdp");

}  // namespace bulwark
