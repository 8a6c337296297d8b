// Bootstrapping (circuits/bootstrapping) on a small insecure chain with the production shape.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/precision.h"
#include "test_util.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {
Parameters small_chain(rlwe::SecretDistribution secret) {
  // user 60, 40, 40 | SlotsToCoeffs 39 x 3 | EvalMod 60 x 8 | CoeffsToSlots 56 x 4; P = 61 x 4.
  Parameters p;
  p.name = "boot-test-N2^12";
  p.log_n = 12;
  p.q_bits = {60, 40, 40, 39, 39, 39};
  for (int i = 0; i < 8; ++i) p.q_bits.push_back(60);
  for (int i = 0; i < 4; ++i) p.q_bits.push_back(56);
  p.p_bits = {61, 61, 61, 61};
  p.dnum = 5;
  p.secret = secret;
  p.user_q_count = 3;
  p.materialize();
  return p;
}

/// Context, keys and evaluators over the small chain with the given user secret.
struct BootSetup {
  Context ctx;
  Encoder enc{ctx};
  KeyGenerator kg;
  SecretKey sk = kg.secret_key();
  RelinKey rlk = kg.relin_key(sk);
  Encryptor encryptor{ctx, sk};
  Decryptor dec{ctx, sk};
  Evaluator ev{ctx};
  BootSetup(Parameters params, std::uint8_t seed)
      : ctx(std::move(params), SecurityPolicy::allow_insecure), kg(ctx, core::Seed{seed}) {}
  BootSetup(rlwe::SecretDistribution secret, std::uint8_t seed)
      : BootSetup(small_chain(secret), seed) {}
  Ciphertext encrypt(const std::vector<Complex>& z) {
    return encryptor.encrypt(enc.encode(z, 0, ctx.default_scale()));
  }
};
}  // namespace

TEST(Bootstrapping, RefreshesFullAndSparseSlots) {
  // No encapsulation: the user's key itself is sparse (h = 32).
  BootSetup t({rlwe::SecretDistribution::Kind::sparse_ternary, 32}, 61);
  core::Prng p(core::Seed{62});
  for (std::size_t slots : {t.ctx.max_slots(), std::size_t{64}}) {
    circuits::BootstrapParameters bp;
    bp.slots = slots;
    bp.ephemeral_hamming_weight = 0;
    // h = 32: |I| stays below 12 except with probability ~2^-40 per coefficient, and K = 12
    // lets a degree-31 cosine reach ~28 bits in the 8 EvalMod levels (K = 16 gives ~16 bits).
    bp.mod1.k = 12;
    bp.mod1.degree = 31;
    circuits::Bootstrapper boot(t.ctx, t.enc, t.ev, t.rlk, bp);
    EXPECT_EQ(boot.output_level(), 2u);
    const circuits::BootstrapKeys keys = boot.generate_keys(t.kg, t.sk);
    EXPECT_FALSE(keys.dense_to_sparse.has_value());
    const std::vector<Complex> z = hetal::testing::random_box(p, slots);
    const Ciphertext out = boot.bootstrap(t.encrypt(z), keys);
    EXPECT_EQ(out.level(), 2u);
    // The output sits on the default scale, exactly: fresh ciphertexts add to it directly.
    EXPECT_EQ(out.scale, t.ctx.default_scale());
    const ckks::Precision pr = precision(t.enc.decode(t.dec.decrypt(out)), z);
    std::printf("slots %zu: mean %.1f bits, worst %.1f bits\n", slots, pr.mean, pr.worst);
    // Measured at this N = 2^12 chain: 25.1 / 23.6 bits (mean / worst slot) for 2048 slots and
    // 23.2 / 22.1 for 64 slots (the worst full slot was 20.3 before EvalMod's mean error was
    // subtracted). The bounds guard against regressions with ~1 bit of margin; the issue's
    // N = 2^16 targets are checked by the slow test and the benchmark.
    const bool full = slots == t.ctx.max_slots();
    EXPECT_GT(pr.mean, full ? 24 : 22) << slots;
    EXPECT_GT(pr.worst, full ? 22.5 : 21) << slots;
    // The refreshed ciphertext computes on: one multiplication at the user levels.
    Ciphertext sq = t.ev.multiply_relin(out, out, t.rlk);
    t.ev.rescale_inplace(sq);
    const auto got2 = t.enc.decode(t.dec.decrypt(sq));
    double worst2 = 0;
    for (std::size_t i = 0; i < slots; ++i)
      worst2 = std::max(worst2, std::abs(got2[i] - z[i] * z[i]));
    EXPECT_LT(worst2, 1e-2) << slots;
  }
}

