#include "hetal/ckks/evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "hetal/ckks/encoder.h"
#include "hetal/ring/automorphism.h"

namespace hetal::ckks {

using core::u128;
using core::u64;

namespace {
bool scales_match(double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(a, b); }

// f(limb index, modulus) for limbs [0, nq), in parallel when the work is large.
template <class F>
void for_limbs(const rns::RnsContext& r, std::size_t nq, F&& f) {
#pragma omp parallel for schedule(static) if (nq > 1 && r.n() >= 4096)
  for (std::size_t i = 0; i < nq; ++i) f(i, r.q_ntt(i).modulus());
}

// The 4th root of unity X^(N/2) takes in the NTT slots of prime i: +iota on the first half,
// -iota on the second.
u64 iota_of(const rns::RnsContext& r, std::size_t i) {
  const ring::NttTables& t = r.q_ntt(i);
  return t.modulus().pow(t.psi(), r.n() / 2);
}

// o = sum_t x(t) * y(t) on one limb of n words. Products are below q^2 < 2^122: 16 of them stay
// below reduce128's 2^126 bound, so they are summed lazily in 128 bits.
template <class X, class Y>
void mul_sum_limb(std::size_t count, X&& x_of, Y&& y_of, std::size_t n, const core::Modulus& m,
                  u64* o) {
  constexpr std::size_t kChunk = 16;
  for (std::size_t t0 = 0; t0 < count; t0 += kChunk) {
    const std::size_t tn = std::min(kChunk, count - t0);
    const u64* x[kChunk];
    const u64* y[kChunk];
    for (std::size_t t = 0; t < tn; ++t) {
      x[t] = x_of(t0 + t);
      y[t] = y_of(t0 + t);
    }
    for (std::size_t k = 0; k < n; ++k) {
      core::u128 s = 0;
      for (std::size_t t = 0; t < tn; ++t) s += static_cast<core::u128>(x[t][k]) * y[t][k];
      const u64 v = m.reduce128(s);
      o[k] = t0 == 0 ? v : m.add(o[k], v);
    }
  }
}

// o += c[perm] (times `factor` if given) on one limb: an automorphism applied in the NTT domain
// while accumulating. The permuted reads miss the cache, so they are prefetched ahead.
void add_permuted_limb(u64* o, const u64* c, const std::uint32_t* perm, std::size_t n,
                       const core::Modulus& m, const core::ShoupConst* factor) {
  for (std::size_t t = 0; t < n; ++t) {
    if (t + 48 < n) __builtin_prefetch(c + perm[t + 48]);
    const u64 v = factor ? core::mul_shoup(c[perm[t]], *factor, m.value) : c[perm[t]];
    o[t] = m.add(o[t], v);
  }
}
}  // namespace

Evaluator::Evaluator(const Context& ctx) : ctx_(ctx) {}

void Evaluator::check(const Ciphertext& a) const {
  if (a.parts.size() < 2 || a.parts.size() > 3) {
    throw std::invalid_argument("ciphertext must have 2 or 3 parts, has " +
                                std::to_string(a.parts.size()));
  }
  const std::size_t nq = a.parts[0].nq();
  for (const auto& p : a.parts) {
    if (p.n() != ctx_.n() || p.nq() != nq || p.np() != 0 || nq == 0 || nq > ctx_.rns().q_count()) {
      throw std::invalid_argument("ciphertext does not belong to this context");
    }
  }
  if (!(a.scale > 0) || !std::isfinite(a.scale))
    throw std::invalid_argument("ciphertext scale is invalid");
}

void Evaluator::binary_prepare(Ciphertext& a, const Ciphertext& b, std::size_t& nq) const {
  check(a);
  check(b);
  if (a.slots != b.slots) {
    throw std::invalid_argument("slot counts differ (" + std::to_string(a.slots) + " vs " +
                                std::to_string(b.slots) + ")");
  }
  nq = std::min(a.parts[0].nq(), b.parts[0].nq());
  if (a.parts[0].nq() > nq) drop_to_level_inplace(a, nq - 1);
}

// ---------------------------------------------------------------- addition family

void Evaluator::add_sub_inplace(Ciphertext& a, const Ciphertext& b, bool subtract) const {
  std::size_t nq;
  binary_prepare(a, b, nq);
  if (!scales_match(a.scale, b.scale)) {
    throw std::invalid_argument(std::string(subtract ? "sub" : "add") + ": scales differ (2^" +
                                std::to_string(std::log2(a.scale)) + " vs 2^" +
                                std::to_string(std::log2(b.scale)) + "); use match_scale");
  }
  const std::size_t common = std::min(a.size(), b.size()), n = ctx_.n();
  for (std::size_t j = a.size(); j < b.size(); ++j) {
    a.parts.push_back(b.parts[j]);
    if (a.parts.back().nq() > nq) a.parts.back().drop_to(nq);
    if (subtract) ctx_.rns().negate_inplace(a.parts.back());
  }
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    for (std::size_t j = 0; j < common; ++j) {
      u64* x = a.parts[j].limb(i);
      const u64* y = b.parts[j].limb(i);
      if (subtract) {
        for (std::size_t k = 0; k < n; ++k)
          x[k] = core::reduce_once(x[k] + m.value - y[k], m.value);
      } else {
        for (std::size_t k = 0; k < n; ++k) x[k] = core::reduce_once(x[k] + y[k], m.value);
      }
    }
  });
}

