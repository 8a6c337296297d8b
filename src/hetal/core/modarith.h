// Word-size modular arithmetic for NTT-friendly primes q < 2^61.
// Shoup multiplication by a precomputed constant (NTL MulModPrecon), Barrett reduction of
// 128-bit products, and branch-free lazy reductions (Harvey 2014, "Faster arithmetic for
// number-theoretic transforms").
#pragma once

#include <cstdint>

namespace hetal::core {

using u64 = std::uint64_t;
using i64 = std::int64_t;
using u128 = unsigned __int128;

/// Largest prime size the engine accepts: lazy NTT values live in [0, 4q) and must fit 64 bits
/// with headroom, so q < 2^61.
inline constexpr int kMaxPrimeBits = 61;

inline u64 mul_hi(u64 a, u64 b) { return static_cast<u64>((static_cast<u128>(a) * b) >> 64); }

/// x - q if x >= q, else x; branch-free.
inline u64 reduce_once(u64 x, u64 q) {
  const u64 y = x - q;
  return y + (q & (0 - (y >> 63)));
}

/// A prime modulus with its Barrett constants.
struct Modulus {
  u64 value = 0;
  u64 ratio_hi = 0;  // floor(2^128 / q), high word
  u64 ratio_lo = 0;  // floor(2^128 / q), low word
  u64 ratio64 = 0;   // floor(2^64 / q)
  int bits = 0;

  Modulus() = default;
  explicit Modulus(u64 q) : value(q) {
    const u128 r =
        (~static_cast<u128>(0)) / q;  // floor((2^128 - 1) / q) == floor(2^128/q) for odd q
    ratio_hi = static_cast<u64>(r >> 64);
    ratio_lo = static_cast<u64>(r);
    ratio64 = ~u64{0} / q;
    bits = 64 - __builtin_clzll(q);
  }

  /// x mod q for any 64-bit x.
  u64 reduce(u64 x) const {
    const u64 r = x - mul_hi(x, ratio64) * value;  // in [0, 2q)
    return reduce_once(r, value);
  }

  /// x mod q for x < 2^126, result in [0, q). Barrett with a two-word ratio; estimate is
  /// off by at most one, so one conditional subtraction suffices.
  u64 reduce128(u128 x) const {
    const u64 x0 = static_cast<u64>(x), x1 = static_cast<u64>(x >> 64);
    const u128 mid = static_cast<u128>(x0) * ratio_hi + mul_hi(x0, ratio_lo);
    const u128 mid2 = static_cast<u128>(x1) * ratio_lo + static_cast<u64>(mid);
    const u64 qhat = x1 * ratio_hi + static_cast<u64>(mid >> 64) + static_cast<u64>(mid2 >> 64);
    return reduce_once(x0 - qhat * value, value);
  }

  u64 mul(u64 a, u64 b) const { return reduce128(static_cast<u128>(a) * b); }
  u64 add(u64 a, u64 b) const { return reduce_once(a + b, value); }
  u64 sub(u64 a, u64 b) const { return reduce_once(a + value - b, value); }
  u64 neg(u64 a) const { return reduce_once(value - a, value); }

  u64 pow(u64 base, u64 e) const {
    u64 r = 1;
    base = reduce(base);
    while (e) {
      if (e & 1) r = mul(r, base);
      base = mul(base, base);
      e >>= 1;
    }
    return r;
  }
  /// Inverse by Fermat (q prime).
  u64 inv(u64 a) const { return pow(a, value - 2); }

  /// Residue of a signed integer.
  u64 from_signed(i64 x) const {
    return x >= 0 ? reduce(static_cast<u64>(x)) : neg(reduce(static_cast<u64>(-(x + 1)) + 1));
  }
  /// Centered representative in (-q/2, q/2].
  i64 to_centered(u64 x) const {
    return x > (value >> 1) ? static_cast<i64>(x) - static_cast<i64>(value) : static_cast<i64>(x);
  }
};

/// A constant w mod q with its Shoup quotient floor(w * 2^64 / q).
struct ShoupConst {
  u64 w = 0;
  u64 wq = 0;
  ShoupConst() = default;
  ShoupConst(u64 w_, u64 q) : w(w_), wq(static_cast<u64>((static_cast<u128>(w_) << 64) / q)) {}
};

/// x * w mod q in [0, 2q) for any 64-bit x (w < q).
inline u64 mul_shoup_lazy(u64 x, const ShoupConst& c, u64 q) {
  return x * c.w - mul_hi(x, c.wq) * q;
}
inline u64 mul_shoup_lazy(u64 x, u64 w, u64 wq, u64 q) { return x * w - mul_hi(x, wq) * q; }
inline u64 mul_shoup(u64 x, const ShoupConst& c, u64 q) {
  return reduce_once(mul_shoup_lazy(x, c, q), q);
}

}  // namespace hetal::core
