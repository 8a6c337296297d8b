// EvalMod (circuits/mod1) against sin(2 pi x) for x = integer + small.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <vector>

#include "hetal/circuits/mod1/mod1.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {
/// A chain of 60-bit primes run at scale ~2^60, like the EvalMod part of the production chain
/// (N = 2^12: insecure, tests only), with its keys.
Parameters mod1_chain() {
  Parameters prm;
  prm.name = "mod1-test";
  prm.log_n = 12;
  prm.q_bits = std::vector<int>(10, 60);
  prm.p_bits = {61, 61};
  prm.dnum = 5;
  prm.materialize();
  return prm;
}

struct Mod1Setup {
  Context ctx{mod1_chain(), SecurityPolicy::allow_insecure};
  Encoder enc{ctx};
  KeyGenerator kg;
  SecretKey sk = kg.secret_key();
  PublicKey pk = kg.public_key(sk);
  RelinKey rlk = kg.relin_key(sk);
  Encryptor encryptor{ctx, pk};
  Decryptor dec{ctx, sk};
  Evaluator ev{ctx};
  explicit Mod1Setup(std::uint8_t seed) : kg(ctx, core::Seed{seed}) {}
};
}  // namespace

TEST(Mod1, RemovesTheIntegerPart) {
  Mod1Setup setup(51);
  circuits::Mod1Parameters mp;  // the defaults: K = 12, r = 3, degree 31: 8 levels
  circuits::Mod1Evaluator mod1(setup.ctx, setup.ev, setup.rlk, mp);
  EXPECT_EQ(mod1.depth(), 8u);

  core::Prng p(core::Seed{52});
  const std::size_t n = 1024;
  std::vector<double> x(n), t(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double integer = static_cast<double>(p.uniform(2 * mp.k + 1)) - static_cast<double>(mp.k);
    const double e = ((p.next_u64() >> 11) * 0x1p-52 - 1.0) * 0x1p-8;
    x[i] = integer + e;
    t[i] = x[i] / static_cast<double>(mp.k + 1);
  }
  const std::size_t top = setup.ctx.max_level();
  const double scale = static_cast<double>(setup.ctx.params().q_primes[top]);
  const Ciphertext ct = setup.encryptor.encrypt(setup.enc.encode(t, top, scale));
  const Ciphertext out = mod1.evaluate(ct);
  EXPECT_EQ(out.level(), top - 8);
  const auto got = setup.enc.decode_real(setup.dec.decrypt(out));
  double err_sin = 0, err_e = 0;
  for (std::size_t i = 0; i < n; ++i) {
    err_sin = std::max(err_sin, std::abs(got[i] - std::sin(2 * std::numbers::pi * x[i])));
    const double e = x[i] - std::round(x[i]);
    err_e = std::max(err_e, std::abs(got[i] / (2 * std::numbers::pi) - e));
  }
  EXPECT_LT(err_sin, 1e-6);
  // |e| < 2^-8: the sine's cubic term bounds the recovery error at (2 pi)^2 e^3 / 6 ~ 4e-7.
  EXPECT_LT(err_e, 1e-6);
}

// The interpolant's error at the integers has a non-zero mean under I's distribution (a sum of
// h + 1 uniforms); uncorrected, that mean is a constant in every coefficient, which
// SlotsToCoeffs piles onto the first slots. bias() is that mean, computed in plain, and
// evaluate() subtracts it: the mean error over many coefficients drawn from I's distribution
// drops from the bias to noise.
TEST(Mod1, SubtractsTheMeanErrorAtTheIntegers) {
  Mod1Setup setup(53);
  circuits::Mod1Parameters mp;  // the bootstrapper's: K = 12, r = 3, degree 31
  mp.k = 12;
  mp.degree = 31;
  mp.i_terms = 33;
  circuits::Mod1Parameters plain = mp;
  plain.i_terms = 0;
  const circuits::Mod1Evaluator corrected(setup.ctx, setup.ev, setup.rlk, mp),
      uncorrected(setup.ctx, setup.ev, setup.rlk, plain);
  EXPECT_EQ(uncorrected.bias(), 0.0);
  // The bias is the weighted mean of the plain approximation at the integers.
  double wsum = 0, sum = 0;
  for (int i = -12; i <= 12; ++i) {
    const double w = std::exp(-i * i / (2 * 33.0 / 12));
    wsum += w;
    sum += w * corrected.approximation(i);
  }
  const double bias = sum / wsum;
  EXPECT_DOUBLE_EQ(corrected.bias(), bias);
  ASSERT_GT(std::abs(bias), 1e-12);  // what is being corrected is really there
  // I drawn as a sum of 33 uniforms, e = 0: the outputs' mean is the bias, or ~0 corrected.
  core::Prng p(core::Seed{54});
  const std::size_t n = setup.ctx.max_slots();
  std::vector<double> t(n);
  for (auto& v : t) {
    double s = 0;
    for (int j = 0; j < 33; ++j) s += (p.next_u64() >> 11) * 0x1p-53 - 0.5;
    v = std::round(s) / 13.0;
  }
  const std::size_t top = setup.ctx.max_level();
  const double scale = static_cast<double>(setup.ctx.params().q_primes[top]);
  const Ciphertext ct = setup.encryptor.encrypt(setup.enc.encode(t, top, scale));
  const auto mean_of = [&](const circuits::Mod1Evaluator& m) {
    const auto got = setup.enc.decode_real(setup.dec.decrypt(m.evaluate(ct)));
    double s = 0;
    for (const double v : got) s += v;
    return s / static_cast<double>(n);
  };
  const double m_plain = mean_of(uncorrected), m_corr = mean_of(corrected);
  std::printf("bias %.3e: mean error %.3e uncorrected, %.3e corrected\n", bias, m_plain, m_corr);
  EXPECT_NEAR(m_plain, bias, 0.2 * std::abs(bias));
  EXPECT_LT(std::abs(m_corr), 0.2 * std::abs(bias));
}