TEST(Bootstrapping, EncapsulatesADenseUserKey) {
  // A uniform ternary user key (|I| up to ~N/4 without encapsulation) bootstraps through an
  // ephemeral h = 32 key.
  BootSetup t({rlwe::SecretDistribution::Kind::uniform_ternary, 0}, 71);
  circuits::BootstrapParameters bp;
  bp.mod1.k = 12;
  bp.mod1.degree = 31;
  circuits::Bootstrapper boot(t.ctx, t.enc, t.ev, t.rlk, bp);
  const circuits::BootstrapKeys keys = boot.generate_keys(t.kg, t.sk);
  ASSERT_TRUE(keys.dense_to_sparse.has_value());
  // The dense-to-sparse key lives over q0 * p0 only, the sparse-to-dense key over the chain.
  EXPECT_EQ(keys.dense_to_sparse->nq, 1u);
  EXPECT_EQ(keys.dense_to_sparse->b[0].np(), 1u);
  EXPECT_EQ(keys.sparse_to_dense->nq, t.ctx.max_level() + 1);
  core::Prng p(core::Seed{72});
  const std::vector<Complex> z = hetal::testing::random_box(p, t.ctx.max_slots());
  const Ciphertext ct = t.encrypt(z);
  const ckks::Precision pr = precision(t.enc.decode(t.dec.decrypt(boot.bootstrap(ct, keys))), z);
  std::printf("encapsulated: mean %.1f bits, worst %.1f bits\n", pr.mean, pr.worst);
  EXPECT_GT(pr.mean, 24);
  EXPECT_GT(pr.worst, 22);  // 23.4 measured (19.x before EvalMod's mean error was subtracted)
  // Without encapsulation the same dense key overflows EvalMod's interval.
  bp.ephemeral_hamming_weight = 0;
  circuits::Bootstrapper plain(t.ctx, t.enc, t.ev, t.rlk, bp);
  const ckks::Precision bad = precision(t.enc.decode(t.dec.decrypt(plain.bootstrap(ct, keys))), z);
  EXPECT_LT(bad.worst, 0);
}

TEST(Bootstrapping, TwoRealCiphertextsForThePriceOfOne) {
  BootSetup t({rlwe::SecretDistribution::Kind::uniform_ternary, 0}, 101);
  circuits::BootstrapParameters bp;
  bp.slots = 64;
  circuits::Bootstrapper boot(t.ctx, t.enc, t.ev, t.rlk, bp);
  const circuits::BootstrapKeys keys = boot.generate_keys(t.kg, t.sk);
  core::Prng p(core::Seed{102});
  std::vector<Complex> a(64), b(64);
  for (std::size_t i = 0; i < 64; ++i) {
    a[i] = 2 * hetal::testing::unit_real(p) - 1;
    b[i] = 2 * hetal::testing::unit_real(p) - 1;
  }
  const auto [ra, rb] = boot.bootstrap_real_pair(t.encrypt(a), t.encrypt(b), keys);
  EXPECT_EQ(ra.level(), boot.output_level());
  EXPECT_EQ(ra.scale, t.ctx.default_scale());
  EXPECT_EQ(rb.scale, t.ctx.default_scale());
  const ckks::Precision pa = precision(t.enc.decode(t.dec.decrypt(ra)), a);
  const ckks::Precision pb = precision(t.enc.decode(t.dec.decrypt(rb)), b);
  std::printf("pair: a %.1f / %.1f bits, b %.1f / %.1f bits\n", pa.mean, pa.worst, pb.mean,
              pb.worst);
  EXPECT_GT(pa.mean, 20);
  EXPECT_GT(pb.mean, 20);
  EXPECT_GT(std::min(pa.worst, pb.worst), 21);  // 22.2-22.4 measured
}

TEST(Bootstrapping, RefusesMissingEncapsulationKeys) {
  BootSetup t({rlwe::SecretDistribution::Kind::uniform_ternary, 0}, 81);
  circuits::BootstrapParameters bp;
  bp.slots = 64;
  circuits::Bootstrapper boot(t.ctx, t.enc, t.ev, t.rlk, bp);
  const circuits::BootstrapKeys none;
  EXPECT_THROW(boot.bootstrap(t.encrypt(std::vector<Complex>(64, 0.5)), none),
               std::invalid_argument);
}

TEST(Bootstrapping, ProductionShapeOnTheInsecureTestPreset) {
  // TB13-INSECURE: the B16-H192 chain and h = 192 user key at N = 2^13, refused by default.
  EXPECT_THROW(Context{Parameters::preset(Preset::TB13_INSECURE)}, std::invalid_argument);
  BootSetup t(Parameters::preset(Preset::TB13_INSECURE), 91);
  const Context& ctx = t.ctx;
  const circuits::Bootstrapper boot(ctx, t.enc, t.ev, t.rlk, {});
  EXPECT_EQ(boot.output_level(), 9u);
  const circuits::BootstrapKeys keys = boot.generate_keys(t.kg, t.sk);
  core::Prng p(core::Seed{92});
  const std::vector<Complex> z = hetal::testing::random_unit_disk(p, ctx.max_slots());
  const Ciphertext out = boot.bootstrap(t.encrypt(z), keys);
  EXPECT_EQ(out.level(), 9u);
  EXPECT_EQ(out.scale, ctx.default_scale());
  const ckks::Precision pr = precision(t.enc.decode(t.dec.decrypt(out)), z);
  std::printf("TB13-INSECURE: mean %.1f bits, worst %.1f bits\n", pr.mean, pr.worst);
  EXPECT_GE(pr.mean, 22);
  EXPECT_GE(pr.worst, 21);
  // No slot far worse than the rest: EvalMod's mean error at the integers, a constant in every
  // coefficient, lands on the first slots (slot 0: 19.3 bits against 24.6 mean before it was
  // subtracted; 22.8 / 24.6 after).
  EXPECT_LT(pr.mean - pr.worst, 3.0);
}