void Evaluator::add_inplace(Ciphertext& a, const Ciphertext& b) const {
  add_sub_inplace(a, b, false);
}

void Evaluator::sub_inplace(Ciphertext& a, const Ciphertext& b) const {
  add_sub_inplace(a, b, true);
}

void Evaluator::negate_inplace(Ciphertext& a) const {
  check(a);
  for (auto& p : a.parts) ctx_.rns().negate_inplace(p);
}

void Evaluator::add_plain_inplace(Ciphertext& a, const Plaintext& p) const {
  check(a);
  if (p.slots != a.slots) throw std::invalid_argument("add_plain: slot counts differ");
  if (!scales_match(a.scale, p.scale))
    throw std::invalid_argument("add_plain: scales differ; encode at the ciphertext's scale");
  if (p.poly.n() != ctx_.n() || p.poly.nq() == 0)
    throw std::invalid_argument("add_plain: bad plaintext");
  const std::size_t nq = std::min(a.parts[0].nq(), p.poly.nq()), n = ctx_.n();
  if (a.parts[0].nq() > nq) drop_to_level_inplace(a, nq - 1);
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    u64* x = a.parts[0].limb(i);
    const u64* y = p.poly.limb(i);
    for (std::size_t k = 0; k < n; ++k) x[k] = core::reduce_once(x[k] + y[k], m.value);
  });
}

void Evaluator::sub_plain_inplace(Ciphertext& a, const Plaintext& p) const {
  Plaintext np = p;
  ctx_.rns().negate_inplace(np.poly);
  add_plain_inplace(a, np);
}

void Evaluator::add_const_inplace(Ciphertext& a, Complex c) const {
  check(a);
  const std::size_t nq = a.parts[0].nq(), n = ctx_.n();
  const auto re = round_to_residues(ctx_, c.real() * a.scale, nq);
  const auto im = round_to_residues(ctx_, c.imag() * a.scale, nq);
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    const u64 iota = iota_of(ctx_.rns(), i);
    const u64 lo = m.add(re[i], m.mul(im[i], iota)), hi = m.sub(re[i], m.mul(im[i], iota));
    u64* x = a.parts[0].limb(i);
    for (std::size_t k = 0; k < n / 2; ++k) x[k] = m.add(x[k], lo);
    for (std::size_t k = n / 2; k < n; ++k) x[k] = m.add(x[k], hi);
  });
}

// ---------------------------------------------------------------- multiplication family

void Evaluator::multiply_inplace(Ciphertext& a, const Ciphertext& b) const {
  if (&a == &b) {
    square_inplace(a);
    return;
  }
  std::size_t nq;
  binary_prepare(a, b, nq);
  if (a.size() != 2 || b.size() != 2) throw std::invalid_argument("multiply: relinearize first");
  const std::size_t n = ctx_.n();
  RnsPoly c2 = RnsPoly::uninitialized(n, nq);
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    u64* a0 = a.parts[0].limb(i);
    u64* a1 = a.parts[1].limb(i);
    const u64* b0 = b.parts[0].limb(i);
    const u64* b1 = b.parts[1].limb(i);
    u64* z = c2.limb(i);
    for (std::size_t k = 0; k < n; ++k) {
      const u64 x0 = a0[k], x1 = a1[k], y0 = b0[k], y1 = b1[k];
      a0[k] = m.mul(x0, y0);
      a1[k] = m.reduce128(static_cast<u128>(x0) * y1 + static_cast<u128>(x1) * y0);
      z[k] = m.mul(x1, y1);
    }
  });
  a.parts.push_back(std::move(c2));
  a.scale *= b.scale;
}

