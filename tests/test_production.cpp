// The production parameter set B16-H192 (N = 2^16, h = 192, log QP = 1546) end to end:
// security verdict, precision of every key-switching operation at the user top level and at
// the full chain. Labelled `slow` (about a minute on 2 cores).
#include <gtest/gtest.h>

#include <cmath>
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
std::vector<Complex> unit_disk(std::size_t n, std::uint8_t seed) {
  core::Prng p(core::Seed{seed});
  return hetal::testing::random_unit_disk(p, n);
}
}  // namespace

TEST(Production, B16H192EndToEnd) {
  Context ctx(Parameters::preset(Preset::B16_H192));
  ASSERT_TRUE(ctx.security().secure);
  EXPECT_LE(ctx.params().log_qp(), 1555);
  EXPECT_EQ(ctx.user_top_level(), 9u);
  Encoder enc(ctx);
  KeyGenerator kg(ctx, core::Seed{7});
  const SecretKey sk = kg.secret_key();
  std::size_t weight = 0;
  for (auto c : sk.coeffs) weight += c != 0;
  EXPECT_EQ(weight, 192u);
  const PublicKey pk = kg.public_key(sk);
  Encryptor encryptor(ctx, pk);
  Decryptor dec(ctx, sk);
  Evaluator ev(ctx);
  const std::size_t n = ctx.max_slots();
  const auto a = unit_disk(n, 1), b = unit_disk(n, 2);
  for (std::size_t level : {ctx.user_top_level(), ctx.max_level()}) {
    const RelinKey rlk = kg.relin_key(sk, level);
    const GaloisKeys gk = kg.galois_keys(sk, std::vector<long long>{1, -7}, true, level);
    // The scale follows the prime that the next rescale divides by (2^40 at the user levels,
    // 2^56 in the CoeffsToSlots part of the chain), so a product comes back to the same scale.
    const double scale = static_cast<double>(ctx.params().q_primes[level]);
    const Ciphertext ca = encryptor.encrypt(enc.encode(a, level, scale));
    const Ciphertext cb = encryptor.encrypt(enc.encode(b, level, scale));
    std::vector<Complex> want(n);
    Ciphertext p = ev.multiply_relin(ca, cb, rlk);
    ev.rescale_inplace(p);
    for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * b[i];
    const Precision pp = precision(enc.decode(dec.decrypt(p)), want);
    EXPECT_GE(pp.mean, 25) << "level " << level;
    EXPECT_GE(pp.worst, 22);
    for (long long k : {1LL, -7LL}) {
      for (std::size_t i = 0; i < n; ++i) want[i] = a[(i + n + k) % n];
      const Precision pr = precision(enc.decode(dec.decrypt(ev.rotate(ca, k, gk))), want);
      EXPECT_GE(pr.mean, 25);
      EXPECT_GE(pr.worst, 22);
    }
    for (std::size_t i = 0; i < n; ++i) want[i] = std::conj(a[i]);
    const Precision pc = precision(enc.decode(dec.decrypt(ev.conjugate(ca, gk))), want);
    EXPECT_GE(pc.mean, 25);
    EXPECT_GE(pc.worst, 22);
  }
}
