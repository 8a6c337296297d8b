// Approximate-arithmetic tests: every evaluator operation against plain complex arithmetic,
// with precision asserted in bits.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>

#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/precision.h"
#include "test_util.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {
using hetal::testing::rotate_plain;
using hetal::testing::Vec;

Vec random_values(core::Prng& p, std::size_t n) { return hetal::testing::random_unit_disk(p, n); }

::testing::AssertionResult AtLeast(const Precision& p, double mean_bits, double worst_bits) {
  if (p.mean >= mean_bits && p.worst >= worst_bits) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "precision mean " << p.mean << " bits (need " << mean_bits << "), worst slot "
         << p.worst << " bits (need " << worst_bits << ")";
}
// The bar: >= 25 bits after multiply + rescale at Delta = 2^40, read as the mean
// precision over all slots (Lattigo's convention); the worst slot must keep >= 22 bits.
constexpr double kMean = 25, kWorst = 22;

struct Env {
  Context ctx;
  Encoder enc;
  KeyGenerator kg;
  SecretKey sk;
  PublicKey pk;
  RelinKey rlk;
  Encryptor encryptor;
  Decryptor dec;
  Evaluator ev;
  core::Prng prng{core::Seed{99}};
  explicit Env(Parameters p, SecurityPolicy pol = SecurityPolicy::require_128)
      : ctx(std::move(p), pol),
        enc(ctx),
        kg(ctx, core::Seed{1}),
        sk(kg.secret_key()),
        pk(kg.public_key(sk)),
        rlk(kg.relin_key(sk)),
        encryptor(ctx, pk, core::Seed{2}),
        dec(ctx, sk),
        ev(ctx) {}
  Ciphertext encrypt(const Vec& v, std::size_t level) {
    return encryptor.encrypt(enc.encode(v, level, ctx.default_scale()));
  }
  Vec decrypt(const Ciphertext& ct) { return enc.decode(dec.decrypt(ct)); }
};

Env& t13() {
  static Env env(Parameters::preset(Preset::T13));
  return env;
}
Env& t14() {
  static Env env(Parameters::preset(Preset::T14));
  return env;
}
}  // namespace

TEST(Encoder, SpecialFftMatchesCanonicalEmbedding) {
  Env& e = t13();
  const std::size_t N = e.ctx.n();
  for (std::size_t n : {std::size_t{4}, std::size_t{64}, N / 2}) {
    core::Prng p(core::Seed{3});
    const Vec v = random_values(p, n);
    Plaintext pt = e.enc.encode(v, 0, std::ldexp(1.0, 40));
    // Decode by direct evaluation at zeta^(5^j) of the coefficient polynomial.
    RnsPoly c = pt.poly;
    e.ctx.rns().intt(c);
    const core::Modulus& m = e.ctx.rns().q_ntt(0).modulus();
    const std::size_t gap = N / (2 * n);
    for (std::size_t j : {std::size_t{0}, std::size_t{1}, n - 1}) {
      const std::uint64_t r = e.ctx.rot_group()[j];
      Complex acc = 0;
      for (std::size_t k = 0; k < 2 * n; ++k) {
        const double coef = static_cast<double>(m.to_centered(c.limb(0)[k * gap]));
        const double ang = std::numbers::pi * static_cast<double>((r * k * gap) % (2 * N)) / N;
        acc += coef * std::polar(1.0, ang);
      }
      acc /= std::ldexp(1.0, 40);
      EXPECT_LT(std::abs(acc - v[j]), 1e-9) << "n=" << n << " j=" << j;
    }
  }
}

