// PRV accounting of the Poisson-subsampled Gaussian mechanism with a certified upper bound on ε:
// the privacy loss of each step is discretized pessimistically ("connect the dots"), composed
// by FFT, and every approximation left is bounded and added to δ.
//
// Why the bound holds. Y = log(dP/dQ) is one step's privacy loss under P, and
// δ(ε) = E[(1 − e^(ε − Y₁ − … − Y_k))₊]. Each cell [jh, (j+1)h] of the mesh sends its P-mass to
// its two ends in the proportions that keep its Q-mass E_P[e^−Y] too (connect the dots,
// Doroshenko et al. 2022), i.e. given Y the rounded Ỹ has E[e^−Ỹ | Y] = e^−Y. As a function of
// each Uᵢ = e^−Yᵢ, (1 − e^ε U₁⋯U_k)₊ is convex, so by Jensen's inequality (one step at a time,
// the steps being independent) the rounded losses give a δ(ε) at least the true one, for every
// ε and any number of steps. What is left is added to δ: the per-step mass outside the mesh, the
// composed mass that wraps around the circular FFT mesh (a Chernoff bound from the discretized
// steps' moment generating functions), and the FFT's round-off (the componentwise error bound
// of the radix-2 FFT, Higham 2002 §24.1, with a safety factor of 2; the per-step spectra, whose
// error the powering multiplies by the step count, are computed in long double).
//
// Add/remove adjacency has two directions: removing a sample (P = (1−q) N(0, σ²) + q N(1, σ²),
// Q = N(0, σ²)) and adding one (P and Q swapped). Both are composed and the larger δ is taken,
// as dp_accounting does; for q = 1 they coincide.
//
// The lower bound. Given Y, Ỹ − Y has mean in [0, b(h)], b(h) <= h²/8, and lies in an interval
// of width h, so by Hoeffding's inequality P(Σ Ỹ − Σ Y > K b(h) + t) <= exp(−2t²/(K h²)) = η over
// K steps: δ_true(ε) >= δ̃(ε + K b(h) + t) − η, which bounds the true ε from below.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <utility>
#include <vector>

#include "bulwark/privacy/accountant.h"
#include "privacy/accountant_math.h"
#include "privacy/prv_step.h"
#include "privacy/real_fourier_transform.h"

namespace bulwark {

namespace {

using detail::kInf;
using detail::multiply;
using detail::RealFourierTransform;
using detail::Block;
using detail::Direction;
using detail::StepLoss;
using detail::StepPmf;
using detail::TailBound;

// The mesh resolves one step's loss: spacing at most its standard deviation / 30.
constexpr double kResolution = 30;
// The δ slack η the mesh is sized for, so the certified bracket is about epsilon_error wide.
constexpr double kMeshEta = 1e-11;
// The lower bound's δ slack, relative to δ (Gopi et al. 2021 use δ/1000 too).
constexpr double kLowerEtaFraction = 1e-3;
constexpr int64_t kMinPoints = 1024;
constexpr int64_t kMaxPoints = int64_t{1} << 22;
constexpr double kUnitRoundoff = std::numeric_limits<double>::epsilon() / 2;
constexpr double kLongUnitRoundoff =
    static_cast<double>(std::numeric_limits<long double>::epsilon() / 2);


// The composition of one direction on the mesh: values v_i = (first + i) · mesh, with the
// suffix sums δ(ε) is read from (for values >= −mesh), and the slack that the upper and lower
// bounds add to δ. For v_{i−1} < ε <= v_i, δ(ε) = A_i − e^(ε − v_i) B_i with A_i = Σ_{j>=i} c_j
// and B_i = Σ_{j>=i} c_j e^(v_i − v_j) (scaled so that nothing under- or overflows at large ε).
struct ComposedLoss {
  double mesh = 0;
  int64_t first = 0;
  std::vector<double> mass_above;      // A_i
  std::vector<double> weighted_above;  // B_i
  double slack_upper = 0, slack_lower = 0;

