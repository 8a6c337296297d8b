// Polynomial evaluation (circuits/polynomial) against the plain polynomial.
#include <gtest/gtest.h>

#include <cmath>

#include "hetal/circuits/polynomial/polynomial_evaluator.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"

using namespace hetal;
using namespace hetal::ckks;
using circuits::Basis;
using circuits::Polynomial;
using circuits::PolynomialEvaluator;

namespace {
struct Env {
  Context ctx;
  Encoder enc{ctx};
  KeyGenerator kg{ctx, core::Seed{31}};
  SecretKey sk = kg.secret_key();
  PublicKey pk = kg.public_key(sk);
  RelinKey rlk = kg.relin_key(sk);
  Encryptor encryptor{ctx, pk, core::Seed{32}};
  Decryptor dec{ctx, sk};
  Evaluator ev{ctx};
  PolynomialEvaluator pe{ctx, ev, rlk};
  explicit Env(Parameters p, SecurityPolicy pol = SecurityPolicy::require_128)
      : ctx(std::move(p), pol) {}

  /// Max abs error of p on `count` points spread over [a, b]; checks level and scale too.
  double run(const Polynomial& p, double a, double b, std::size_t count = 256) {
    std::vector<double> x(count);
    for (std::size_t i = 0; i < count; ++i) x[i] = a + (b - a) * (i + 0.5) / count;
    const std::size_t level = ctx.max_level();
    const Ciphertext ct = encryptor.encrypt(enc.encode(x, level, ctx.default_scale()));
    const Ciphertext y = pe.evaluate(ct, p);
    EXPECT_EQ(y.level(), level - PolynomialEvaluator::depth(p)) << "degree " << p.degree();
    EXPECT_NEAR(y.scale, ct.scale, 1e-6 * ct.scale);
    const auto got = enc.decode_real(dec.decrypt(y));
    double err = 0;
    for (std::size_t i = 0; i < count; ++i) err = std::max(err, std::abs(got[i] - p(x[i])));
    return err;
  }
};

Env& t14() {
  static Env e(Parameters::preset(Preset::T14));
  return e;
}

// A deep chain of equal 40-bit primes at N = 2^12: insecure, tests only.
Env& deep() {
  static Env e(
      [] {
        Parameters p;
        p.name = "deep-test";
        p.log_n = 12;
        p.q_bits = std::vector<int>(12, 40);
        p.q_bits[0] = 60;
        p.p_bits = {60, 60};
        p.dnum = 6;
        p.materialize();
        return p;
      }(),
      SecurityPolicy::allow_insecure);
  return e;
}

std::vector<double> decaying(std::size_t n, std::uint8_t seed) {
  core::Prng p(core::Seed{seed});
  std::vector<double> c(n);
  for (std::size_t i = 0; i < n; ++i) c[i] = ((p.next_u64() >> 11) * 0x1p-52 - 1.0) / (i + 1);
  return c;
}
}  // namespace

TEST(Polynomial, PlainInterpolationAndClenshaw) {
  const Polynomial e = Polynomial::interpolate([](double x) { return std::exp(x); }, -4, 4, 24);
  for (double x : {-4.0, -1.3, 0.0, 2.7, 4.0}) EXPECT_NEAR(e(x), std::exp(x), 1e-9 * std::exp(4));
  const Polynomial m({1, -2, 3}, Basis::monomial);
  EXPECT_DOUBLE_EQ(m(2.0), 1 - 4 + 12);
  EXPECT_TRUE(Polynomial({0, 1, 0, 2}).is_odd());
  EXPECT_TRUE(Polynomial({1, 0, 2}).is_even());
  EXPECT_THROW(Polynomial({1, 2}, Basis::chebyshev, 1, 1), std::invalid_argument);
}

TEST(Polynomial, ChebyshevEveryDegreeUpTo63IsLevelOptimal) {
  Env& e = t14();
  for (std::size_t d : {1u, 2u, 3u, 4u, 5u, 7u, 8u, 15u, 16u, 31u, 33u, 63u}) {
    const Polynomial p(decaying(d + 1, static_cast<std::uint8_t>(d)));
    EXPECT_LT(e.run(p, -1, 1), 1e-5) << "degree " << d;
  }
}

TEST(Polynomial, FunctionsOnOtherIntervals) {
  Env& e = t14();
  const Polynomial ex = Polynomial::interpolate([](double x) { return std::exp(x); }, -4, 4, 15);
  EXPECT_LT(e.run(ex, -4, 4), 1e-4);
  const Polynomial sig =
      Polynomial::interpolate([](double x) { return 1 / (1 + std::exp(-x)); }, -8, 8, 31);
  EXPECT_LT(e.run(sig, -8, 8), 1e-5);
  // Odd polynomial: only odd powers are built.
  const Polynomial odd({0, 0.9, 0, -0.3, 0, 0.05, 0, -0.01});
  EXPECT_LT(e.run(odd, -1, 1), 1e-5);
  const Polynomial mono({0.5, -1, 0.25, 0.125}, Basis::monomial);
  EXPECT_LT(e.run(mono, -1, 1), 1e-5);
}

TEST(Polynomial, Degree255AndBabyStepGiantStepCost) {
  Env& e = deep();
  const Polynomial p(decaying(256, 7));
  EXPECT_EQ(PolynomialEvaluator::depth(p), 8u);
  EXPECT_LT(e.run(p, -1, 1), 1e-4);
  // Baby-step giant-step: far fewer ciphertext products than the degree.
  EXPECT_LT(e.pe.last_multiplications(), 64u);
  const Polynomial p127(decaying(128, 9), Basis::monomial);
  EXPECT_LT(e.run(p127, -0.9, 0.9), 1e-4);
}

TEST(Polynomial, RejectsTooShallowInput) {
  Env& e = t14();
  const Polynomial p(decaying(64, 3));  // depth 6
  const Ciphertext ct =
      e.encryptor.encrypt(e.enc.encode(std::vector<double>{0.5}, 5, e.ctx.default_scale()));
  EXPECT_THROW(e.pe.evaluate(ct, p), std::invalid_argument);
}