void Evaluator::square_inplace(Ciphertext& a) const {
  check(a);
  if (a.size() != 2) throw std::invalid_argument("square: relinearize first");
  const std::size_t nq = a.parts[0].nq(), n = ctx_.n();
  RnsPoly c2 = RnsPoly::uninitialized(n, nq);
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    u64* a0 = a.parts[0].limb(i);
    u64* a1 = a.parts[1].limb(i);
    u64* z = c2.limb(i);
    for (std::size_t k = 0; k < n; ++k) {
      const u64 x0 = a0[k], x1 = a1[k];
      a0[k] = m.mul(x0, x0);
      const u64 t = m.mul(x0, x1);
      a1[k] = m.add(t, t);
      z[k] = m.mul(x1, x1);
    }
  });
  a.parts.push_back(std::move(c2));
  a.scale *= a.scale;
}

void Evaluator::relinearize_inplace(Ciphertext& a, const rlwe::RelinKey& rlk) const {
  check(a);
  if (a.size() == 2) return;
  RnsPoly k0, k1;
  rlwe::key_switch(ctx_.rns(), a.parts[2], rlk.key, k0, k1);
  ctx_.rns().add_inplace(a.parts[0], k0);
  ctx_.rns().add_inplace(a.parts[1], k1);
  a.parts.pop_back();
}

void Evaluator::multiply_relin_inplace(Ciphertext& a, const Ciphertext& b,
                                       const rlwe::RelinKey& rlk) const {
  multiply_inplace(a, b);
  relinearize_inplace(a, rlk);
}

void Evaluator::multiply_plain_inplace(Ciphertext& a, const Plaintext& p) const {
  check(a);
  if (p.slots != a.slots) throw std::invalid_argument("multiply_plain: slot counts differ");
  if (p.poly.n() != ctx_.n() || p.poly.nq() == 0)
    throw std::invalid_argument("multiply_plain: bad plaintext");
  const std::size_t nq = std::min(a.parts[0].nq(), p.poly.nq()), n = ctx_.n();
  if (a.parts[0].nq() > nq) drop_to_level_inplace(a, nq - 1);
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    const u64* y = p.poly.limb(i);
    for (auto& part : a.parts) {
      u64* x = part.limb(i);
      for (std::size_t k = 0; k < n; ++k) x[k] = m.mul(x[k], y[k]);
    }
  });
  a.scale *= p.scale;
}

Ciphertext Evaluator::multiply_plain_sum(std::span<const Ciphertext* const> cts,
                                         std::span<const Plaintext* const> pts) const {
  if (cts.empty() || cts.size() != pts.size())
    throw std::invalid_argument("multiply_plain_sum: needs as many plaintexts as ciphertexts");
  const Ciphertext& first = *cts[0];
  check(first);
  const std::size_t nq = first.parts[0].nq(), n = ctx_.n(), parts = first.size();
  const double scale = first.scale * pts[0]->scale;
  for (std::size_t t = 0; t < cts.size(); ++t) {
    const Ciphertext& c = *cts[t];
    check(c);
    if (c.parts[0].nq() != nq || c.size() != parts || c.slots != first.slots)
      throw std::invalid_argument("multiply_plain_sum: ciphertexts differ in level, size or slots");
    if (pts[t]->slots != first.slots || pts[t]->poly.n() != n || pts[t]->poly.nq() < nq)
      throw std::invalid_argument("multiply_plain_sum: plaintext slots or level do not match");
    if (!scales_match(c.scale * pts[t]->scale, scale))
      throw std::invalid_argument("multiply_plain_sum: the products' scales differ");
  }
  Ciphertext out;
  out.slots = first.slots;
  out.scale = scale;
  out.parts.resize(parts);
  for (auto& p : out.parts) p = RnsPoly::uninitialized(n, nq);
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    for (std::size_t j = 0; j < parts; ++j) {
      mul_sum_limb(
          cts.size(), [&](std::size_t t) { return cts[t]->parts[j].limb(i); },
          [&](std::size_t t) { return pts[t]->poly.limb(i); }, n, m, out.parts[j].limb(i));
    }
  });
  return out;
}

