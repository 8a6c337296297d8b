#include "hetal/rlwe/keygen.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "hetal/ring/automorphism.h"

namespace hetal::rlwe {

using core::u64;

namespace {
void check_nq(const rns::RnsContext& ctx, std::size_t nq) {
  if (nq == 0 || nq > ctx.q_count()) {
    throw std::invalid_argument("key level out of range: " + std::to_string(nq) +
                                " limbs, chain has " + std::to_string(ctx.q_count()));
  }
}
}  // namespace

void sample_uniform_seeded(const rns::RnsContext& ctx, const core::Seed& seed, std::uint64_t tag,
                           RnsPoly& out, std::size_t nq, bool with_p) {
  const std::size_t K = with_p ? ctx.p_count() : 0, n = ctx.n(), L = ctx.q_count();
  out.reshape(n, nq, K);
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < nq + K; ++i) {
    const std::size_t global = i < nq ? i : L + (i - nq);
    sample_uniform_limb(seed, tag, global, ctx.mod_of(nq, i).value, out.limb(i), n);
  }
}

void sample_uniform_limb(const core::Seed& seed, std::uint64_t tag, std::size_t global,
                         std::uint64_t q, std::uint64_t* out, std::size_t n) {
  core::Prng prng(seed, uniform_stream(tag, global));
  prng.uniform_fill(q, out, n);
}

RnsPoly small_to_ntt(const rns::RnsContext& ctx, const std::vector<std::int64_t>& coeffs,
                     std::size_t nq, bool with_p) {
  RnsPoly p = ctx.make_poly(nq, with_p);
  ctx.set_signed(p, coeffs.data());
  ctx.ntt(p);
  return p;
}

KeyGenerator::KeyGenerator(const rns::RnsContext& ctx, SecretDistribution dist, double sigma)
    : ctx_(ctx), dist_(dist), gauss_(sigma) {
  if (dist_.kind == SecretDistribution::Kind::sparse_ternary &&
      (dist_.hamming_weight == 0 || dist_.hamming_weight > ctx.n())) {
    throw std::invalid_argument("sparse secret: Hamming weight must be in 1..N");
  }
}

SecretKey KeyGenerator::secret_key_from(std::vector<std::int8_t> coeffs) const {
  if (coeffs.size() != ctx_.n()) throw std::invalid_argument("secret key has the wrong length");
  SecretKey sk;
  std::vector<std::int64_t> c(coeffs.begin(), coeffs.end());
  for (auto v : c) {
    if (v < -1 || v > 1) {
      core::secure_zero(c.data(), c.size() * sizeof(std::int64_t));
      throw std::invalid_argument("secret key coefficients must be ternary");
    }
  }
  sk.coeffs = std::move(coeffs);
  sk.ntt = small_to_ntt(ctx_, c, ctx_.q_count(), ctx_.p_count() > 0);
  core::secure_zero(c.data(), c.size() * sizeof(std::int64_t));  // no copy of the key left behind
  return sk;
}

SecretKey KeyGenerator::secret_key(core::Prng& prng) const {
  auto c = dist_.kind == SecretDistribution::Kind::sparse_ternary
               ? core::sample_sparse_ternary(prng, ctx_.n(), dist_.hamming_weight)
               : core::sample_ternary(prng, ctx_.n());
  std::vector<std::int8_t> coeffs(c.begin(), c.end());
  core::secure_zero(c.data(), c.size() * sizeof(std::int64_t));
  return secret_key_from(std::move(coeffs));
}

PublicKey KeyGenerator::public_key(const SecretKey& sk, core::Prng& prng) const {
  // Over Q P, so that encryption can divide its noise by P (see encrypt_zero_public).
  const std::size_t L = ctx_.q_count();
  const bool with_p = ctx_.p_count() > 0;
  PublicKey pk;
  pk.seed = prng.next_seed();
  sample_uniform_seeded(ctx_, pk.seed, kTagPublicKey, pk.a, L, with_p);
  pk.b = small_to_ntt(ctx_, gauss_.sample(prng, ctx_.n()), L, with_p);
  RnsPoly as;
  ctx_.mul(pk.a, sk.ntt, as);
  ctx_.sub_inplace(pk.b, as);
  return pk;
}

