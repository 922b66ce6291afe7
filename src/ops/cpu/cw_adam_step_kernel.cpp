// CPU kernel of bulwark::cw_adam_step_: one pass that reads w, g, m, v and writes w, m, v
// (the reference makes five passes and two temporaries).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <cmath>

#include "ops/cw_adam_step_args.h"

namespace bulwark::ops {
namespace {

template <typename scalar_t>
void adam_chunk(scalar_t* __restrict w, const scalar_t* __restrict g, scalar_t* __restrict m,
                scalar_t* __restrict v, int64_t begin, int64_t end, scalar_t lr_corrected,
                scalar_t beta1, scalar_t beta2, scalar_t inv_sqrt_bias2, scalar_t eps) {
  for (int64_t i = begin; i < end; ++i) {
    const scalar_t gi = g[i];
    const scalar_t mi = beta1 * m[i] + (1 - beta1) * gi;
    const scalar_t vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr_corrected * mi / (std::sqrt(vi) * inv_sqrt_bias2 + eps);
  }
}

void cw_adam_step_cpu(const at::Tensor& w, const at::Tensor& grad, const at::Tensor& m,
                      const at::Tensor& v, double lr, double beta1, double beta2, double eps,
                      int64_t step) {
  detail::check_cw_adam_step_args(w, grad, m, v, lr, beta1, beta2, eps, step);
  if (w.numel() == 0) return;
  const auto g = grad.contiguous();
  const double bias1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias2 = 1 - std::pow(beta2, static_cast<double>(step));
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "cw_adam_step_cpu", [&] {
    auto* wp = w.mutable_data_ptr<scalar_t>();
    const auto* gp = g.const_data_ptr<scalar_t>();
    auto* mp = m.mutable_data_ptr<scalar_t>();
    auto* vp = v.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, w.numel(), 32768, [&](int64_t begin, int64_t end) {
      adam_chunk<scalar_t>(wp, gp, mp, vp, begin, end, static_cast<scalar_t>(lr / bias1),
                           static_cast<scalar_t>(beta1), static_cast<scalar_t>(beta2),
                           static_cast<scalar_t>(1 / std::sqrt(bias2)),
                           static_cast<scalar_t>(eps));
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CPU, m) { m.impl("cw_adam_step_", &cw_adam_step_cpu); }

}  // namespace bulwark::ops