void Evaluator::multiply_const_inplace(Ciphertext& a, Complex c, double const_scale) const {
  check(a);
  const std::size_t nq = a.parts[0].nq(), n = ctx_.n();
  if (const_scale == 0) const_scale = static_cast<double>(ctx_.rns().q_primes()[nq - 1]);
  if (!(const_scale > 0) || !std::isfinite(const_scale))
    throw std::invalid_argument("multiply_const: bad scale");
  const auto re = round_to_residues(ctx_, c.real() * const_scale, nq);
  const auto im = round_to_residues(ctx_, c.imag() * const_scale, nq);
  const bool complex = c.imag() != 0;
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    const u64 iota = iota_of(ctx_.rns(), i);
    const core::ShoupConst lo(m.add(re[i], m.mul(im[i], iota)), m.value);
    const core::ShoupConst hi(m.sub(re[i], m.mul(im[i], iota)), m.value);
    for (auto& part : a.parts) {
      u64* x = part.limb(i);
      for (std::size_t k = 0; k < n / 2; ++k) x[k] = core::mul_shoup(x[k], lo, m.value);
      const core::ShoupConst& h = complex ? hi : lo;
      for (std::size_t k = n / 2; k < n; ++k) x[k] = core::mul_shoup(x[k], h, m.value);
    }
  });
  a.scale *= const_scale;
}

void Evaluator::multiply_integer_inplace(Ciphertext& a, std::int64_t k) const {
  check(a);
  const std::size_t nq = a.parts[0].nq();
  std::vector<u64> c(nq);
  for (std::size_t i = 0; i < nq; ++i) c[i] = ctx_.rns().q_ntt(i).modulus().from_signed(k);
  for (auto& part : a.parts) ctx_.rns().mul_scalar_inplace(part, c);
}

void Evaluator::multiply_by_i_inplace(Ciphertext& a) const {
  check(a);
  const std::size_t nq = a.parts[0].nq(), n = ctx_.n();
  for_limbs(ctx_.rns(), nq, [&](std::size_t i, const core::Modulus& m) {
    const core::ShoupConst lo(iota_of(ctx_.rns(), i), m.value);
    const core::ShoupConst hi(m.neg(lo.w), m.value);
    for (auto& part : a.parts) {
      u64* x = part.limb(i);
      for (std::size_t k = 0; k < n / 2; ++k) x[k] = core::mul_shoup(x[k], lo, m.value);
      for (std::size_t k = n / 2; k < n; ++k) x[k] = core::mul_shoup(x[k], hi, m.value);
    }
  });
}

// ---------------------------------------------------------------- levels and scales

void Evaluator::rescale_inplace(Ciphertext& a) const {
  check(a);
  const std::size_t nq = a.parts[0].nq();
  if (nq < 2) throw std::invalid_argument("rescale: ciphertext is at level 0, no prime left");
  const double q = static_cast<double>(ctx_.rns().q_primes()[nq - 1]);
  // Below ~2^20 the rounding of the rescale alone costs all but a few bits: that happens when
  // a product's scale does not match the prime (e.g. scale 2^40 squared on a 60-bit level), and
  // the results would be silently wrong. Refuse instead.
  if (a.scale / q < 0x1p20) {
    char msg[160];
    std::snprintf(msg, sizeof msg,
                  "rescale: the scale would drop to 2^%.1f (scale 2^%.1f over a %.1f-bit "
                  "prime); work at levels whose primes match the scale",
                  std::log2(a.scale / q), std::log2(a.scale), std::log2(q));
    throw std::invalid_argument(msg);
  }
  for (auto& p : a.parts) ctx_.rns().rescale_inplace(p);
  a.scale /= q;
}

void Evaluator::drop_to_level_inplace(Ciphertext& a, std::size_t level) const {
  check(a);
  if (level > a.level()) {
    throw std::invalid_argument("cannot raise a ciphertext from level " +
                                std::to_string(a.level()) + " to " + std::to_string(level) +
                                " (that needs bootstrapping)");
  }
  for (auto& p : a.parts) p.drop_to(level + 1);
}

void Evaluator::align_levels_inplace(Ciphertext& a, Ciphertext& b) const {
  const std::size_t l = std::min(a.level(), b.level());
  drop_to_level_inplace(a, l);
  drop_to_level_inplace(b, l);
}