TEST(Encoder, RoundTripFullAndSparse) {
  Env& e = t13();
  core::Prng p(core::Seed{4});
  for (std::size_t n : {std::size_t{1}, std::size_t{8}, std::size_t{1024}, e.ctx.max_slots()}) {
    const Vec v = random_values(p, n);
    const Plaintext pt = e.enc.encode(v, e.ctx.max_level(), e.ctx.default_scale());
    EXPECT_EQ(pt.slots, n);
    EXPECT_TRUE(AtLeast(precision(e.enc.decode(pt), v), 30, 27)) << n;
  }
  // Non-power-of-two input is padded with zeros.
  const Vec v = random_values(p, 5);
  const auto out = e.enc.decode(e.enc.encode(v, 1, e.ctx.default_scale()));
  ASSERT_EQ(out.size(), 8u);
  EXPECT_LT(std::abs(out[6]), 1e-8);
  // Large scale: values * scale beyond 2^63 go through the multi-word path.
  const Plaintext big = e.enc.encode(v, 2, std::ldexp(1.0, 70));
  const Vec bd = e.enc.decode(big);
  EXPECT_TRUE(AtLeast(precision(Vec(bd.begin(), bd.begin() + 5), v), 40, 37));
}

TEST(Encoder, RejectsBadInput) {
  Env& e = t13();
  Vec v = {1.0, std::numeric_limits<double>::quiet_NaN()};
  EXPECT_THROW(e.enc.encode(v, 0, 1e12), std::invalid_argument);
  Vec big = {1e30};
  EXPECT_THROW(e.enc.encode(big, 0, std::ldexp(1.0, 40)), std::invalid_argument);
  Vec many(e.ctx.max_slots() + 1);
  EXPECT_THROW(e.enc.encode(many, 0, 1e12), std::invalid_argument);
  EXPECT_THROW(e.enc.encode(Vec{1.0}, 99, 1e12), std::invalid_argument);
}

TEST(Encoder, ConstantWithoutFft) {
  Env& e = t13();
  const Complex c(0.25, -1.5);
  const Plaintext pt = e.enc.encode_constant(c, 2, e.ctx.default_scale(), 16);
  for (const auto& x : e.enc.decode(pt)) EXPECT_LT(std::abs(x - c), 1e-9);
}

TEST(Encoder, CompactPlaintextExpandsToTheSameEncoding) {
  Env& e = t13();
  core::Prng p(core::Seed{5});
  for (std::size_t n : {std::size_t{8}, e.ctx.max_slots()}) {
    const Vec v = random_values(p, n);
    const Plaintext pt = e.enc.encode(v, 2, e.ctx.default_scale());
    const CompactPlaintext c = e.enc.encode_compact(v, 2, e.ctx.default_scale());
    EXPECT_EQ(c.bytes(), 2 * n * sizeof(std::int64_t));
    Plaintext back;
    e.enc.expand(c, back);
    ASSERT_EQ(back.poly.size(), pt.poly.size());
    EXPECT_TRUE(std::equal(pt.poly.data(), pt.poly.data() + pt.poly.size(), back.poly.data()));
    EXPECT_EQ(back.scale, pt.scale);
    EXPECT_EQ(back.slots, pt.slots);
  }
  // Coefficients beyond q0 / 2 cannot be kept compact; malformed ones are refused.
  EXPECT_THROW(e.enc.encode_compact(Vec(8, 1.0), 2, 0x1p70), std::invalid_argument);
  CompactPlaintext bad = e.enc.encode_compact(Vec(8, 1.0), 2, e.ctx.default_scale());
  bad.coeffs.pop_back();
  Plaintext out;
  EXPECT_THROW(e.enc.expand(bad, out), std::invalid_argument);
}

TEST(Ckks, EncryptDecryptPublicAndSecret) {
  Env& e = t13();
  core::Prng p(core::Seed{5});
  const Vec v = random_values(p, e.ctx.max_slots());
  const Ciphertext ct = e.encrypt(v, e.ctx.max_level());
  EXPECT_TRUE(AtLeast(precision(e.decrypt(ct), v), kMean, kWorst));
  Encryptor sym(e.ctx, e.sk, core::Seed{6});
  const Plaintext pt = e.enc.encode(v, 1, e.ctx.default_scale());
  EXPECT_TRUE(AtLeast(precision(e.decrypt(sym.encrypt(pt)), v), kMean, kWorst));
  const SeededCiphertext s = sym.encrypt_seeded(pt);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(expand(e.ctx, s)), v), kMean, kWorst));
}

