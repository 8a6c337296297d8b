#include "hetal/rlwe/keyswitch.h"

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <string>

#include "hetal/rlwe/keygen.h"

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

constexpr std::size_t kRegenChunk = 1024;  // words of a_d regenerated at a time (L1-resident)

// mac_digits over words [k0, k0 + len) of the limb; a[d] points at word k0's value already.
void mac_range(std::size_t dn, const u64* const* x, const u64* const* b, const u64* const* a,
               const std::uint32_t* perm, std::size_t k0, std::size_t len, bool first,
               const core::Modulus& m, u64* o0, u64* o1) {
  const u64* xs[8];
  const u64* bs[8];
  for (std::size_t d = 0; d < dn; ++d) {
    xs[d] = perm ? x[d] : x[d] + k0;  // a permutation reads the whole source limb
    bs[d] = b[d] + k0;
  }
  const std::uint32_t* pk = perm ? perm + k0 : nullptr;
  o0 += k0;
  o1 += k0;
  using Mac = void (*)(const u64* const*, const u64* const*, const u64* const*,
                       const std::uint32_t*, std::size_t, bool, const core::Modulus&, u64*, u64*);
  static constexpr Mac kMac[] = {nullptr,       mac_digits<1>, mac_digits<2>,
                                 mac_digits<3>, mac_digits<4>, mac_digits<5>,
                                 mac_digits<6>, mac_digits<7>, mac_digits<8>};
  kMac[dn](xs, bs, a, pk, len, first, m, o0, o1);
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
  const bool seeded = key.seeded();
  const std::size_t L = ctx.q_count();
#pragma omp parallel
  {
    // A seeded key's uniform limbs, regenerated kRegenChunk words at a time per digit.
    core::WordVector regen(seeded ? 8 * kRegenChunk : 0);
#pragma omp for schedule(static)
    for (std::size_t i = 0; i < nq + K; ++i) {
      const std::size_t ki = i < nq ? i : key.nq + (i - nq);  // limb in the key
      const std::size_t global = i < nq ? i : L + (i - nq);   // its stream (sample_uniform_seeded)
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
        }
        const bool first = d0 == 0;
        if (!seeded) {
          for (std::size_t d = 0; d < dn; ++d) a[d] = key.a[d0 + d].limb(ki);
          mac_range(dn, x, b, a, perm, 0, n, first, m, o0, o1);
          continue;
        }
        std::array<std::optional<core::Prng>, 8> gen;
        for (std::size_t d = 0; d < dn; ++d) {
          gen[d].emplace(key.seed, uniform_stream(kTagSwitchingKey + d0 + d, global));
          a[d] = regen.data() + d * kRegenChunk;
        }
        for (std::size_t k0 = 0; k0 < n; k0 += kRegenChunk) {
          const std::size_t len = std::min(kRegenChunk, n - k0);
          for (std::size_t d = 0; d < dn; ++d)
            gen[d]->uniform_fill(m.value, regen.data() + d * kRegenChunk, len);
          mac_range(dn, x, b, a, perm, k0, len, first, m, o0, o1);
        }
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
