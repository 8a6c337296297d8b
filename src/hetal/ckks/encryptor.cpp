#include "hetal/ckks/encryptor.h"

#include <stdexcept>

#include "hetal/rlwe/keygen.h"

namespace hetal::ckks {

using core::u64;

namespace {

void check_pt(const Context& ctx, const Plaintext& pt) {
  if (pt.poly.n() != ctx.n() || pt.poly.nq() == 0 || pt.level() > ctx.max_level()) {
    throw std::invalid_argument("plaintext does not belong to this context");
  }
}
}  // namespace

Encryptor::Encryptor(const Context& ctx, const rlwe::PublicKey& pk, std::optional<core::Seed> seed)
    : ctx_(ctx), pk_(&pk), gauss_(ctx.params().sigma), prng_(seed ? *seed : core::os_seed()) {
  if (pk.b.n() != ctx.n() || pk.b.nq() != ctx.rns().q_count() || pk.b.np() != ctx.rns().p_count()) {
    throw std::invalid_argument("public key does not match the context");
  }
}

Encryptor::Encryptor(const Context& ctx, const rlwe::SecretKey& sk, std::optional<core::Seed> seed)
    : ctx_(ctx), sk_(&sk), gauss_(ctx.params().sigma), prng_(seed ? *seed : core::os_seed()) {
  if (sk.ntt.n() != ctx.n() || sk.ntt.nq() != ctx.rns().q_count() ||
      sk.ntt.np() != ctx.rns().p_count() || sk.coeffs.size() != ctx.n()) {
    throw std::invalid_argument("secret key does not match the context");
  }
}

Ciphertext Encryptor::encrypt_zero(std::size_t level, double scale, std::size_t slots) {
  if (level > ctx_.max_level()) throw std::invalid_argument("encrypt: level above the chain");
  Ciphertext ct;
  ct.parts.resize(2);
  if (pk_) {
    rlwe::encrypt_zero_public(ctx_.rns(), *pk_, gauss_, level + 1, prng_, ct.parts[0], ct.parts[1]);
  } else {
    rlwe::encrypt_zero_symmetric(ctx_.rns(), *sk_, gauss_, level + 1, prng_.next_seed(), prng_,
                                 ct.parts[0], ct.parts[1]);
  }
  ct.scale = scale;
  ct.slots = slots;
  return ct;
}

Ciphertext Encryptor::encrypt(const Plaintext& pt) {
  check_pt(ctx_, pt);
  Ciphertext ct = encrypt_zero(pt.level(), pt.scale, pt.slots);
  ctx_.rns().add_inplace(ct.parts[0], pt.poly);
  return ct;
}

SeededCiphertext Encryptor::encrypt_seeded(const Plaintext& pt) {
  if (!sk_) throw std::logic_error("seeded encryption needs the secret key");
  check_pt(ctx_, pt);
  SeededCiphertext s;
  s.seed = prng_.next_seed();
  RnsPoly c1;
  rlwe::encrypt_zero_symmetric(ctx_.rns(), *sk_, gauss_, pt.level() + 1, s.seed, prng_, s.c0, c1);
  ctx_.rns().add_inplace(s.c0, pt.poly);
  s.scale = pt.scale;
  s.slots = pt.slots;
  return s;
}

Ciphertext expand(const Context& ctx, const SeededCiphertext& sct) {
  if (sct.c0.n() != ctx.n() || sct.c0.np() != 0 || sct.c0.nq() == 0 ||
      sct.c0.nq() > ctx.rns().q_count()) {
    throw std::invalid_argument("seeded ciphertext does not belong to this context");
  }
  Ciphertext ct;
  ct.parts.resize(2);
  ct.parts[0] = sct.c0;
  rlwe::sample_uniform_seeded(ctx.rns(), sct.seed, rlwe::kTagCiphertext, ct.parts[1], sct.c0.nq(),
                              false);
  ct.scale = sct.scale;
  ct.slots = sct.slots;
  return ct;
}

Decryptor::Decryptor(const Context& ctx, const rlwe::SecretKey& sk) : ctx_(ctx), sk_(sk) {
  if (sk.ntt.n() != ctx.n() || sk.ntt.nq() != ctx.rns().q_count() ||
      sk.ntt.np() != ctx.rns().p_count() || sk.coeffs.size() != ctx.n()) {
    throw std::invalid_argument("secret key does not match the context");
  }
}

Plaintext Decryptor::decrypt(const Ciphertext& ct) const {
  if (ct.parts.size() < 2 || ct.parts.size() > 3)
    throw std::invalid_argument("decrypt: bad ciphertext size");
  const std::size_t nq = ct.parts[0].nq(), n = ctx_.n();
  if (nq == 0 || nq > ctx_.rns().q_count())
    throw std::invalid_argument("decrypt: bad ciphertext level");
  for (const auto& p : ct.parts) {
    if (p.n() != n || p.nq() != nq || p.np() != 0) {
      throw std::invalid_argument(
          "decrypt: ciphertext parts do not match this context or each other");
    }
  }
  Plaintext pt;
  pt.poly = ct.parts[0];
  pt.scale = ct.scale;
  pt.slots = ct.slots;
  // Horner in s: c0 + s (c1 + s c2).
#pragma omp parallel for schedule(static) if (nq > 1)
  for (std::size_t i = 0; i < nq; ++i) {
    const core::Modulus& m = ctx_.rns().mod_of(nq, i);
    const u64* s = sk_.ntt.limb(i);
    const u64* c1 = ct.parts[1].limb(i);
    const u64* c2 = ct.parts.size() == 3 ? ct.parts[2].limb(i) : nullptr;
    u64* o = pt.poly.limb(i);
    for (std::size_t k = 0; k < n; ++k) {
      u64 t = c1[k];
      if (c2) t = m.add(t, m.mul(c2[k], s[k]));
      o[k] = m.add(o[k], m.mul(t, s[k]));
    }
  }
  return pt;
}

}  // namespace hetal::ckks
