#include "bulwark/ops/median_filter.h"

#include <torch/library.h>
#include <torch/torch.h>

#include "bulwark/config.h"
#include "core/check.h"
#include "ops/median_filter_args.h"

namespace bulwark::ops {
namespace detail {

void check_median_filter_args(const at::Tensor& x, int64_t k) {
  bulwark::detail::check_float_tensor("median_filter", "x", x, 2);
  BULWARK_CHECK(k >= 1 && k <= kMaxMedianWindow,
                "median_filter: the window must be in [1, {}], got {}", kMaxMedianWindow, k);
  BULWARK_CHECK(k <= x.size(-2) && k <= x.size(-1),
                "median_filter: a {}x{} window does not fit images of {}x{}", k, k, x.size(-2),
                x.size(-1));
}

}  // namespace detail

namespace {

// Rows (or columns) read by each output position: [size, k] indices into [0, size).
at::Tensor window_indices(int64_t size, int64_t k, const c10::Device device) {
  auto index = at::arange(size, at::TensorOptions().dtype(at::kLong)).unsqueeze(1) +
               at::arange(k, at::TensorOptions().dtype(at::kLong)).unsqueeze(0) - k / 2;
  index = at::where(index < 0, -index - 1, index);
  index = at::where(index >= size, 2 * size - index - 1, index);
  return index.to(device);
}

}  // namespace

at::Tensor median_filter_reference(const at::Tensor& x, int64_t k) {
  detail::check_median_filter_args(x, k);
  const int64_t h = x.size(-2);
  const int64_t w = x.size(-1);
  auto lead = x.sizes().vec();
  lead.resize(lead.size() - 2);
  const auto planes = x.reshape({-1, h, w});  // [P, H, W]
  const int64_t p = planes.size(0);
  const auto rows = window_indices(h, k, x.device());
  const auto cols = window_indices(w, k, x.device());
  // [P, H*k, W] → [P, H*k, W*k] → [P, H, k, W, k] → [P, H, W, k*k]
  const auto windows = planes.index_select(1, rows.flatten())
                           .index_select(2, cols.flatten())
                           .view({p, h, k, w, k})
                           .permute({0, 1, 3, 2, 4})
                           .reshape({p, h, w, k * k});
  auto median = std::get<0>(windows.kthvalue((k * k) / 2 + 1, -1));
  auto shape = lead;
  shape.push_back(h);
  shape.push_back(w);
  return median.reshape(shape);
}

at::Tensor median_filter(const at::Tensor& x, int64_t k) {
  detail::check_median_filter_args(x, k);
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("bulwark::median_filter", "")
                             .typed<at::Tensor(const at::Tensor&, int64_t)>();
  return op.call(x, k);
}

TORCH_LIBRARY_FRAGMENT(bulwark, m) { m.def("median_filter(Tensor x, int k) -> Tensor"); }

TORCH_LIBRARY_IMPL(bulwark, CompositeExplicitAutograd, m) {
  m.impl("median_filter", &median_filter_reference);
}

#if !BULWARK_WITH_CUDA
namespace {
at::Tensor cuda_fallback(const at::Tensor& x, int64_t k) {
  TORCH_WARN_ONCE(
      "bulwark was built without CUDA kernels; median_filter runs its composite reference on "
      "CUDA tensors");
  return median_filter_reference(x, k);
}
}  // namespace

TORCH_LIBRARY_IMPL(bulwark, CUDA, m) { m.impl("median_filter", &cuda_fallback); }
#endif

}  // namespace bulwark::ops