TEST(Ckks, AddSubNegateAndConstants) {
  Env& e = t13();
  core::Prng p(core::Seed{7});
  const std::size_t n = e.ctx.max_slots();
  const Vec a = random_values(p, n), b = random_values(p, n);
  const Ciphertext ca = e.encrypt(a, 2), cb = e.encrypt(b, 2);
  Vec want(n);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.add(ca, cb)), want), kMean, kWorst));
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] - b[i];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.sub(ca, cb)), want), kMean, kWorst));
  for (std::size_t i = 0; i < n; ++i) want[i] = -a[i];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.negate(ca)), want), kMean, kWorst));
  const Plaintext pb = e.enc.encode(b, 2, ca.scale);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.add_plain(ca, pb)), want), kMean, kWorst));
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] - b[i];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.sub_plain(ca, pb)), want), kMean, kWorst));
  const Complex c(0.5, -0.75);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] + c;
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.add_const(ca, c)), want), kMean, kWorst));
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * Complex(0, 1);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.multiply_by_i(ca)), want), kMean, kWorst));
  Ciphertext ci = ca;
  e.ev.multiply_integer_inplace(ci, -3);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * -3.0;
  EXPECT_TRUE(AtLeast(precision(e.decrypt(ci), want), kMean, kWorst));
  // Level alignment: adding a level-1 ciphertext drops the other operand.
  const Ciphertext c1 = e.encrypt(b, 1);
  const Ciphertext sum = e.ev.add(ca, c1);
  EXPECT_EQ(sum.level(), 1u);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(sum), want), kMean, kWorst));
}

TEST(Ckks, MultiplyRelinearizeRescale) {
  Env& e = t13();
  core::Prng p(core::Seed{8});
  const std::size_t n = e.ctx.max_slots();
  const Vec a = random_values(p, n), b = random_values(p, n);
  const Ciphertext ca = e.encrypt(a, 2), cb = e.encrypt(b, 2);
  Vec want(n);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * b[i];
  Ciphertext t = e.ev.multiply(ca, cb);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(t), want), kMean, kWorst));  // size-3 decryption
  e.ev.relinearize_inplace(t, e.rlk);
  e.ev.rescale_inplace(t);
  EXPECT_EQ(t.level(), 1u);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(t), want), kMean, kWorst));
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * a[i];
  Ciphertext s = e.ev.square(ca);
  e.ev.relinearize_inplace(s, e.rlk);
  e.ev.rescale_inplace(s);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(s), want), kMean, kWorst));
  // Plaintext and constant multiplication.
  const Plaintext pb = e.enc.encode(b, 2, e.ctx.default_scale());
  Ciphertext mp = e.ev.multiply_plain(ca, pb);
  e.ev.rescale_inplace(mp);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * b[i];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(mp), want), kMean, kWorst));
  const Complex c(-0.3, 0.8);
  Ciphertext mc = e.ev.multiply_const(ca, c);
  e.ev.rescale_inplace(mc);
  EXPECT_NEAR(mc.scale, ca.scale, 1e-6 * ca.scale);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * c;
  EXPECT_TRUE(AtLeast(precision(e.decrypt(mc), want), kMean, kWorst));
  EXPECT_THROW(
      e.ev.add(mc, ca.level() == mc.level() ? mc : e.ev.rescale(e.ev.multiply_const(ca, 1.0, 1e9))),
      std::invalid_argument);
}