SwitchingKey KeyGenerator::switching_key(const SecretKey& sk, const RnsPoly& from_ntt,
                                         std::size_t nq, core::Prng& prng) const {
  check_nq(ctx_, nq);
  const std::size_t K = ctx_.p_count(), L = ctx_.q_count(), n = ctx_.n();
  if (K == 0) throw std::logic_error("switching keys need special primes P");
  SwitchingKey key;
  key.nq = nq;
  key.seed = prng.next_seed();
  const std::size_t D = ctx_.digits(nq), alpha = ctx_.alpha();
  key.a.resize(D);
  key.b.resize(D);
  for (std::size_t d = 0; d < D; ++d) {
    sample_uniform_seeded(ctx_, key.seed, kTagSwitchingKey + d, key.a[d], nq, true);
    RnsPoly& b = key.b[d];
    b = small_to_ntt(ctx_, gauss_.sample(prng, n), nq, true);
    const std::size_t s0 = d * alpha, s1 = std::min(s0 + alpha, nq);
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < nq + K; ++i) {
      const std::size_t gi = i < nq ? i : L + (i - nq);  // limb of sk.ntt
      const core::Modulus& m = ctx_.mod_of(nq, i);
      const u64* a = key.a[d].limb(i);
      const u64* s = sk.ntt.limb(gi);
      const u64* f = from_ntt.limb(gi);
      u64* o = b.limb(i);
      const bool in_digit = i >= s0 && i < s1;
      const core::ShoupConst pm(in_digit ? ctx_.p_mod_q(i) : 0, m.value);
      for (std::size_t k = 0; k < n; ++k) {
        u64 v = m.sub(o[k], m.mul(a[k], s[k]));
        if (in_digit) v = m.add(v, core::mul_shoup(f[k], pm, m.value));
        o[k] = v;
      }
    }
  }
  return key;
}

RelinKey KeyGenerator::relin_key(const SecretKey& sk, std::size_t nq, core::Prng& prng) const {
  RnsPoly s2 = sk.ntt;
  ctx_.mul_inplace(s2, sk.ntt);
  return RelinKey{switching_key(sk, s2, nq, prng)};
}

SwitchingKey KeyGenerator::galois_key(const SecretKey& sk, std::uint64_t galois, std::size_t nq,
                                      core::Prng& prng) const {
  const auto map = ring::automorphism_ntt_map(ctx_.log_n(), galois);
  RnsPoly from(ctx_.n(), sk.ntt.nq(), sk.ntt.np());
  for (std::size_t i = 0; i < sk.ntt.limbs(); ++i) {
    ring::apply_ntt_map(sk.ntt.limb(i), map.data(), ctx_.n(), from.limb(i));
  }
  return switching_key(sk, from, nq, prng);
}

void encrypt_zero_public(const rns::RnsContext& ctx, const PublicKey& pk,
                         const core::GaussianSampler& gauss, std::size_t nq, core::Prng& prng,
                         RnsPoly& c0, RnsPoly& c1) {
  check_nq(ctx, nq);
  if (pk.b.nq() < nq) throw std::invalid_argument("public key does not cover this level");
  const std::size_t n = ctx.n(), K = pk.b.np(), L = pk.b.nq();
  // (v b + e0, v a + e1) over Q_l P, then divided by P: the fresh noise shrinks to the rounding
  // error (as with secret-key encryption) instead of v e + e0 + e1 s.
  const bool with_p = K > 0;
  const RnsPoly v = small_to_ntt(ctx, core::sample_ternary(prng, n), nq, with_p);
  RnsPoly t0 = small_to_ntt(ctx, gauss.sample(prng, n), nq, with_p);
  RnsPoly t1 = small_to_ntt(ctx, gauss.sample(prng, n), nq, with_p);
#pragma omp parallel for schedule(static) if (nq + K > 1)
  for (std::size_t i = 0; i < nq + K; ++i) {
    const std::size_t ki = i < nq ? i : L + (i - nq);
    const core::Modulus& m = ctx.mod_of(nq, i);
    const u64* vv = v.limb(i);
    const u64* b = pk.b.limb(ki);
    const u64* a = pk.a.limb(ki);
    u64* x0 = t0.limb(i);
    u64* x1 = t1.limb(i);
    for (std::size_t k = 0; k < n; ++k) {
      x0[k] = m.add(x0[k], m.mul(vv[k], b[k]));
      x1[k] = m.add(x1[k], m.mul(vv[k], a[k]));
    }
  }
  if (with_p) {
    RnsPoly* xs[] = {&t0, &t1};
    RnsPoly* os[] = {&c0, &c1};
    const bool add[] = {false, false};
    ctx.mod_down_many(xs, os, add, 2);
  } else {
    c0 = std::move(t0);
    c1 = std::move(t1);
  }
}

void encrypt_zero_symmetric(const rns::RnsContext& ctx, const SecretKey& sk,
                            const core::GaussianSampler& gauss, std::size_t nq,
                            const core::Seed& seed, core::Prng& prng, RnsPoly& c0, RnsPoly& c1) {
  check_nq(ctx, nq);
  const std::size_t n = ctx.n();
  sample_uniform_seeded(ctx, seed, kTagCiphertext, c1, nq, false);
  c0 = small_to_ntt(ctx, gauss.sample(prng, n), nq, false);
  for (std::size_t i = 0; i < nq; ++i) {
    const core::Modulus& m = ctx.mod_of(nq, i);
    const u64* a = c1.limb(i);
    const u64* s = sk.ntt.limb(i);
    u64* x0 = c0.limb(i);
    for (std::size_t k = 0; k < n; ++k) x0[k] = m.sub(x0[k], m.mul(a[k], s[k]));
  }
}

}  // namespace hetal::rlwe
