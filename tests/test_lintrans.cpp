// Linear transforms (circuits/lintrans) against plain matrix x vector products.
#include <gtest/gtest.h>

#include <cmath>

#include "hetal/circuits/lintrans/linear_transform.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "test_util.h"

using namespace hetal;
using namespace hetal::ckks;
using circuits::LinearTransform;

namespace {
using hetal::testing::max_error;
std::vector<Complex> random_vec(core::Prng& p, std::size_t n) {
  return hetal::testing::random_box(p, n);
}

struct Fixture {
  Context ctx{Parameters::preset(Preset::T14)};
  Encoder enc{ctx};
  KeyGenerator kg{ctx, core::Seed{21}};
  SecretKey sk = kg.secret_key();
  PublicKey pk = kg.public_key(sk);
  Encryptor encryptor{ctx, pk, core::Seed{22}};
  Decryptor dec{ctx, sk};
  Evaluator ev{ctx};
};

}  // namespace

TEST(LinearTransform, DenseMatrixMatchesPlainProduct) {
  Fixture f;
  core::Prng p(core::Seed{23});
  for (std::size_t n : {std::size_t{16}, std::size_t{64}}) {
    for (std::size_t n1 : {std::size_t{0}, std::size_t{1}, std::size_t{4}}) {
      const auto m = random_vec(p, n * n);
      const auto x = random_vec(p, n);
      const std::size_t level = 4;
      LinearTransform lt(f.ctx, f.enc, LinearTransform::diagonals_of(m, n), n, level, n1);
      const GaloisKeys gk = f.kg.galois_keys(f.sk, lt.rotations(), false, level);
      const Ciphertext ct = f.encryptor.encrypt(f.enc.encode(x, level, f.ctx.default_scale()));
      const Ciphertext y = lt.apply(f.ev, ct, gk);
      EXPECT_EQ(y.level(), level - 1);
      EXPECT_NEAR(y.scale, ct.scale, 1e-9 * ct.scale);
      std::vector<Complex> want(n);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) want[i] += m[i * n + j] * x[j];
      // n terms of magnitude <= 2 each: error ~ n * 2^-25 at most.
      EXPECT_LT(max_error(f.enc.decode(f.dec.decrypt(y)), want), n * 1e-6) << n << " " << n1;
      // Compact diagonals give the very same ciphertext with far less memory.
      LinearTransform lc(f.ctx, f.enc, LinearTransform::diagonals_of(m, n), n, level, n1, 1.0,
                         true);
      EXPECT_LT(lc.bytes() * 4, lt.bytes());
      const Ciphertext yc = lc.apply(f.ev, ct, gk);
      for (std::size_t j = 0; j < 2; ++j) {
        EXPECT_TRUE(std::equal(yc.parts[j].data(), yc.parts[j].data() + yc.parts[j].size(),
                               y.parts[j].data()));
      }
    }
  }
}

// Double hoisting (the default) against single hoisting on the same keys: both match the plain
// product, and they differ only by key-switching noise.
TEST(LinearTransform, DoubleHoistingMatchesSingleHoisting) {
  Fixture f;
  core::Prng p(core::Seed{25});
  const std::size_t n = f.ctx.max_slots(), level = 4;
  std::map<long long, std::vector<Complex>> diags;
  for (long long k : {0LL, 1LL, 2LL, 3LL, 7LL, 8LL, 9LL, 40LL, 41LL, static_cast<long long>(n) - 1,
                      static_cast<long long>(n) - 9})
    diags[k] = random_vec(p, n);
  for (bool compact : {false, true}) {
    LinearTransform dh(f.ctx, f.enc, diags, n, level, 8, 1.0, compact, true);
    LinearTransform sh(f.ctx, f.enc, diags, n, level, 8, 1.0, compact, false);
    EXPECT_TRUE(dh.double_hoisted());
    EXPECT_FALSE(sh.double_hoisted());
    ASSERT_EQ(dh.rotations(), sh.rotations());
    const GaloisKeys gk = f.kg.galois_keys(f.sk, dh.rotations(), false, level);
    const auto x = random_vec(p, n);
    const Ciphertext ct = f.encryptor.encrypt(f.enc.encode(x, level, f.ctx.default_scale()));
    const Ciphertext yd = dh.apply(f.ev, ct, gk), ys = sh.apply(f.ev, ct, gk);
    EXPECT_EQ(yd.level(), level - 1);
    EXPECT_EQ(yd.scale, ys.scale);
    std::vector<Complex> want(n);
    for (const auto& [k, d] : diags)
      for (std::size_t i = 0; i < n; ++i) want[i] += d[i] * x[(i + k) % n];
    const auto gd = f.enc.decode(f.dec.decrypt(yd)), gs = f.enc.decode(f.dec.decrypt(ys));
    EXPECT_LT(max_error(gd, want), 2e-5) << compact;
    EXPECT_LT(max_error(gs, want), 2e-5) << compact;
    EXPECT_LT(max_error(gd, gs), 2e-5) << compact;
    EXPECT_GT(max_error(gd, gs), 0.0) << "the two paths round differently";
  }
}

TEST(LinearTransform, SparseDiagonalsAtFullSlotsAndErrors) {
  Fixture f;
  core::Prng p(core::Seed{24});
  const std::size_t n = f.ctx.max_slots();
  std::map<long long, std::vector<Complex>> diags;
  for (long long k : {0LL, 1LL, 5LL, static_cast<long long>(n) - 1}) diags[k] = random_vec(p, n);
  LinearTransform lt(f.ctx, f.enc, diags, n, 3);
  const GaloisKeys gk = f.kg.galois_keys(f.sk, lt.rotations(), false, 3);
  const auto x = random_vec(p, n);
  const Ciphertext ct = f.encryptor.encrypt(f.enc.encode(x, 5, f.ctx.default_scale()));
  const auto got = f.enc.decode(f.dec.decrypt(lt.apply(f.ev, ct, gk)));  // dropped from 5 to 3
  std::vector<Complex> want(n);
  for (const auto& [k, d] : diags)
    for (std::size_t i = 0; i < n; ++i) want[i] += d[i] * x[(i + k) % n];
  EXPECT_LT(max_error(got, want), 1e-5);
  const Ciphertext low = f.encryptor.encrypt(f.enc.encode(x, 2, f.ctx.default_scale()));
  EXPECT_THROW(lt.apply(f.ev, low, gk), std::invalid_argument);
  EXPECT_THROW(LinearTransform(f.ctx, f.enc, diags, n, 0), std::invalid_argument);
  std::map<long long, std::vector<Complex>> bad = {{1, std::vector<Complex>(3)}};
  EXPECT_THROW(LinearTransform(f.ctx, f.enc, bad, n, 3), std::invalid_argument);
}
