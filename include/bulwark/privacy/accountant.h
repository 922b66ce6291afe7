#pragma once
/// @file
/// Privacy accounting for DP-SGD: the privacy loss of the Poisson-subsampled Gaussian mechanism
/// composed over training steps, by Rényi DP (Mironov 2017; Mironov, Talwar & Zhang 2019) with
/// the improved RDP → (ε, δ) conversion of Balle et al. 2020, or by the privacy loss random
/// variable (PRV) accountant of Gopi, Lee & Wutschitz 2021 made pessimistic; and the noise
/// calibration that picks σ for a target (ε, δ).
///
/// All accountants describe add/remove-one-sample adjacency with Poisson sampling at rate q.
/// Both return an upper bound on the ε of that mechanism: RDP's conversion is one by
/// construction (it matches Opacus, see tests/privacy/accountant_test.cpp), and PRV's is
/// certified (never below dp_accounting's pessimistic PLD value, within its stated error).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bulwark {

/// The ε spent at a δ, and what else the accountant knows about it.
struct PrivacySpent {
  /// An upper bound on the true ε: the privacy guarantee. Calibration and the Trainer's ε budget
  /// use this value.
  double epsilon = 0.0;
  double delta = 0.0;
  /// The Rényi order that gave the smallest ε (RDP only; 0 for PRV).
  double best_order = 0.0;
  /// The accountant's estimate of the true ε, without the safety margins: for PRV the ε of the
  /// pessimistically discretized composition before the slack terms are added (between
  /// `epsilon_lower` and `epsilon`); for RDP equal to `epsilon`.
  double epsilon_estimate = 0.0;
  /// A certified lower bound on the true ε (PRV; 0 for RDP, which bounds only from above): the
  /// true ε lies in [epsilon_lower, epsilon], and `epsilon − epsilon_lower` is the PRV
  /// accountant's stated error.
  double epsilon_lower = 0.0;
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
  /// The ε spent so far at this δ (0 before any step); `epsilon` is an upper bound on the true
  /// ε. @throws Error when δ is outside (0, 1).
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

/// PRV accountant (Gopi, Lee & Wutschitz 2021) with a certified upper bound on ε.
///
/// Each step's privacy loss random variable, in both directions of add/remove adjacency, is
/// discretized on a uniform mesh pessimistically: each cell's mass goes to its two ends in the
/// proportions that keep both its mass and E[e^−Y] ("connect the dots", Doroshenko et al. 2022),
/// which by Jensen's inequality gives a δ(ε) at least the true one for every ε, also after
/// composition. The steps are composed by FFT; the per-step mass beyond the mesh, the composed
/// mass that could wrap around it (a Chernoff bound) and the FFT's round-off (a componentwise
/// error bound) are added to δ; the larger δ of the two directions counts, as in dp_accounting.
///
/// `spent(δ).epsilon` is the certified upper bound, `epsilon_estimate` the same computation
/// without the added slack, and `epsilon_lower` a certified lower bound (Hoeffding's inequality
/// on the rounding, as in Gopi et al.), so the true ε is in [epsilon_lower, epsilon]. The mesh
/// is chosen so that this bracket is about `epsilon_error` wide for δ down to about 1e-8
/// (it is at most about 2²² points; a history that needs more gets a coarser mesh and a wider
/// bracket, still certified); the upper bound itself is much closer to the true ε than that,
/// typically within 1e-5 relative at δ = 1e-5.
class PRVAccountant : public Accountant {
 public:
  /// @param epsilon_error  target width of the bracket [epsilon_lower, epsilon]; 0.01 as
  ///   Opacus' `eps_error`.
  /// @throws Error when epsilon_error <= 0.
  explicit PRVAccountant(double epsilon_error = 0.01);
  /// The certified upper bound on ε at δ, with the estimate and the lower bound beside it.
  /// ∞ when the slack alone exceeds δ. @throws Error when δ is outside (0, 1).
  PrivacySpent spent(double delta) const override;
  std::string name() const override { return "prv"; }
  std::unique_ptr<Accountant> clone() const override;
  /// A certified upper bound on δ at a given ε >= 0 for the history so far (the curve `spent`
  /// inverts, slack included).
  double delta_at(double epsilon) const;
  /// The spacing of the loss mesh used for the history so far (0 before any step): the
  /// connect-the-dots composition on it equals dp_accounting's PLD accountant with this
  /// `value_discretization_interval`, up to the slack.
  double mesh() const;

 private:
  double epsilon_error_;
};

/// "rdp" or "prv". @throws Error otherwise.
std::unique_ptr<Accountant> make_accountant(const std::string& name);

/// The smallest noise multiplier σ (to 0.1 % relative) for which `steps` steps at sampling
/// rate q spend at most `target_epsilon` at `delta` under the accountant `accountant`
/// ("rdp" or "prv"), judged by the upper bound `PrivacySpent::epsilon`.
/// @throws Error on target_epsilon <= 0, δ outside (0, 1), q outside (0, 1], steps < 1, or when
/// even σ = 10⁴ does not reach the target.
double calibrate_noise_multiplier(double target_epsilon, double delta, double sample_rate,
                                  int64_t steps, const std::string& accountant = "rdp");

}  // namespace bulwark
