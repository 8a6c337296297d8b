// Bootstrapping with the production parameters (Preset::B16_H192: N = 2^16, h = 192 user key,
// ephemeral h = 32 key): the precision bar over 2^15 complex slots in the unit disk,
// 9 user levels left, and sparse slots. Labelled `slow` (a few minutes on 2 cores, ~11 GiB).
#include <gtest/gtest.h>

#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/precision.h"
#include "test_util.h"

using namespace hetal;
using namespace hetal::ckks;

TEST(ProductionBootstrapping, FullAndSparseSlotsAtN16) {
  const Context ctx(Parameters::preset(Preset::B16_H192));
  ASSERT_TRUE(ctx.security().secure);
  const Encoder enc(ctx);
  const Evaluator ev(ctx);
  KeyGenerator kg(ctx, core::Seed{16});
  const SecretKey sk = kg.secret_key();
  const RelinKey rlk = kg.relin_key(sk);
  Encryptor encryptor(ctx, sk);
  const Decryptor dec(ctx, sk);
  core::Prng p(core::Seed{17});
  for (std::size_t slots : {ctx.max_slots(), std::size_t{1} << 12}) {
    circuits::BootstrapParameters bp;
    bp.slots = slots;
    const circuits::Bootstrapper boot(ctx, enc, ev, rlk, bp);
    EXPECT_EQ(boot.output_level(), 9u);  // the issue's >= 9 user levels at scale 2^40
    const circuits::BootstrapKeys keys = boot.generate_keys(kg, sk);
    const std::vector<Complex> z = hetal::testing::random_unit_disk(p, slots);
    const Ciphertext ct = encryptor.encrypt(enc.encode(z, 0, ctx.default_scale()));
    const Ciphertext out = boot.bootstrap(ct, keys);
    EXPECT_EQ(out.level(), 9u);
    const Precision pr = precision(enc.decode(dec.decrypt(out)), z);
    std::printf("N = 2^16, %zu slots: mean %.1f bits, worst %.1f bits\n", slots, pr.mean,
                pr.worst);
    // The bar: mean >= 20 bits, minimum >= 15 bits (measured 23.1 / 16.3, full slots).
    EXPECT_GE(pr.mean, 20) << slots;
    EXPECT_GE(pr.worst, 15) << slots;
    // The output computes on at the default scale's levels: one multiplication.
    Ciphertext sq = ev.multiply_relin(out, out, rlk);
    ev.rescale_inplace(sq);
    std::vector<Complex> want(slots);
    for (std::size_t i = 0; i < slots; ++i) want[i] = z[i] * z[i];
    EXPECT_GE(precision(enc.decode(dec.decrypt(sq)), want).worst, 14) << slots;
  }
}
