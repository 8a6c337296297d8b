// Bootstrapping (circuits/bootstrapping) on a small insecure chain with the production shape.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {
Parameters small_chain() {
  // user 60, 40, 40 | SlotsToCoeffs 39 x 3 | EvalMod 60 x 8 | CoeffsToSlots 56 x 4; P = 61 x 4.
  Parameters p;
  p.name = "boot-test-N2^12";
  p.log_n = 12;
  p.q_bits = {60, 40, 40, 39, 39, 39};
  for (int i = 0; i < 8; ++i) p.q_bits.push_back(60);
  for (int i = 0; i < 4; ++i) p.q_bits.push_back(56);
  p.p_bits = {61, 61, 61, 61};
  p.dnum = 5;
  p.secret = {rlwe::SecretDistribution::Kind::sparse_ternary, 32};
  p.user_q_count = 3;
  p.materialize();
  return p;
}
}  // namespace

TEST(Bootstrapping, RefreshesFullAndSparseSlots) {
  Context ctx(small_chain(), SecurityPolicy::allow_insecure);
  Encoder enc(ctx);
  KeyGenerator kg(ctx, core::Seed{61});
  const SecretKey sk = kg.secret_key();
  const PublicKey pk = kg.public_key(sk);
  const RelinKey rlk = kg.relin_key(sk);
  Encryptor encryptor(ctx, pk);
  Decryptor dec(ctx, sk);
  Evaluator ev(ctx);
  core::Prng p(core::Seed{62});
  for (std::size_t slots : {ctx.max_slots(), std::size_t{64}}) {
    circuits::BootstrapParameters bp;
    bp.slots = slots;
    // h = 32: |I| stays below 12 except with probability ~2^-40 per coefficient, and K = 12
    // lets a degree-31 cosine reach ~28 bits in the 8 EvalMod levels (K = 16 gives ~16 bits).
    bp.mod1.k = 12;
    bp.mod1.degree = 31;
    circuits::Bootstrapper boot(ctx, enc, ev, rlk, bp);
    EXPECT_EQ(boot.output_level(), 2u);
    const GaloisKeys gk = kg.galois_keys(sk, boot.rotations(), true);
    std::vector<Complex> z(slots);
    for (auto& v : z)
      v = {(p.next_u64() >> 11) * 0x1p-52 - 1.0, (p.next_u64() >> 11) * 0x1p-52 - 1.0};
    const Ciphertext ct = encryptor.encrypt(enc.encode(z, 0, ctx.default_scale()));
    const Ciphertext out = boot.bootstrap(ct, gk);
    EXPECT_EQ(out.level(), 2u);
    const auto got = enc.decode(dec.decrypt(out));
    double mean = 0, worst = 0;
    for (std::size_t i = 0; i < slots; ++i) {
      const double e = std::abs(got[i] - z[i]);
      mean += e;
      worst = std::max(worst, e);
    }
    mean /= static_cast<double>(slots);
    std::printf("slots %zu: mean %.1f bits, worst %.1f bits\n", slots, -std::log2(mean),
                -std::log2(worst));
    // Measured at this N = 2^12 chain: 25.1 / 20.3 bits (mean / worst slot) for 2048 slots and
    // 23.2 / 22.1 for 64 slots. The bounds guard against regressions with ~1 bit of margin; the
    // issue's N = 2^16 targets are not claimed by this test.
    const bool full = slots == ctx.max_slots();
    EXPECT_GT(-std::log2(mean), full ? 24 : 22) << slots;
    EXPECT_GT(-std::log2(worst), full ? 19 : 21) << slots;
    // The refreshed ciphertext computes on: one multiplication at the user levels.
    Ciphertext sq = ev.multiply_relin(out, out, rlk);
    ev.rescale_inplace(sq);
    const auto got2 = enc.decode(dec.decrypt(sq));
    double worst2 = 0;
    for (std::size_t i = 0; i < slots; ++i)
      worst2 = std::max(worst2, std::abs(got2[i] - z[i] * z[i]));
    EXPECT_LT(worst2, 1e-2) << slots;
  }
}