TEST(Ckks, MultiplyPlainSumEqualsProductsAdded) {
  Env& e = t13();
  core::Prng p(core::Seed{18});
  const std::size_t n = e.ctx.max_slots();
  // 19 terms: more than one 16-term accumulation chunk.
  std::vector<Ciphertext> cs;
  std::vector<Plaintext> ps;
  Vec want(n, 0);
  for (int t = 0; t < 19; ++t) {
    const Vec a = random_values(p, n), b = random_values(p, n);
    cs.push_back(e.encrypt(a, 2));
    ps.push_back(e.enc.encode(b, 2, e.ctx.default_scale()));
    for (std::size_t i = 0; i < n; ++i) want[i] += a[i] * b[i];
  }
  std::vector<const Ciphertext*> xs;
  std::vector<const Plaintext*> ys;
  for (int t = 0; t < 19; ++t) {
    xs.push_back(&cs[t]);
    ys.push_back(&ps[t]);
  }
  Ciphertext sum = e.ev.multiply_plain_sum(xs, ys);
  Ciphertext ref = e.ev.multiply_plain(cs[0], ps[0]);
  for (int t = 1; t < 19; ++t) e.ev.add_inplace(ref, e.ev.multiply_plain(cs[t], ps[t]));
  // Exactly the same residues as multiplying and adding one by one.
  for (std::size_t j = 0; j < 2; ++j) {
    ASSERT_EQ(sum.parts[j].size(), ref.parts[j].size());
    EXPECT_TRUE(std::equal(sum.parts[j].data(), sum.parts[j].data() + sum.parts[j].size(),
                           ref.parts[j].data()));
  }
  e.ev.rescale_inplace(sum);
  EXPECT_LT(hetal::testing::max_error(e.decrypt(sum), want), 1e-5);
  // Mismatched scales or counts are refused.
  const Plaintext other = e.enc.encode(random_values(p, n), 2, 2 * e.ctx.default_scale());
  ys[3] = &other;
  EXPECT_THROW(e.ev.multiply_plain_sum(xs, ys), std::invalid_argument);
  ys.pop_back();
  EXPECT_THROW(e.ev.multiply_plain_sum(xs, ys), std::invalid_argument);
}

TEST(Ckks, DeepMultiplicationChainOnT14) {
  Env& e = t14();
  core::Prng p(core::Seed{9});
  const std::size_t n = e.ctx.max_slots();
  const Vec a = random_values(p, n);
  Ciphertext ct = e.encrypt(a, e.ctx.max_level());
  Vec want = a;
  for (int d = 0; d < 6; ++d) {
    e.ev.multiply_relin_inplace(ct, ct, e.rlk);
    e.ev.rescale_inplace(ct);
    for (auto& x : want) x = x * x;
  }
  EXPECT_EQ(ct.level(), 0u);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(ct), want), 15, 12));
  EXPECT_THROW(e.ev.rescale_inplace(ct), std::invalid_argument);
}

TEST(Ckks, RotationsEveryPowerOfTwoArbitraryNegativeAndConjugate) {
  Env& e = t13();
  core::Prng p(core::Seed{10});
  const std::size_t n = e.ctx.max_slots();
  GaloisKeys gk = e.kg.galois_keys_pow2(e.sk);
  const Vec a = random_values(p, n);
  const Ciphertext ca = e.encrypt(a, 2);
  for (long long k = 1; k < static_cast<long long>(n); k <<= 1) {
    EXPECT_TRUE(
        AtLeast(precision(e.decrypt(e.ev.rotate(ca, k, gk)), rotate_plain(a, k)), kMean, kWorst))
        << k;
    EXPECT_TRUE(
        AtLeast(precision(e.decrypt(e.ev.rotate(ca, -k, gk)), rotate_plain(a, -k)), kMean, kWorst))
        << -k;
  }
  for (long long k : {3LL, 7LL, -5LL, 1000LL, static_cast<long long>(n) - 1}) {
    EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.rotate(ca, k, gk)), rotate_plain(a, k)), 24, 21))
        << k;
  }
  Vec conj(n);
  for (std::size_t i = 0; i < n; ++i) conj[i] = std::conj(a[i]);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(e.ev.conjugate(ca, gk)), conj), kMean, kWorst));
  // A dedicated key for an arbitrary step is used directly.
  const long long steps[] = {13};
  GaloisKeys g13 = e.kg.galois_keys(e.sk, steps);
  EXPECT_TRUE(
      AtLeast(precision(e.decrypt(e.ev.rotate(ca, 13, g13)), rotate_plain(a, 13)), kMean, kWorst));
  EXPECT_THROW(e.ev.rotate(ca, 3, g13), std::invalid_argument);
}

