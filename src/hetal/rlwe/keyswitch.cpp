#include "hetal/rlwe/keyswitch.h"

#include <stdexcept>
#include <string>

namespace hetal::rlwe {

using core::u128;
using core::u64;

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
    // Up to 8 products of 61-bit values fit a 128-bit accumulator below 2^126.
    constexpr std::size_t kBlock = 1024;
    u128 s0[kBlock], s1[kBlock];
    for (std::size_t c0 = 0; c0 < n; c0 += kBlock) {
      const std::size_t len = std::min(kBlock, n - c0);
      for (std::size_t k = 0; k < len; ++k) s0[k] = s1[k] = 0;
      for (std::size_t d = 0; d < D; ++d) {
        const u64* x = dec.digits[d].limb(i) + (perm ? 0 : c0);
        const u64* b = key.b[d].limb(ki) + c0;
        const u64* a = key.a[d].limb(ki) + c0;
        if (perm) {
          const std::uint32_t* p = perm + c0;
          for (std::size_t k = 0; k < len; ++k) {
            const u64 v = x[p[k]];
            s0[k] += static_cast<u128>(v) * b[k];
            s1[k] += static_cast<u128>(v) * a[k];
          }
        } else {
          for (std::size_t k = 0; k < len; ++k) {
            s0[k] += static_cast<u128>(x[k]) * b[k];
            s1[k] += static_cast<u128>(x[k]) * a[k];
          }
        }
        if ((d & 7) == 7 && d + 1 < D) {
          for (std::size_t k = 0; k < len; ++k) {
            s0[k] = m.reduce128(s0[k]);
            s1[k] = m.reduce128(s1[k]);
          }
        }
      }
      for (std::size_t k = 0; k < len; ++k) {
        o0[c0 + k] = m.reduce128(s0[k]);
        o1[c0 + k] = m.reduce128(s1[k]);
      }
    }
  }
}

void key_switch(const rns::RnsContext& ctx, const RnsPoly& c_ntt, const SwitchingKey& key,
                RnsPoly& out0, RnsPoly& out1) {
  const Decomposition dec = decompose(ctx, c_ntt);
  RnsPoly acc0, acc1;
  inner_product(ctx, dec, key, nullptr, acc0, acc1);
  ctx.mod_down(acc0, out0);
  ctx.mod_down(acc1, out1);
}

}  // namespace hetal::rlwe