void Evaluator::match_scale_inplace(Ciphertext& a, double scale) const {
  check(a);
  if (scales_match(a.scale, scale)) return;
  const double q = static_cast<double>(ctx_.rns().q_primes()[a.level()]);
  const double cs = scale * q / a.scale;
  if (cs < 1024) {
    throw std::invalid_argument("match_scale: target scale too small for one rescale");
  }
  multiply_const_inplace(a, 1.0, cs);
  rescale_inplace(a);
  a.scale = scale;  // exact up to the rounding of cs, which is below 2^-10 relative
}

// ---------------------------------------------------------------- rotations

const std::vector<std::uint32_t>& Evaluator::galois_map(std::uint64_t galois) const {
  std::lock_guard<std::mutex> lock(map_mutex_);
  auto it = maps_.find(galois);
  if (it == maps_.end()) {
    it = maps_.emplace(galois, ring::automorphism_ntt_map(ctx_.log_n(), galois)).first;
  }
  return it->second;
}

rlwe::Decomposition Evaluator::hoist(const Ciphertext& a) const {
  check(a);
  if (a.size() != 2) throw std::invalid_argument("hoist: relinearize first");
  return rlwe::decompose(ctx_.rns(), a.parts[1]);
}

void Evaluator::apply_galois_hoisted(const Ciphertext& a, const rlwe::Decomposition& dec,
                                     std::uint64_t galois, const rlwe::GaloisKeys& gk,
                                     Ciphertext& out) const {
  auto it = gk.keys.find(galois);
  if (it == gk.keys.end()) {
    throw std::invalid_argument("no Galois key for element " + std::to_string(galois));
  }
  if (dec.nq != a.parts[0].nq())
    throw std::invalid_argument("hoisted decomposition is for another level");
  const auto& map = galois_map(galois);
  const auto& rns = ctx_.rns();
  RnsPoly acc0, acc1;
  rlwe::inner_product(rns, dec, it->second, map.data(), acc0, acc1);
  // c0 of the result is perm(a.c0) + ModDown(acc0): the permutation happens inside ModDown's
  // final pass, in parallel, without a separate sweep over the limbs.
  out.parts.resize(2);
  RnsPoly c0;
  RnsPoly* xs[] = {&acc0, &acc1};
  RnsPoly* os[] = {&c0, &out.parts[1]};
  const bool add[] = {false, false};
  const RnsPoly* addend[] = {&a.parts[0], nullptr};
  rns.mod_down_many(xs, os, add, 2, addend, map.data());
  out.parts[0] = std::move(c0);
  out.scale = a.scale;
  out.slots = a.slots;
}

void Evaluator::apply_galois_inplace(Ciphertext& a, std::uint64_t galois,
                                     const rlwe::GaloisKeys& gk) const {
  const rlwe::Decomposition dec = hoist(a);
  Ciphertext out;
  apply_galois_hoisted(a, dec, galois, gk, out);
  a = std::move(out);
}

std::uint64_t Evaluator::resolve_galois(std::size_t slots, long long k, const rlwe::GaloisKeys& gk,
                                        std::vector<std::uint64_t>& chain) const {
  chain.clear();
  const long long n = static_cast<long long>(slots);
  if (n <= 0) throw std::invalid_argument("ciphertext has no slots");
  const long long r = ((k % n) + n) % n;
  if (r == 0) return 1;
  // Any key whose element acts on these n slots as a rotation by r will do: the slot structure
  // only sees the Galois element modulo 4n.
  const std::uint64_t want = ring::galois_element_for_rotation(ctx_.log_n(), r) % (4 * n);
  for (const auto& [g, key] : gk.keys) {
    if ((g & 3) == 1 && g % (4 * n) == want) return g;
  }
  // Compose power-of-two rotations: left by the bits of r, or right by the bits of n - r.
  for (int dir : {1, -1}) {
    const long long amount = dir == 1 ? r : n - r;
    std::vector<std::uint64_t> steps;
    bool ok = true;
    for (long long b = 1; b <= amount && ok; b <<= 1) {
      if (!(amount & b)) continue;
      const std::uint64_t g = ring::galois_element_for_rotation(ctx_.log_n(), dir * b);
      ok = gk.has(g);
      steps.push_back(g);
    }
    if (ok) {
      chain = steps;
      return 0;
    }
  }
  throw std::invalid_argument("no Galois key for a rotation by " + std::to_string(k) +
                              " and the power-of-two keys to compose it are missing");
}