// A seeded key (uniform halves dropped, regenerated at each key switch) switches to exactly
// the ciphertext the resident key gives, plain and hoisted, at the key's level and below (a
// prefix of the key's Q limbs); its resident size is the b halves only.
TEST(Ckks, SeededKeysSwitchExactlyLikeResidentOnes) {
  Env& e = t13();
  core::Prng p(core::Seed{12});
  const long long steps[] = {1, 5, -3};
  // Below the top: the P limbs' streams are numbered from the chain's end, not the key's.
  const std::size_t key_level = e.ctx.max_level() - 1;
  const GaloisKeys full = e.kg.galois_keys(e.sk, steps, false, key_level);
  GaloisKeys seeded = full;
  std::size_t b_bytes = 0;
  for (auto& [g, k] : seeded.keys) {
    k.drop_uniform();
    ASSERT_TRUE(k.seeded());
    for (const auto& x : k.b) b_bytes += x.size() * sizeof(std::uint64_t);
  }
  std::size_t full_bytes = 0, seeded_bytes = 0;
  for (const auto& [g, k] : full.keys) full_bytes += k.bytes();
  for (const auto& [g, k] : seeded.keys) seeded_bytes += k.bytes();
  EXPECT_EQ(seeded_bytes, b_bytes);
  EXPECT_EQ(2 * seeded_bytes, full_bytes);
  const auto same = [](const Ciphertext& x, const Ciphertext& y) {
    for (std::size_t j = 0; j < 2; ++j) {
      const RnsPoly &u = x.parts.at(j), &v = y.parts.at(j);
      if (u.size() != v.size() || !std::equal(u.data(), u.data() + u.size(), v.data()))
        return false;
    }
    return true;
  };
  const Vec a = random_values(p, e.ctx.max_slots());
  for (const std::size_t level : {key_level, std::size_t{1}}) {
    const Ciphertext ca = e.encrypt(a, level);
    for (const long long k : steps) {
      const Ciphertext x = e.ev.rotate(ca, k, full), y = e.ev.rotate(ca, k, seeded);
      EXPECT_TRUE(same(x, y)) << k;
    }
    const rlwe::Decomposition dec = e.ev.hoist(ca);
    const Ciphertext x = e.ev.rotate_hoisted(ca, dec, 5, full),
                     y = e.ev.rotate_hoisted(ca, dec, 5, seeded);
    EXPECT_TRUE(same(x, y));
    EXPECT_TRUE(AtLeast(precision(e.decrypt(y), rotate_plain(a, 5)), kMean, kWorst));
  }
}

TEST(Ckks, SparseSlotsRotate) {
  Env& e = t13();
  core::Prng p(core::Seed{11});
  GaloisKeys gk = e.kg.galois_keys_pow2(e.sk);
  for (std::size_t n : {std::size_t{4}, std::size_t{256}}) {
    const Vec a = random_values(p, n);
    const Ciphertext ca = e.encrypt(a, 1);
    for (long long k : {1LL, -1LL, 3LL, static_cast<long long>(n) + 1}) {
      EXPECT_TRUE(
          AtLeast(precision(e.decrypt(e.ev.rotate(ca, k, gk)), rotate_plain(a, k)), kMean, kWorst))
          << n << " " << k;
    }
  }
}

