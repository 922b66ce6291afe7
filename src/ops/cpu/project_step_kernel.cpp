// CPU kernel of bulwark::project_step: one pass over the data for L∞, three streaming passes
// per sample for L2 (gradient norm, perturbation norm, write), parallel over samples.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "bulwark/core/norms.h"
#include "ops/project_step_args.h"

namespace bulwark::ops {
namespace {

// Clamp that propagates NaN like at::clamp.
template <typename T>
inline T clamp_nan(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// sign() that propagates NaN like at::sign.
template <typename T>
inline T sign_nan(T g) {
  return g > T(0) ? T(1) : (g < T(0) ? T(-1) : g);
}

template <typename scalar_t>
void linf_kernel(const scalar_t* x_adv, const scalar_t* grad, const scalar_t* x_orig,
                 scalar_t* out, int64_t numel, double step_size, double eps, double lower,
                 double upper) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto step = static_cast<opmath_t>(step_size);
  const auto e = static_cast<opmath_t>(eps);
  const auto lo = static_cast<opmath_t>(lower);
  const auto hi = static_cast<opmath_t>(upper);
  at::parallel_for(0, numel, 32768, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto x0 = static_cast<opmath_t>(x_orig[i]);
      const auto moved = static_cast<opmath_t>(x_adv[i]) + sign_nan(static_cast<opmath_t>(grad[i])) * step;
      const auto delta = clamp_nan<opmath_t>(moved - x0, -e, e);
      out[i] = static_cast<scalar_t>(clamp_nan<opmath_t>(x0 + delta, lo, hi));
    }
  });
}

template <typename scalar_t>
void l2_kernel(const scalar_t* x_adv, const scalar_t* grad, const scalar_t* x_orig,
               scalar_t* out, int64_t batch, int64_t dim, double step_size, double eps,
               double lower, double upper) {
  using opmath_t = at::opmath_type<scalar_t>;
  const auto lo = static_cast<opmath_t>(lower);
  const auto hi = static_cast<opmath_t>(upper);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1));
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const scalar_t* xa = x_adv + n * dim;
      const scalar_t* g = grad + n * dim;
      const scalar_t* x0 = x_orig + n * dim;
      scalar_t* o = out + n * dim;
      double grad_sq = 0;
      for (int64_t i = 0; i < dim; ++i) {
        const double gi = static_cast<double>(g[i]);
        grad_sq += gi * gi;
      }
      // Same floor as steepest_ascent_direction: a zero gradient gives no step.
      const auto scale =
          static_cast<opmath_t>(step_size / std::max(std::sqrt(grad_sq), 1e-12));
      double delta_sq = 0;
      for (int64_t i = 0; i < dim; ++i) {
        const auto d = static_cast<opmath_t>(xa[i]) + static_cast<opmath_t>(g[i]) * scale -
                       static_cast<opmath_t>(x0[i]);
        delta_sq += static_cast<double>(d) * static_cast<double>(d);
      }
      const double factor_d =
          std::isinf(eps) ? 1.0 : std::min(1.0, eps / std::max(std::sqrt(delta_sq), 1e-12));
      const auto factor = static_cast<opmath_t>(factor_d);
      for (int64_t i = 0; i < dim; ++i) {
        const auto base = static_cast<opmath_t>(x0[i]);
        const auto d = static_cast<opmath_t>(xa[i]) + static_cast<opmath_t>(g[i]) * scale - base;
        o[i] = static_cast<scalar_t>(clamp_nan<opmath_t>(base + d * factor, lo, hi));
      }
    }
  });
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
    if (norm == static_cast<int64_t>(Norm::Linf)) {
      linf_kernel<scalar_t>(xa.const_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(),
                            x0.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                            out.numel(), step_size, eps, lower, upper);
    } else {
      l2_kernel<scalar_t>(xa.const_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(),
                          x0.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), batch,
                          dim, step_size, eps, lower, upper);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CPU, m) { m.impl("project_step", &project_step_cpu); }

}  // namespace bulwark::ops
