// CPU kernel of bulwark::project_step: one pass over the data for L∞, three streaming passes
// per sample for L2 (gradient norm, perturbation norm, write), parallel over elements (L∞) or
// samples (L2).
//
// The loops are written branch-free (selects, not nested conditionals) with restrict pointers
// so that the compiler vectorizes them for whatever instruction set the library is built for;
// NaN still propagates as in at::sign and at::clamp, since a NaN fails every comparison.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "bulwark/core/norms.h"
#include "ops/project_step_args.h"

namespace bulwark::ops {
namespace {

template <typename T>
inline T clamp_select(T v, T lo, T hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

template <typename T>
inline T sign_select(T g) {
  const T s = static_cast<T>(g > T(0)) - static_cast<T>(g < T(0));
  return g != g ? g : s;
}

template <typename scalar_t>
void linf_chunk(const scalar_t* __restrict x_adv, const scalar_t* __restrict grad,
                const scalar_t* __restrict x_orig, scalar_t* __restrict out, int64_t begin,
                int64_t end, double step_size, double eps, double lower, double upper) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto step = static_cast<opmath_t>(step_size);
  const auto e = static_cast<opmath_t>(eps);
  const auto lo = static_cast<opmath_t>(lower);
  const auto hi = static_cast<opmath_t>(upper);
  for (int64_t i = begin; i < end; ++i) {
    const auto x0 = static_cast<opmath_t>(x_orig[i]);
    const auto moved =
        static_cast<opmath_t>(x_adv[i]) + sign_select(static_cast<opmath_t>(grad[i])) * step;
    const auto delta = clamp_select<opmath_t>(moved - x0, -e, e);
    out[i] = static_cast<scalar_t>(clamp_select<opmath_t>(x0 + delta, lo, hi));
  }
}

// Sum of squares with eight independent accumulators: vectorizable without reassociating a
// single running sum, and closer to the pairwise sums of the reference than one accumulator.
template <typename scalar_t, typename Term>
at::opmath_type<scalar_t> sum_of_squares(int64_t dim, const Term& term) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int64_t kLanes = 8;
  opmath_t acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const opmath_t v = term(i + l);
      acc[l] += v * v;
    }
  }
  for (; i < dim; ++i) {
    const opmath_t v = term(i);
    acc[0] += v * v;
  }
  opmath_t total = 0;
  for (int64_t l = 0; l < kLanes; ++l) total += acc[l];
  return total;
}

template <typename scalar_t>
void l2_sample(const scalar_t* __restrict xa, const scalar_t* __restrict g,
               const scalar_t* __restrict x0, scalar_t* __restrict o, int64_t dim,
               double step_size, double eps, double lower, double upper) {
  using opmath_t = at::opmath_type<scalar_t>;
  const double grad_norm = std::sqrt(static_cast<double>(
      sum_of_squares<scalar_t>(dim, [&](int64_t i) { return static_cast<opmath_t>(g[i]); })));
  // Same floor as steepest_ascent_direction: a zero gradient gives no step.
  const auto scale = static_cast<opmath_t>(step_size / std::max(grad_norm, 1e-12));
  const double delta_norm =
      std::sqrt(static_cast<double>(sum_of_squares<scalar_t>(dim, [&](int64_t i) {
        return static_cast<opmath_t>(xa[i]) + static_cast<opmath_t>(g[i]) * scale -
               static_cast<opmath_t>(x0[i]);
      })));
  const auto factor = static_cast<opmath_t>(
      std::isinf(eps) ? 1.0 : std::min(1.0, eps / std::max(delta_norm, 1e-12)));
  const auto lo = static_cast<opmath_t>(lower);
  const auto hi = static_cast<opmath_t>(upper);
  for (int64_t i = 0; i < dim; ++i) {
    const auto base = static_cast<opmath_t>(x0[i]);
    const auto d = static_cast<opmath_t>(xa[i]) + static_cast<opmath_t>(g[i]) * scale - base;
    o[i] = static_cast<scalar_t>(clamp_select<opmath_t>(base + d * factor, lo, hi));
  }
}

at::Tensor project_step_cpu(const at::Tensor& x_adv, const at::Tensor& grad,
                            const at::Tensor& x_orig, double step_size, double eps, int64_t norm,
                            double lower, double upper) {
  detail::check_project_step_args(x_adv, grad, x_orig, step_size, eps, norm, lower, upper);
  const auto xa = x_adv.contiguous();
  const auto g = grad.contiguous();
  const auto x0 = x_orig.contiguous();
  auto out = at::empty_like(x0, at::MemoryFormat::Contiguous);
  if (out.numel() == 0) return out;
  const int64_t batch = x0.size(0);
  const int64_t dim = x0.numel() / batch;
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x0.scalar_type(), "project_step_cpu", [&] {
    const auto* a = xa.const_data_ptr<scalar_t>();
    const auto* gp = g.const_data_ptr<scalar_t>();
    const auto* b = x0.const_data_ptr<scalar_t>();
    auto* o = out.mutable_data_ptr<scalar_t>();
    if (norm == static_cast<int64_t>(Norm::Linf)) {
      at::parallel_for(0, out.numel(), 32768, [&](int64_t begin, int64_t end) {
        linf_chunk<scalar_t>(a, gp, b, o, begin, end, step_size, eps, lower, upper);
      });
    } else {
      const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(dim, 1));
      at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
        for (int64_t n = begin; n < end; ++n) {
          const int64_t offset = n * dim;
          l2_sample<scalar_t>(a + offset, gp + offset, b + offset, o + offset, dim, step_size,
                              eps, lower, upper);
        }
      });
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CPU, m) { m.impl("project_step", &project_step_cpu); }

}  // namespace bulwark::ops