TEST(Ckks, HoistedEqualsNonHoisted) {
  Env& e = t14();
  core::Prng p(core::Seed{12});
  const std::size_t n = e.ctx.max_slots();
  const long long steps[] = {1, 2, 5, -3, 100};
  GaloisKeys gk = e.kg.galois_keys(e.sk, steps, false, 5);
  const Vec a = random_values(p, n);
  Ciphertext ca = e.encrypt(a, 5);
  const auto hoisted = e.ev.rotate_hoisted(ca, steps, gk);
  for (std::size_t j = 0; j < std::size(steps); ++j) {
    const Ciphertext plain = e.ev.rotate(ca, steps[j], gk);
    // Same algorithm, same key: bit-identical results.
    EXPECT_TRUE(plain.parts[0] == hoisted[j].parts[0] && plain.parts[1] == hoisted[j].parts[1]);
    EXPECT_TRUE(
        AtLeast(precision(e.decrypt(hoisted[j]), rotate_plain(a, steps[j])), kMean, kWorst));
  }
  // Keys capped at level 5 refuse a level-7 ciphertext with a clear error.
  Ciphertext top = e.encrypt(a, 6);
  EXPECT_THROW(e.ev.rotate(top, 1, gk), std::invalid_argument);
  // Rotate-and-sum over 8 slots.
  const long long pow2[] = {1, 2, 4};
  GaloisKeys gs = e.kg.galois_keys(e.sk, pow2);
  Ciphertext s = e.encrypt(a, 3);
  e.ev.rotate_sum_inplace(s, 8, 1, gs);
  Vec want(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < 8; ++j) want[i] += a[(i + j) % n];
  EXPECT_TRUE(AtLeast(precision(e.decrypt(s), want), 22, 19));
}

// Double hoisting's pieces: every value over Q_l P divides back by P to exactly what the single
// hoisted operations give (P a is divisible by P; the key switch is the same inner product).
TEST(Ckks, DoubleHoistingPiecesEqualSingleHoisting) {
  Env& e = t14();
  core::Prng p(core::Seed{13});
  const std::size_t n = e.ctx.max_slots(), level = 4;
  const long long steps[] = {1, 5, -3};
  GaloisKeys gk = e.kg.galois_keys(e.sk, steps, false, level);
  const Vec a = random_values(p, n), b = random_values(p, n);
  const Ciphertext ca = e.encrypt(a, level), cb = e.encrypt(b, level);
  const auto same = [](const Ciphertext& x, const Ciphertext& y) {
    return x.parts[0] == y.parts[0] && x.parts[1] == y.parts[1] && x.scale == y.scale;
  };
  EXPECT_TRUE(same(e.ev.mod_down(e.ev.lift_qp(ca)), ca));
  const rlwe::Decomposition dec = e.ev.hoist(ca);
  for (long long k : steps) {
    EXPECT_TRUE(same(e.ev.mod_down(e.ev.rotate_hoisted_qp(ca, dec, k, gk)),
                     e.ev.rotate_hoisted(ca, dec, k, gk)));
    CiphertextQP x = e.ev.lift_qp(ca);
    e.ev.rotate_qp_inplace(x, k, gk);
    EXPECT_TRUE(same(e.ev.mod_down(std::move(x)), e.ev.rotate(ca, k, gk)));
  }
  // Plaintext products summed over Q_l P.
  const Vec da = random_values(p, n), db = random_values(p, n);
  const double dscale = static_cast<double>(e.ctx.params().q_primes[level]);
  Plaintext pa, pb, pa_qp, pb_qp;
  e.enc.expand(e.enc.encode_compact(da, level, dscale), pa);
  e.enc.expand(e.enc.encode_compact(db, level, dscale), pb);
  e.enc.expand(e.enc.encode_compact(da, level, dscale), pa_qp, true);
  e.enc.expand(e.enc.encode_compact(db, level, dscale), pb_qp, true);
  EXPECT_EQ(pa_qp.poly.np(), e.ctx.rns().p_count());
  const CiphertextQP la = e.ev.lift_qp(ca), lb = e.ev.lift_qp(cb);
  const CiphertextQP* xs[] = {&la, &lb};
  const Plaintext* ps_qp[] = {&pa_qp, &pb_qp};
  const Ciphertext* cs[] = {&ca, &cb};
  const Plaintext* ps[] = {&pa, &pb};
  CiphertextQP sum = e.ev.multiply_plain_sum_qp(xs, ps_qp);
  EXPECT_TRUE(same(e.ev.mod_down(std::move(sum)), e.ev.multiply_plain_sum(cs, ps)));
  CiphertextQP acc = e.ev.lift_qp(ca);
  e.ev.add_qp_inplace(acc, lb);
  const Vec got = e.decrypt(e.ev.mod_down(std::move(acc)));
  Vec want(n);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
  EXPECT_TRUE(AtLeast(precision(got, want), kMean, kWorst));
  // Errors: plaintexts without the P limbs, a rotation with no key of its own, mismatched levels.
  const Plaintext* no_p[] = {&pa, &pb};
  EXPECT_THROW(e.ev.multiply_plain_sum_qp(xs, no_p), std::invalid_argument);
  CiphertextQP y = e.ev.lift_qp(ca);
  EXPECT_THROW(e.ev.rotate_qp_inplace(y, 2, gk), std::invalid_argument);
  const CiphertextQP low = e.ev.lift_qp(e.encrypt(a, level - 1));
  EXPECT_THROW(e.ev.add_qp_inplace(y, low), std::invalid_argument);
  EXPECT_THROW(e.ev.rotate_hoisted_qp(e.encrypt(a, level - 1), dec, 1, gk), std::invalid_argument);
}