void Evaluator::rotate_inplace(Ciphertext& a, long long k, const rlwe::GaloisKeys& gk) const {
  check(a);
  std::vector<std::uint64_t> chain;
  const std::uint64_t g = resolve_galois(a.slots, k, gk, chain);
  if (g == 1) return;
  if (g != 0) {
    apply_galois_inplace(a, g, gk);
    return;
  }
  for (std::uint64_t s : chain) apply_galois_inplace(a, s, gk);
}

void Evaluator::conjugate_inplace(Ciphertext& a, const rlwe::GaloisKeys& gk) const {
  apply_galois_inplace(a, ring::galois_element_conjugate(ctx_.log_n()), gk);
}

std::uint64_t Evaluator::single_key_galois(std::size_t slots, long long k,
                                           const rlwe::GaloisKeys& gk, const char* what) const {
  std::vector<std::uint64_t> chain;
  const std::uint64_t g = resolve_galois(slots, k, gk, chain);
  if (g == 0) {
    throw std::invalid_argument(std::string(what) + " by " + std::to_string(k) +
                                " needs its own Galois key (composition cannot be hoisted)");
  }
  return g;
}

Ciphertext Evaluator::rotate_hoisted(const Ciphertext& a, const rlwe::Decomposition& dec,
                                     long long k, const rlwe::GaloisKeys& gk) const {
  check(a);
  const std::uint64_t g = single_key_galois(a.slots, k, gk, "hoisted rotation");
  if (g == 1) return a;
  Ciphertext out;
  apply_galois_hoisted(a, dec, g, gk, out);
  return out;
}

std::vector<Ciphertext> Evaluator::rotate_hoisted(const Ciphertext& a,
                                                  std::span<const long long> steps,
                                                  const rlwe::GaloisKeys& gk) const {
  const rlwe::Decomposition dec = hoist(a);
  std::vector<Ciphertext> out;
  out.reserve(steps.size());
  for (long long k : steps) out.push_back(rotate_hoisted(a, dec, k, gk));
  return out;
}

// ---------------------------------------------------------------- double hoisting

CiphertextQP Evaluator::lift_qp(const Ciphertext& a) const {
  check(a);
  if (a.size() != 2) throw std::invalid_argument("lift_qp: relinearize first");
  const auto& rns = ctx_.rns();
  const std::size_t nq = a.parts[0].nq(), K = rns.p_count(), n = ctx_.n();
  CiphertextQP out;
  out.scale = a.scale;
  out.slots = a.slots;
  RnsPoly* os[] = {&out.c0, &out.c1};
  for (std::size_t j = 0; j < 2; ++j) {
    *os[j] = RnsPoly::uninitialized(n, nq, K);
    std::fill(os[j]->limb(nq), os[j]->limb(nq) + K * n, u64{0});  // P a = 0 mod P
  }
  for_limbs(rns, nq, [&](std::size_t i, const core::Modulus& m) {
    const core::ShoupConst pm(rns.p_mod_q(i), m.value);
    for (std::size_t j = 0; j < 2; ++j) {
      const u64* x = a.parts[j].limb(i);
      u64* o = os[j]->limb(i);
      for (std::size_t k = 0; k < n; ++k) o[k] = core::mul_shoup(x[k], pm, m.value);
    }
  });
  return out;
}

CiphertextQP Evaluator::rotate_hoisted_qp(const Ciphertext& a, const rlwe::Decomposition& dec,
                                          long long k, const rlwe::GaloisKeys& gk) const {
  check(a);
  const std::uint64_t g = single_key_galois(a.slots, k, gk, "hoisted rotation");
  if (g == 1) return lift_qp(a);
  if (dec.nq != a.parts[0].nq())
    throw std::invalid_argument("hoisted decomposition is for another level");
  const auto& rns = ctx_.rns();
  const std::size_t nq = a.parts[0].nq(), n = ctx_.n();
  const std::uint32_t* perm = galois_map(g).data();
  CiphertextQP out;
  rlwe::inner_product(rns, dec, gk.keys.at(g), perm, out.c0, out.c1);
  // c0 += P perm(a.c0) on the Q limbs; it vanishes on the P limbs.
  for_limbs(rns, nq, [&](std::size_t i, const core::Modulus& m) {
    const core::ShoupConst pm(rns.p_mod_q(i), m.value);
    add_permuted_limb(out.c0.limb(i), a.parts[0].limb(i), perm, n, m, &pm);
  });
  out.scale = a.scale;
  out.slots = a.slots;
  return out;
}