  double value(size_t i) const {
    return static_cast<double>(first + static_cast<int64_t>(i)) * mesh;
  }
  double delta_from(size_t i, double epsilon) const {
    if (i >= mass_above.size()) return 0.0;
    return std::max(0.0, mass_above[i] - std::exp(epsilon - value(i)) * weighted_above[i]);
  }
  // δ(ε) of the discretized composition, ε >= 0.
  double delta(double epsilon) const {
    const auto n = mass_above.size();
    auto i = static_cast<size_t>(std::clamp<int64_t>(
        static_cast<int64_t>(std::floor(epsilon / mesh)) - first + 1, 0, static_cast<int64_t>(n)));
    while (i > 0 && value(i - 1) > epsilon) --i;
    while (i < n && value(i) <= epsilon) ++i;
    return delta_from(i, epsilon);
  }
  // The smallest ε >= 0 with δ(ε) <= target; ∞ when target <= 0.
  double epsilon(double target) const {
    if (target <= 0) return kInf;
    if (delta(0.0) <= target) return 0.0;
    // δ at the mesh values decreases; find the first value where it is <= target (the last
    // entry, past the top of the mesh, has δ = 0).
    size_t lo = 0, hi = mass_above.size() - 1;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (delta_from(mid + 1, value(mid)) <= target) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    // Solve A_hi − e^(ε − v_hi) B_hi = target on (v_{hi−1}, v_hi] (on [0, v_0] when hi = 0).
    const double floor_value = hi == 0 ? 0.0 : std::max(0.0, value(hi - 1));
    if (weighted_above[hi] <= 0) return floor_value;
    const double eps = value(hi) + std::log((mass_above[hi] - target) / weighted_above[hi]);
    return std::clamp(std::isfinite(eps) ? eps : floor_value, floor_value, value(hi));
  }
};

// z^k by repeated squaring: relative error at most about 6k u' (each complex product adds
// at most √2 γ₂ relative, and squaring doubles what is there).
std::complex<long double> power(std::complex<long double> z, int64_t k) {
  std::complex<long double> result(1, 0);
  for (; k > 0; k >>= 1) {
    if (k & 1) result = multiply(result, z);
    if (k > 1) z = multiply(z, z);
  }
  return result;
}

ComposedLoss compose(const std::vector<StepPmf>& steps, double mesh, const TailBound& upper,
                     const TailBound& lower, const RealFourierTransform& transform) {
  const auto n = transform.size();
  const auto points = static_cast<int64_t>(n);
  const auto window_first = static_cast<int64_t>(std::floor(lower.edge / mesh));
  const auto wrap_index = [&](int64_t value_index) {
    return static_cast<size_t>(((value_index % points) + points) % points);
  };
  const size_t half = n / 2 + 1;
  std::vector<std::complex<long double>> product(half, 1.0L);
  std::vector<double> log_abs_total(half, 0.0);
  std::vector<std::vector<double>> log_abs(steps.size(), std::vector<double>(half));
  double outside = 0;
  for (size_t m = 0; m < steps.size(); ++m) {
    const auto& step = steps[m];
    std::vector<double> circular(n, 0.0);
    for (size_t i = 0; i < step.pmf.size(); ++i) {
      circular[wrap_index(step.first + static_cast<int64_t>(i))] += step.pmf[i];
    }
    const auto x = transform(circular);
    const auto k = static_cast<double>(step.count);
    for (size_t w = 0; w < half; ++w) {
      log_abs[m][w] = std::log(std::max(static_cast<double>(std::abs(x[w])), 1e-300));
      log_abs_total[w] += k * log_abs[m][w];
      // Past e^−800 the factor is 0 in double, where the product ends up.
      product[w] = log_abs_total[w] < -800 ? 0 : multiply(product[w], power(x[w], step.count));
    }
    outside += k * step.outside;
  }
  std::vector<std::complex<double>> composed(product.begin(), product.end());
  auto composed_tensor =
      at::from_blob(composed.data(), {static_cast<int64_t>(half)}, at::kComplexDouble);
  const auto inverse = at::fft_irfft(composed_tensor, points).contiguous();
  const double* c = inverse.data_ptr<double>();

  // FFT round-off. Each forward transform's output is off by at most γ' = 2 · 7 log₂(n) u' (the
  // componentwise bound with a safety factor of 2, u' the unit round-off of long double; the
  // input sums to <= 1); raised to the power k that error grows to k γ' |X|^(k−1) · (the other
  // factors), the powers and products add about 6k u' relative, the rounding to double u. Its
  // effect on δ(ε) is Σ_ω |ΔZ_ω| |W_ω| / n, where W is the transform of δ's weights
  // w_i = (1 − e^(ε − v_i))₊ ∈ [0, 1), whose total variation around the circle is at most 2:
  // |W_ω| / n <= min(1, 1 / (n |sin(πω/n)|)). The inverse transform, in double, adds at most
  // min(γ Σ|Z|, √n γ ‖c‖₂) in ℓ₁.
  const double log_n = std::log2(static_cast<double>(n));
  const double gamma = 2 * 7 * log_n * kUnitRoundoff;
  const double gamma_long = 2 * 7 * log_n * kLongUnitRoundoff;
  double spectral = 0, sum_abs = 0;
  for (size_t w = 0; w < half; ++w) {
    const double abs_z = std::exp(log_abs_total[w]);
    double error =
        (kUnitRoundoff + 2 * kLongUnitRoundoff * static_cast<double>(steps.size())) * abs_z;
    for (size_t m = 0; m < steps.size(); ++m) {
      const auto k = static_cast<double>(steps[m].count);
      error += k * gamma_long * std::exp(log_abs_total[w] - log_abs[m][w]);
      error += abs_z * (6 * k + 2) * kLongUnitRoundoff;
    }
    const double sine =
        std::abs(std::sin(std::numbers::pi * static_cast<double>(w) / static_cast<double>(n)));
    const double weight = sine > 0 ? std::min(1.0, 1.0 / (static_cast<double>(n) * sine)) : 1.0;
    const double copies = (w == 0 || w == n / 2) ? 1.0 : 2.0;  // the spectrum's mirror half
    spectral += copies * weight * error;
    sum_abs += copies * abs_z;
  }
  double sum_squares = 0;
  for (size_t i = 0; i < n; ++i) sum_squares += c[i] * c[i];
  const double fft_error =
      spectral + std::min(gamma * sum_abs, 1.01 * std::sqrt(static_cast<double>(n)) * gamma *
                                               std::sqrt(sum_squares));

  // Composed mass beyond the window wraps around the circle: from above it lands low (lost to
  // the upper bound), from below it lands high (lost to the lower bound).
  const double top = static_cast<double>(window_first + points) * mesh;
  const double bottom = static_cast<double>(window_first - 1) * mesh;
  const double wrap_above = std::exp(std::min(0.0, -upper.lambda * top + upper.log_mgf));
  const double wrap_below = std::exp(std::min(0.0, lower.lambda * bottom + lower.log_mgf));

  // Suffix sums over the values >= −mesh, in window order, accumulated from the top.
  ComposedLoss out;
  out.mesh = mesh;
  out.first = std::max<int64_t>(window_first, -1);
  const auto kept = static_cast<size_t>(std::max<int64_t>(0, window_first + points - out.first));
  out.mass_above.assign(kept + 1, 0.0);
  out.weighted_above.assign(kept + 1, 0.0);
  const long double step_down = std::exp(-static_cast<long double>(mesh));
  long double mass = 0, weighted = 0;
  for (size_t i = kept; i-- > 0;) {
    const double ci = std::max(0.0, c[wrap_index(out.first + static_cast<int64_t>(i))]);
    mass += ci;
    weighted = ci + step_down * weighted;
    out.mass_above[i] = static_cast<double>(mass);
    out.weighted_above[i] = static_cast<double>(weighted);
  }
  out.slack_upper = outside + wrap_above + fft_error;
  out.slack_lower = wrap_below + fft_error;
  return out;
}

// Both directions of a history, composed on one mesh.
struct Composition {
  std::vector<ComposedLoss> directions;
  double mesh = 0;
  int64_t steps = 0;
};

// The history's identical mechanisms merged: (q, σ) → steps.
std::map<std::pair<double, double>, int64_t> runs_of(const std::vector<MechanismSteps>& history) {
  std::map<std::pair<double, double>, int64_t> runs;
  for (const auto& h : history) {
    if (h.steps > 0) runs[{h.sample_rate, h.noise_multiplier}] += h.steps;
  }
  return runs;
}

// Each direction's discretized steps and composed tail bounds on the chosen mesh.
struct Discretized {
  struct DirectionSteps {
    std::vector<StepPmf> steps;
    TailBound upper, lower;
    int64_t width;  // mesh points the composition needs
  };
  std::vector<DirectionSteps> directions;
  double mesh = 0;
  int64_t steps = 0;
};

Discretized discretize_history(const std::vector<MechanismSteps>& history, double epsilon_error) {
  const auto runs = runs_of(history);
  Discretized out;
  double resolution = kInf;
  bool subsampled = false;
  for (const auto& [key, count] : runs) {
    out.steps += count;
    resolution = std::min(resolution, StepLoss{key.first, key.second, Direction::kRemove}.stddev());
    subsampled = subsampled || key.first < 1;
  }
  const auto k = static_cast<double>(out.steps);
  // The Hoeffding term of the lower bound, h √(K log(1/η) / 2), is epsilon_error at η = 1e-11.
  out.mesh =
      std::min(epsilon_error / std::sqrt(k * std::log(1 / kMeshEta) / 2), resolution / kResolution);
  std::vector<Direction> directions{Direction::kRemove};
  if (subsampled) directions.push_back(Direction::kAdd);
  // A coarser mesh if the composition would not fit in kMaxPoints; the bound stays certified.
  for (int attempt = 0; attempt < 8; ++attempt) {
    out.directions.clear();
    int64_t width = 0;
    for (const auto direction : directions) {
      Discretized::DirectionSteps d;
      std::vector<std::pair<std::vector<Block>, int64_t>> blocks;
      for (const auto& [key, count] : runs) {
        d.steps.push_back(discretize(StepLoss{key.first, key.second, direction}, out.mesh, count));
        blocks.emplace_back(blocks_of(d.steps.back(), out.mesh), count);
      }
      d.upper = tail_bound(blocks, 1.0);
      d.lower = tail_bound(blocks, -1.0);
      d.width = static_cast<int64_t>(std::ceil(d.upper.edge / out.mesh)) -
                static_cast<int64_t>(std::floor(d.lower.edge / out.mesh)) + 1;
      for (const auto& s : d.steps) d.width = std::max<int64_t>(d.width, s.pmf.size());
      width = std::max(width, d.width);
      out.directions.push_back(std::move(d));
    }
    if (width <= kMaxPoints) break;
    out.mesh *= 1.01 * static_cast<double>(width) / static_cast<double>(kMaxPoints);
  }
  return out;
}

Composition compose_history(const std::vector<MechanismSteps>& history, double epsilon_error) {
  const auto discretized = discretize_history(history, epsilon_error);
  Composition out;
  out.mesh = discretized.mesh;
  out.steps = discretized.steps;
  int64_t points = kMinPoints;
  for (const auto& d : discretized.directions) {
    while (points < d.width) points *= 2;
  }
  const RealFourierTransform transform(static_cast<size_t>(points));
  for (const auto& d : discretized.directions) {
    out.directions.push_back(compose(d.steps, out.mesh, d.upper, d.lower, transform));
  }
  return out;
}

}  // namespace

PRVAccountant::PRVAccountant(double epsilon_error) : epsilon_error_(epsilon_error) {
  BULWARK_CHECK(std::isfinite(epsilon_error) && epsilon_error > 0,
                "PRVAccountant: epsilon_error must be finite and > 0, got {}", epsilon_error);
}

double PRVAccountant::delta_at(double epsilon) const {
  if (steps() == 0) return 0.0;
  const auto prv = compose_history(history_, epsilon_error_);
  double delta = 0;
  for (const auto& d : prv.directions) {
    delta = std::max(delta, d.delta(std::max(0.0, epsilon)) + d.slack_upper);
  }
  return std::min(1.0, delta);
}

double PRVAccountant::mesh() const {
  if (steps() == 0) return 0.0;
  return discretize_history(history_, epsilon_error_).mesh;
}

PrivacySpent PRVAccountant::spent(double delta) const {
  detail::check_delta("PRVAccountant::spent", delta);
  if (steps() == 0) return {.epsilon = 0.0, .delta = delta};
  const auto prv = compose_history(history_, epsilon_error_);
  const double eta = kLowerEtaFraction * delta;
  const auto k = static_cast<double>(prv.steps);
  // E[Ỹ − Y | Y] is the Jensen gap of −log over a two-point law on a cell of width h, at most
  // log((1 − e^−h)/h) + h/(1 − e^−h) − 1 <= h²/8; Hoeffding bounds the rest.
  const double shift =
      k * prv.mesh * prv.mesh / 8 + prv.mesh * std::sqrt(k * std::log(1 / eta) / 2);
  PrivacySpent out{.epsilon = 0.0, .delta = delta};
  double lower = 0;
  for (const auto& d : prv.directions) {
    out.epsilon = std::max(out.epsilon, d.epsilon(delta - d.slack_upper));
    out.epsilon_estimate = std::max(out.epsilon_estimate, d.epsilon(delta));
    lower = std::max(lower, d.epsilon(delta + eta + d.slack_lower));
  }
  out.epsilon_lower = std::max(0.0, lower - shift);
  return out;
}

std::unique_ptr<Accountant> PRVAccountant::clone() const {
  return std::make_unique<PRVAccountant>(*this);
}

}  // namespace bulwark