TEST(Ckks, KeySwitchingWithEveryDigitCount) {
  struct Case {
    std::size_t dnum;
    std::vector<int> q, p;
  };
  const Case cases[] = {{1, {50, 40, 40}, {60, 60, 60}},
                        {2, {50, 40, 40, 40}, {50, 50}},
                        {4, {60, 40, 40, 40, 40, 40, 40}, {60, 60}},
                        {7, {60, 40, 40, 40, 40, 40, 40}, {60}}};
  for (const Case& c : cases) {
    Parameters prm = Parameters::preset(Preset::T14);
    prm.dnum = c.dnum;
    prm.q_bits = c.q;
    prm.p_bits = c.p;
    prm.q_primes.clear();
    prm.p_primes.clear();
    prm.materialize();
    Env e(prm);
    EXPECT_EQ(e.ctx.rns().digits(e.ctx.max_level() + 1), c.dnum);
    core::Prng p(core::Seed{13});
    const Vec a = random_values(p, e.ctx.max_slots()), b = random_values(p, e.ctx.max_slots());
    Ciphertext ca = e.encrypt(a, e.ctx.max_level()), cb = e.encrypt(b, e.ctx.max_level());
    e.ev.multiply_relin_inplace(ca, cb, e.rlk);
    e.ev.rescale_inplace(ca);
    Vec want(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) want[i] = a[i] * b[i];
    EXPECT_TRUE(AtLeast(precision(e.decrypt(ca), want), kMean, kWorst)) << "dnum " << c.dnum;
  }
}

TEST(Ckks, RescaleRefusesACollapsingScale) {
  // Scale 2^40 squared on a level whose prime has 60 bits would rescale to 2^20: refused rather
  // than silently imprecise.
  const Context ctx(Parameters::preset(Preset::TB13_INSECURE), SecurityPolicy::allow_insecure);
  const Encoder enc(ctx);
  KeyGenerator kg(ctx, core::Seed{3});
  const SecretKey sk = kg.secret_key();
  Encryptor encryptor(ctx, sk);
  const Evaluator ev(ctx);
  const Ciphertext c = encryptor.encrypt(enc.encode(Vec(8, 0.5), 20, ctx.default_scale()));
  Ciphertext sq = ev.square(c);
  try {
    ev.rescale_inplace(sq);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("scale would drop"), std::string::npos);
  }
  // At the user levels (40-bit primes) the same product rescales fine.
  Ciphertext ok = ev.square(encryptor.encrypt(enc.encode(Vec(8, 0.5), 9, ctx.default_scale())));
  EXPECT_NO_THROW(ev.rescale_inplace(ok));
}