CiphertextQP Evaluator::multiply_plain_sum_qp(std::span<const CiphertextQP* const> xs,
                                              std::span<const Plaintext* const> pts) const {
  if (xs.empty() || xs.size() != pts.size())
    throw std::invalid_argument("multiply_plain_sum_qp: needs as many plaintexts as ciphertexts");
  const auto& rns = ctx_.rns();
  const std::size_t nq = xs[0]->c0.nq(), K = rns.p_count(), n = ctx_.n();
  const double scale = xs[0]->scale * pts[0]->scale;
  for (std::size_t t = 0; t < xs.size(); ++t) {
    const CiphertextQP& x = *xs[t];
    const RnsPoly& p = pts[t]->poly;
    if (x.c0.nq() != nq || x.c1.nq() != nq || x.c0.np() != K || x.c1.np() != K ||
        x.slots != xs[0]->slots)
      throw std::invalid_argument("multiply_plain_sum_qp: ciphertexts differ in level or slots");
    if (p.nq() != nq || p.np() != K || p.n() != n || pts[t]->slots != xs[0]->slots)
      throw std::invalid_argument("multiply_plain_sum_qp: a plaintext lacks the Q_l P limbs");
    if (!scales_match(x.scale * pts[t]->scale, scale))
      throw std::invalid_argument("multiply_plain_sum_qp: the products' scales differ");
  }
  CiphertextQP out;
  out.scale = scale;
  out.slots = xs[0]->slots;
  out.c0 = RnsPoly::uninitialized(n, nq, K);
  out.c1 = RnsPoly::uninitialized(n, nq, K);
#pragma omp parallel for schedule(static) if (nq + K > 1 && n >= 4096)
  for (std::size_t i = 0; i < nq + K; ++i) {
    const core::Modulus& m = rns.mod_of(nq, i);
    const auto y_of = [&](std::size_t t) { return pts[t]->poly.limb(i); };
    mul_sum_limb(
        xs.size(), [&](std::size_t t) { return xs[t]->c0.limb(i); }, y_of, n, m, out.c0.limb(i));
    mul_sum_limb(
        xs.size(), [&](std::size_t t) { return xs[t]->c1.limb(i); }, y_of, n, m, out.c1.limb(i));
  }
  return out;
}

void Evaluator::rotate_qp_inplace(CiphertextQP& x, long long k, const rlwe::GaloisKeys& gk) const {
  const std::uint64_t g = single_key_galois(x.slots, k, gk, "rotation over Q P");
  if (g == 1) return;
  const auto& rns = ctx_.rns();
  const std::size_t nq = x.c0.nq(), K = rns.p_count(), n = ctx_.n();
  RnsPoly c1;
  {
    RnsPoly* xs[] = {&x.c1};
    RnsPoly* os[] = {&c1};
    const bool add[] = {false};
    rns.mod_down_many(xs, os, add, 1);
  }
  const rlwe::Decomposition dec = rlwe::decompose(rns, c1);
  c1 = RnsPoly();
  const std::uint32_t* perm = galois_map(g).data();
  RnsPoly acc0;
  rlwe::inner_product(rns, dec, gk.keys.at(g), perm, acc0, x.c1);
  // c0 <- perm(c0) + acc0 on every limb of Q_l P.
#pragma omp parallel for schedule(static) if (nq + K > 1 && n >= 4096)
  for (std::size_t i = 0; i < nq + K; ++i) {
    add_permuted_limb(acc0.limb(i), x.c0.limb(i), perm, n, rns.mod_of(nq, i), nullptr);
  }
  x.c0 = std::move(acc0);
}

void Evaluator::add_qp_inplace(CiphertextQP& a, const CiphertextQP& b) const {
  if (a.c0.nq() != b.c0.nq() || a.c0.np() != b.c0.np() || a.slots != b.slots)
    throw std::invalid_argument("add_qp: operands differ in level or slots");
  if (!scales_match(a.scale, b.scale)) throw std::invalid_argument("add_qp: scales differ");
  const auto& rns = ctx_.rns();
  const std::size_t nq = a.c0.nq(), K = rns.p_count(), n = ctx_.n();
#pragma omp parallel for schedule(static) if (nq + K > 1 && n >= 4096)
  for (std::size_t i = 0; i < nq + K; ++i) {
    const core::Modulus& m = rns.mod_of(nq, i);
    for (auto [o, x] :
         {std::pair{a.c0.limb(i), b.c0.limb(i)}, std::pair{a.c1.limb(i), b.c1.limb(i)}}) {
      for (std::size_t t = 0; t < n; ++t) o[t] = m.add(o[t], x[t]);
    }
  }
}

