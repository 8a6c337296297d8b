#include "hetal/rlwe/keyswitch.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace hetal::rlwe {

using core::u128;
using core::u64;

namespace {
// o0 += sum_d x_d[perm] * b_d, o1 += sum_d x_d[perm] * a_d for D digits, with the 128-bit
// accumulators in registers (a runtime digit loop would keep them in memory).
template <int D>
void mac_digits(const u64* const* x, const u64* const* b, const u64* const* a,
                const std::uint32_t* perm, std::size_t n, bool first, const core::Modulus& m,
                u64* o0, u64* o1) {
  constexpr std::size_t kAhead = 48;  // the permuted reads miss the cache: prefetch them
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t src = perm ? perm[k] : k;
    if (perm && k + kAhead < n) {
#pragma GCC unroll 8
      for (int d = 0; d < D; ++d) __builtin_prefetch(x[d] + perm[k + kAhead]);
    }
    u128 s0 = first ? 0 : o0[k], s1 = first ? 0 : o1[k];
#pragma GCC unroll 8
    for (int d = 0; d < D; ++d) {
      const u64 v = x[d][src];
      s0 += static_cast<u128>(v) * b[d][k];
      s1 += static_cast<u128>(v) * a[d][k];
    }
    o0[k] = m.reduce128(s0);
    o1[k] = m.reduce128(s1);
  }
}
}  // namespace

Decomposition decompose(const rns::RnsContext& ctx, const RnsPoly& c_ntt) {
  Decomposition dec;
  dec.nq = c_ntt.nq();
  ctx.decompose(c_ntt, dec.digits);
  return dec;
}

void inner_product(const rns::RnsContext& ctx, const Decomposition& dec, const SwitchingKey& key,
                   const std::uint32_t* perm, RnsPoly& acc0, RnsPoly& acc1) {
  const std::size_t nq = dec.nq, K = ctx.p_count(), n = ctx.n(), D = dec.digits.size();
  if (key.nq < nq) {
    throw std::invalid_argument("switching key covers " + std::to_string(key.nq) +
                                " limbs but the ciphertext has " + std::to_string(nq) +
                                ": generate the key at a higher level");
  }
  if (key.digits() < D) throw std::invalid_argument("switching key has too few digits");
  acc0.reshape(n, nq, K);
  acc1.reshape(n, nq, K);
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < nq + K; ++i) {
    const std::size_t ki = i < nq ? i : key.nq + (i - nq);  // limb in the key
    const core::Modulus& m = ctx.mod_of(nq, i);
    u64* o0 = acc0.limb(i);
    u64* o1 = acc1.limb(i);
    // Accumulate up to 8 digits in 128-bit registers (8 products of 61-bit values stay below
    // 2^126), then one Barrett reduction per output word.
    for (std::size_t d0 = 0; d0 < D; d0 += 8) {
      const std::size_t dn = std::min<std::size_t>(8, D - d0);
      const u64* x[8];
      const u64* b[8];
      const u64* a[8];
      for (std::size_t d = 0; d < dn; ++d) {
        x[d] = dec.digits[d0 + d].limb(i);
        b[d] = key.b[d0 + d].limb(ki);
        a[d] = key.a[d0 + d].limb(ki);
      }
      const bool first = d0 == 0;
      switch (dn) {
        case 1:
          mac_digits<1>(x, b, a, perm, n, first, m, o0, o1);
          break;
        case 2:
          mac_digits<2>(x, b, a, perm, n, first, m, o0, o1);
          break;
        case 3:
          mac_digits<3>(x, b, a, perm, n, first, m, o0, o1);
          break;
        case 4:
          mac_digits<4>(x, b, a, perm, n, first, m, o0, o1);
          break;
        case 5:
          mac_digits<5>(x, b, a, perm, n, first, m, o0, o1);
          break;
        case 6:
          mac_digits<6>(x, b, a, perm, n, first, m, o0, o1);
          break;
        case 7:
          mac_digits<7>(x, b, a, perm, n, first, m, o0, o1);
          break;
        default:
          mac_digits<8>(x, b, a, perm, n, first, m, o0, o1);
          break;
      }
    }
  }
}

void key_switch(const rns::RnsContext& ctx, const RnsPoly& c_ntt, const SwitchingKey& key,
                RnsPoly& out0, RnsPoly& out1) {
  const Decomposition dec = decompose(ctx, c_ntt);
  RnsPoly acc0, acc1;
  inner_product(ctx, dec, key, nullptr, acc0, acc1);
  RnsPoly* xs[] = {&acc0, &acc1};
  RnsPoly* os[] = {&out0, &out1};
  const bool add[] = {false, false};
  ctx.mod_down_many(xs, os, add, 2);
}

}  // namespace hetal::rlwe