TEST(Ckks, MatchScaleAndDropLevel) {
  Env& e = t14();
  core::Prng p(core::Seed{14});
  const Vec a = random_values(p, 64);
  Ciphertext ca = e.encrypt(a, 5);
  e.ev.match_scale_inplace(ca, std::ldexp(1.0, 35));
  EXPECT_EQ(ca.level(), 4u);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(ca), a), 20, 17));
  e.ev.drop_to_level_inplace(ca, 2);
  EXPECT_EQ(ca.level(), 2u);
  EXPECT_TRUE(AtLeast(precision(e.decrypt(ca), a), 20, 17));
  EXPECT_THROW(e.ev.drop_to_level_inplace(ca, 3), std::invalid_argument);
}

TEST(Parameters, SecurityValidation) {
  EXPECT_TRUE(security_report(Parameters::preset(Preset::T13)).secure);
  EXPECT_TRUE(security_report(Parameters::preset(Preset::T14)).secure);
  const Parameters b16 = Parameters::preset(Preset::B16_H192);
  const auto r = security_report(b16);
  EXPECT_TRUE(r.secure) << r.reason;
  EXPECT_LE(r.log_qp, 1555);
  EXPECT_EQ(b16.q_primes.size(), 25u);
  EXPECT_EQ(b16.user_top_level(), 9u);
  EXPECT_FALSE(security_report(Parameters::preset(Preset::TB13_INSECURE)).secure);
  EXPECT_THROW(Context(Parameters::preset(Preset::TB13_INSECURE)), std::invalid_argument);
  EXPECT_NO_THROW(
      Context(Parameters::preset(Preset::TB13_INSECURE), SecurityPolicy::allow_insecure));
  Parameters big = Parameters::preset(Preset::T13);
  big.q_bits = {60, 60, 60, 60};
  big.q_primes.clear();
  big.materialize();
  EXPECT_THROW(Context{big}, std::invalid_argument);
  Parameters bad = Parameters::preset(Preset::T13);
  bad.q_primes[1] = bad.q_primes[0];
  EXPECT_THROW(Context{bad}, std::invalid_argument);
}

TEST(Readme, QuickStartExampleComputesWhatItSays) {
  // The README's library example, at T13 instead of B16-H192.
  Context ctx(Parameters::preset(Preset::T13));
  KeyGenerator kg(ctx);
  SecretKey sk = kg.secret_key();
  PublicKey pk = kg.public_key(sk);
  RelinKey rlk = kg.relin_key(sk, ctx.user_top_level());
  GaloisKeys gk = kg.galois_keys_pow2(sk, ctx.user_top_level());
  Encoder enc(ctx);
  Encryptor encryptor(ctx, pk);
  Decryptor decryptor(ctx, sk);
  Evaluator ev(ctx);
  std::vector<double> x = {1.0, 2.0, 3.0};
  Ciphertext ct = encryptor.encrypt(enc.encode(x, ctx.user_top_level(), ctx.default_scale()));
  ev.multiply_relin_inplace(ct, ct, rlk);
  ev.rescale_inplace(ct);
  ev.rotate_inplace(ct, 1, gk);
  auto dec = ev.hoist(ct);
  Ciphertext r2 = ev.rotate_hoisted(ct, dec, 2, gk);
  std::vector<double> y = enc.decode_real(decryptor.decrypt(ct));
  const std::vector<double> want = {4, 9, 0, 1};
  ASSERT_EQ(y.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(y[i], want[i], 1e-5);
  const auto y2 = enc.decode_real(decryptor.decrypt(r2));
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(y2[i], want[(i + 2) % 4], 1e-5);
}
