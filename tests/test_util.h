// Helpers shared by the tests: random inputs and error measures against plain arithmetic.
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <numbers>
#include <vector>

#include "hetal/core/prng.h"

namespace hetal::testing {

using Vec = std::vector<std::complex<double>>;

inline double unit_real(core::Prng& p) { return (p.next_u64() >> 11) * 0x1p-53; }  // [0, 1)

/// Uniform in the complex unit disk.
inline Vec random_unit_disk(core::Prng& p, std::size_t n) {
  Vec v(n);
  for (auto& x : v) x = std::polar(std::sqrt(unit_real(p)), 2 * std::numbers::pi * unit_real(p));
  return v;
}

/// Real and imaginary parts uniform in [-1, 1).
inline Vec random_box(core::Prng& p, std::size_t n) {
  Vec v(n);
  for (auto& x : v) x = {2 * unit_real(p) - 1, 2 * unit_real(p) - 1};
  return v;
}

/// Left rotation by k (negative: right).
inline Vec rotate_plain(const Vec& v, long long k) {
  const long long n = static_cast<long long>(v.size());
  Vec r(v.size());
  for (long long i = 0; i < n; ++i) r[i] = v[(((i + k) % n) + n) % n];
  return r;
}

/// Max abs error over the first want.size() entries.
inline double max_error(const Vec& got, const Vec& want) {
  double e = 0;
  for (std::size_t i = 0; i < want.size(); ++i) e = std::max(e, std::abs(got[i] - want[i]));
  return e;
}

/// Bit-reversal permutation of a power-of-two length vector.
inline Vec bit_reversed(const Vec& v) {
  const std::size_t n = v.size();
  int bits = 0;
  while ((std::size_t{1} << bits) < n) ++bits;
  Vec out(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t r = 0;
    for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
    out[r] = v[i];
  }
  return out;
}

}  // namespace hetal::testing
