#include "privacy/real_fourier_transform.h"

#include <ATen/ATen.h>

#include <cmath>
#include <complex>
#include <limits>
#include <numbers>
#include <vector>

#include "test_util.h"

namespace bulwark::detail {
namespace {

// The DFT by its definition, in long double with each twiddle computed from its own angle.
std::vector<std::complex<long double>> direct_dft(const std::vector<double>& x) {
  const size_t n = x.size();
  std::vector<std::complex<long double>> out(n / 2 + 1);
  for (size_t w = 0; w <= n / 2; ++w) {
    for (size_t j = 0; j < n; ++j) {
      const long double angle = -2 * std::numbers::pi_v<long double> *
                                static_cast<long double>((j * w) % n) / static_cast<long double>(n);
      out[w] += static_cast<long double>(x[j]) * std::polar(1.0L, angle);
    }
  }
  return out;
}

TEST(RealFourierTransformTest, MatchesTheDefinitionWithinItsErrorBound) {
  // A probability vector, as the accountant transforms: the componentwise error is at most
  // 2 · 7 log2(n) u' (u' long double's unit round-off) against the exact DFT.
  for (const size_t n : {size_t{8}, size_t{64}, size_t{1024}}) {
    auto x = at::rand({static_cast<int64_t>(n)}, at::kDouble);
    x = x / x.sum();
    const std::vector<double> values(x.data_ptr<double>(), x.data_ptr<double>() + n);
    const auto fast = RealFourierTransform(n)(values);
    const auto exact = direct_dft(values);
    ASSERT_EQ(fast.size(), n / 2 + 1);
    // The direct sum is itself off by about n u' per entry.
    const long double bound = (14 * std::log2(static_cast<long double>(n)) + 2 * n) *
                              std::numeric_limits<long double>::epsilon() / 2;
    for (size_t w = 0; w <= n / 2; ++w) {
      EXPECT_LE(std::abs(fast[w] - exact[w]), bound) << "n " << n << " frequency " << w;
    }
    // And it agrees with LibTorch's double-precision rfft to double precision.
    const auto reference = at::fft_rfft(x).contiguous();
    const auto* r = reference.data_ptr<c10::complex<double>>();
    for (size_t w = 0; w <= n / 2; ++w) {
      EXPECT_NEAR(static_cast<double>(fast[w].real()), r[w].real(), 1e-15);
      EXPECT_NEAR(static_cast<double>(fast[w].imag()), r[w].imag(), 1e-15);
    }
  }
}

TEST(RealFourierTransformTest, AnImpulseGivesThePureTwiddle) {
  const size_t n = 4096;
  for (const size_t j : {size_t{0}, size_t{1}, size_t{777}, n - 1}) {
    std::vector<double> x(n, 0.0);
    x[j] = 1.0;
    const auto spectrum = RealFourierTransform(n)(x);
    for (const size_t w : {size_t{0}, size_t{1}, size_t{100}, n / 4, n / 2}) {
      const long double angle = -2 * std::numbers::pi_v<long double> *
                                static_cast<long double>((j * w) % n) / static_cast<long double>(n);
      EXPECT_LE(std::abs(spectrum[w] - std::polar(1.0L, angle)), 1e-17L) << j << " " << w;
    }
  }
}

}  // namespace
}  // namespace bulwark::detail