Ciphertext Evaluator::mod_down(CiphertextQP&& x) const {
  Ciphertext out;
  out.parts.resize(2);
  RnsPoly* xs[] = {&x.c0, &x.c1};
  RnsPoly* os[] = {&out.parts[0], &out.parts[1]};
  const bool add[] = {false, false};
  ctx_.rns().mod_down_many(xs, os, add, 2);
  out.scale = x.scale;
  out.slots = x.slots;
  x = CiphertextQP();
  return out;
}

void Evaluator::rotate_sum_inplace(Ciphertext& a, std::size_t count, long long step,
                                   const rlwe::GaloisKeys& gk) const {
  if (count == 0 || (count & (count - 1)))
    throw std::invalid_argument("rotate_sum: count must be a power of two");
  for (std::size_t s = 1; s < count; s <<= 1) {
    Ciphertext r = rotate(a, static_cast<long long>(s) * step, gk);
    add_inplace(a, r);
  }
}

// ---------------------------------------------------------------- copying forms

#define HETAL_COPY_UNARY(name)                            \
  Ciphertext Evaluator::name(const Ciphertext& a) const { \
    Ciphertext r = a;                                     \
    name##_inplace(r);                                    \
    return r;                                             \
  }
HETAL_COPY_UNARY(negate)
HETAL_COPY_UNARY(square)
HETAL_COPY_UNARY(multiply_by_i)
HETAL_COPY_UNARY(rescale)
#undef HETAL_COPY_UNARY

Ciphertext Evaluator::add(const Ciphertext& a, const Ciphertext& b) const {
  Ciphertext r = a;
  add_inplace(r, b);
  return r;
}
Ciphertext Evaluator::sub(const Ciphertext& a, const Ciphertext& b) const {
  Ciphertext r = a;
  sub_inplace(r, b);
  return r;
}
Ciphertext Evaluator::add_plain(const Ciphertext& a, const Plaintext& p) const {
  Ciphertext r = a;
  add_plain_inplace(r, p);
  return r;
}
Ciphertext Evaluator::sub_plain(const Ciphertext& a, const Plaintext& p) const {
  Ciphertext r = a;
  sub_plain_inplace(r, p);
  return r;
}
Ciphertext Evaluator::add_const(const Ciphertext& a, Complex c) const {
  Ciphertext r = a;
  add_const_inplace(r, c);
  return r;
}
Ciphertext Evaluator::multiply(const Ciphertext& a, const Ciphertext& b) const {
  Ciphertext r = a;
  multiply_inplace(r, b);
  return r;
}
Ciphertext Evaluator::relinearize(const Ciphertext& a, const rlwe::RelinKey& rlk) const {
  Ciphertext r = a;
  relinearize_inplace(r, rlk);
  return r;
}
Ciphertext Evaluator::multiply_relin(const Ciphertext& a, const Ciphertext& b,
                                     const rlwe::RelinKey& rlk) const {
  Ciphertext r = a;
  multiply_relin_inplace(r, b, rlk);
  return r;
}
Ciphertext Evaluator::multiply_plain(const Ciphertext& a, const Plaintext& p) const {
  Ciphertext r = a;
  multiply_plain_inplace(r, p);
  return r;
}
Ciphertext Evaluator::multiply_const(const Ciphertext& a, Complex c, double const_scale) const {
  Ciphertext r = a;
  multiply_const_inplace(r, c, const_scale);
  return r;
}
Ciphertext Evaluator::drop_to_level(const Ciphertext& a, std::size_t level) const {
  Ciphertext r = a;
  drop_to_level_inplace(r, level);
  return r;
}
Ciphertext Evaluator::rotate(const Ciphertext& a, long long k, const rlwe::GaloisKeys& gk) const {
  Ciphertext r = a;
  rotate_inplace(r, k, gk);
  return r;
}
Ciphertext Evaluator::conjugate(const Ciphertext& a, const rlwe::GaloisKeys& gk) const {
  Ciphertext r = a;
  conjugate_inplace(r, gk);
  return r;
}

}  // namespace hetal::ckks
