#pragma once
/// @file
/// The Square attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box
/// adversarial attack via random search"), L∞ and L2: random search over square windows that
/// only queries the model's outputs, so it also attacks models whose gradients are useless or
/// absent (any callable wrapped by Model::from_function). Run as in AutoAttack
/// (fra31/auto-attack, `SquareAttack`): one window and one random pattern per iteration,
/// shared by the whole batch; the margin loss; only the samples not fooled yet are queried.

#include <torch/arg.h>

#include <cstdint>

#include "bulwark/attacks/attack.h"

namespace bulwark {

struct SquareOptions {
  explicit SquareOptions(double eps) : eps_(eps) {}
  TORCH_ARG(double, eps);
  TORCH_ARG(Norm, norm) = Norm::Linf;
  /// Iterations of the random search, each one forward pass on the samples not yet fooled
  /// (5000, AutoAttack's setting).
  TORCH_ARG(int64_t, queries) = 5000;
  /// The fraction of pixels the first windows cover (p_init = 0.8).
  TORCH_ARG(double, p_init) = 0.8;
  TORCH_ARG(int64_t, restarts) = 1;
  /// Stretch the p schedule, written for 10,000 iterations, over `queries` (the Square
  /// paper's setting). Off in AutoAttack: the schedule is read at the raw iteration number.
  TORCH_ARG(bool, rescale_schedule) = false;
  /// Seeds the random search: the same seed gives the same result on CPU.
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(InputBox, box) = InputBox();
};

class Square : public Attack {
 public:
  /// @throws Error when eps < 0 or not finite, queries < 1, restarts < 1 or p_init outside
  /// (0, 1].
  explicit Square(SquareOptions options);
  std::string name() const override { return "square"; }
  double eps() const override { return options_.eps(); }
  Norm norm() const override { return options_.norm(); }
  bool targeted() const override { return false; }
  const InputBox& box() const override { return options_.box(); }
  std::unique_ptr<Attack> with_budget(double eps, bool early_stop) const override;
  const SquareOptions& options() const { return options_; }

  /// The fraction of pixels the window covers at iteration `it` (0-based): p_init halved at
  /// iterations 11, 51, 201, 501, 1001, 2001, 4001, 6001 and 8001 (of 10,000 when
  /// `rescale`, of the raw count otherwise).
  /// @throws Error when it < 0, queries < 1 or p_init outside (0, 1].
  static double fraction(int64_t it, double p_init, int64_t queries, bool rescale);
  /// The window's side for fraction p on an H×W image: round(√(p·H·W)), at least 1 (L∞) or
  /// at least 3 and odd (L2), at most min(H, W).
  /// @throws Error when p is outside (0, 1] or the image is empty.
  static int64_t side(double p, int64_t height, int64_t width, Norm norm);

 protected:
  /// @throws Error unless x is a batch of images [N, C, H, W] (H, W >= 5 for L2).
  AttackResult perform(Model& model, const at::Tensor& x, const at::Tensor& y) override;

 private:
  SquareOptions options_;
};

}  // namespace bulwark
