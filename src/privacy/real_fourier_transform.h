#pragma once
// The discrete Fourier transform of a real sequence in long double, for the PRV accountant: its
// per-step spectra are raised to the power of the step count, which multiplies their round-off
// by that count, so they get 11 more bits than at::fft's double (on x86-64; where long double
// is double, the accountant's error bound, which uses long double's epsilon, grows to match).

#include <complex>
#include <cstddef>
#include <vector>

namespace bulwark::detail {

/// a · b without C99 Annex G's infinity handling (every value here is finite).
inline std::complex<long double> multiply(std::complex<long double> a,
                                          std::complex<long double> b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

/// X_ω = Σ_j x_j e^(−2πi jω/n), ω = 0 … n/2, for real x of length n, a power of two >= 8.
/// Radix-2 on the n/2 complex numbers x_2j + i x_2j+1, then split into the real sequence's
/// spectrum; the twiddle factors are computed once, from cos and sin on [0, π/4] (not by a
/// recurrence), so the componentwise error bound of the radix-2 FFT (Higham 2002 §24.1)
/// applies.
class RealFourierTransform {
 public:
  using Complex = std::complex<long double>;

  explicit RealFourierTransform(size_t n);
  size_t size() const { return n_; }
  std::vector<Complex> operator()(const std::vector<double>& x) const;

 private:
  size_t n_;
  std::vector<Complex> twiddle_;  // e^(−2πik/n), k < n/2
};

}  // namespace bulwark::detail
