// The real FFT in long double behind the PRV accountant: radix-2, twiddles computed once.
#include "privacy/real_fourier_transform.h"

#include <cmath>
#include <numbers>

namespace bulwark::detail {

RealFourierTransform::RealFourierTransform(size_t n) : n_(n), twiddle_(n / 2) {
  // cos and sin on [0, π/4], the rest of the half circle by its symmetries.
  const long double turn = 2 * std::numbers::pi_v<long double> / static_cast<long double>(n);
  const size_t eighth = n / 8, quarter = n / 4;
  std::vector<long double> cosine(eighth + 1), sine(eighth + 1);
  for (size_t k = 0; k <= eighth; ++k) {
    cosine[k] = std::cos(turn * static_cast<long double>(k));
    sine[k] = std::sin(turn * static_cast<long double>(k));
  }
  for (size_t k = 0; k < n / 2; ++k) {
    long double c, s;
    if (k <= eighth) {
      c = cosine[k], s = sine[k];
    } else if (k <= quarter) {
      c = sine[quarter - k], s = cosine[quarter - k];
    } else if (k <= quarter + eighth) {
      c = -sine[k - quarter], s = cosine[k - quarter];
    } else {
      c = -cosine[n / 2 - k], s = sine[n / 2 - k];
    }
    twiddle_[k] = {c, -s};
  }
}

std::vector<RealFourierTransform::Complex> RealFourierTransform::operator()(
    const std::vector<double>& x) const {
  const size_t m = n_ / 2;
  std::vector<long double> re(m), im(m);
  // z_j = x_2j + i x_2j+1 in bit-reversed order: r counts j's reversal up, carrying downwards.
  for (size_t j = 0, r = 0; j < m; ++j) {
    re[r] = x[2 * j];
    im[r] = x[2 * j + 1];
    size_t bit = m >> 1;
    for (; bit > 0 && (r & bit) != 0; bit >>= 1) r ^= bit;
    r |= bit;
  }
  for (size_t len = 2; len <= m; len <<= 1) {
    const size_t stride = n_ / len;  // twiddle e^(−2πi j/len) = twiddle_[j · stride]
    for (size_t start = 0; start < m; start += len) {
      for (size_t j = 0; j < len / 2; ++j) {
        const auto& w = twiddle_[j * stride];
        const size_t a = start + j, b = a + len / 2;
        const long double vr = re[b] * w.real() - im[b] * w.imag();
        const long double vi = re[b] * w.imag() + im[b] * w.real();
        re[b] = re[a] - vr;
        im[b] = im[a] - vi;
        re[a] += vr;
        im[a] += vi;
      }
    }
  }
  // X_ω = (Z_ω + conj Z_{m−ω}) / 2 − i e^(−2πiω/n) (Z_ω − conj Z_{m−ω}) / 2.
  std::vector<Complex> out(m + 1);
  for (size_t w = 0; w <= m; ++w) {
    const Complex z(re[w % m], im[w % m]), mirror(re[(m - w) % m], -im[(m - w) % m]);
    const Complex t = w < m ? twiddle_[w] : Complex(-1, 0);
    const Complex odd = multiply(t, z - mirror);  // times −i/2 below
    out[w] = {(z.real() + mirror.real() + odd.imag()) / 2,
              (z.imag() + mirror.imag() - odd.real()) / 2};
  }
  return out;
}

}  // namespace bulwark::detail
