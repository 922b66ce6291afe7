#pragma once
// Private to the PRV accountant: one step of the Poisson-subsampled Gaussian mechanism, its
// privacy loss discretized pessimistically on a mesh, and Chernoff bounds on the composed
// loss's tails (which size the mesh and bound the mass that wraps around it). Why these give a
// certified bound: prv_accountant.cpp.

#include <cstdint>
#include <utility>
#include <vector>

namespace bulwark::detail {

enum class Direction { kRemove, kAdd };

// One step's privacy loss Y = log(dP/dQ)(x), x ~ P, in one direction of add/remove adjacency.
// Removal: P = (1−q) N(0, σ²) + q N(1, σ²), Q = N(0, σ²), and Y = log(1 − q + q e^u) with
// u = (2x − 1) / (2σ²), increasing in x. Addition: P and Q swapped, Y the negative of that.
struct StepLoss {
  double q, sigma;
  Direction direction;

  double removal_loss(double x) const;
  // The x where the removal loss is z (−∞ at or below its lower bound log(1 − q)).
  double removal_inverse(double z) const;
  // P(Y <= y), P(Y > y), Q(Y <= y), Q(Y > y), each from the tail where it is accurate.
  struct Tails {
    double p_below, p_above, q_below, q_above;
  };
  Tails tails(double y) const;
  // The losses of x within kStepTailZ standard deviations of both means.
  std::pair<double, double> support() const;
  // Standard deviation of the removal loss by quadrature over x (the mesh's scale).
  double stddev() const;
};

// One step's discretized loss: pmf[i] is the mass at (first + i) · mesh; `outside` is the
// P-mass beyond both ends, left out of the pmf and added to δ for each of the `count` steps.
struct StepPmf {
  int64_t first = 0;
  std::vector<double> pmf;
  double outside = 0;
  int64_t count = 0;
};

StepPmf discretize(const StepLoss& loss, double mesh, int64_t count);

// Blocks of kBlock bins with their mass and value range: E[e^(λY)] <= Σ mass e^(λ · end), the
// end being the block's top for λ > 0 and its bottom for λ < 0.
struct Block {
  double mass, low, high;
};

std::vector<Block> blocks_of(const StepPmf& step, double mesh);

double log_mgf_bound(const std::vector<Block>& blocks, double lambda);

// Chernoff: P(S >= T) <= exp(−λT + K(λ)) for the composed sum S, K(λ) = Σ counts ·
// log E[e^(λY)] (sign +1), or P(S <= T) <= exp(λT + K(−λ)) (sign −1). `edge` is where the bound
// reaches kWrapMass, at the λ that brings it closest to the mean: (K(λ) + log(1/τ))/λ is
// unimodal in λ, minimized by golden-section search on log λ.
struct TailBound {
  double edge, lambda, log_mgf;
};

TailBound tail_bound(const std::vector<std::pair<std::vector<Block>, int64_t>>& steps,
                     double sign);

}  // namespace bulwark::detail
