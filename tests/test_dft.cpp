// Homomorphic encoding/decoding (circuits/dft) against the encoder's special FFT.
#include <gtest/gtest.h>

#include <cmath>

#include "hetal/circuits/dft/homomorphic_dft.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "test_util.h"

using namespace hetal;
using namespace hetal::ckks;
using circuits::DftKind;
using circuits::HomomorphicDft;

namespace {
using hetal::testing::bit_reversed;
using hetal::testing::max_error;
std::vector<Complex> random_vec(core::Prng& p, std::size_t n) {
  return hetal::testing::random_box(p, n);
}
}  // namespace

TEST(Dft, FactorisedMatricesMatchTheEncoderFft) {
  Context ctx(Parameters::preset(Preset::T13));
  Encoder enc(ctx);
  core::Prng p(core::Seed{41});
  for (std::size_t n : {std::size_t{8}, std::size_t{64}}) {
    const auto z = random_vec(p, n);
    for (std::size_t levels : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
      auto u = z;
      enc.fft_special_inv(u);
      auto y = z;
      for (const auto& g : circuits::factor_special_fft(ctx, n, DftKind::coeffs_to_slots, levels)) {
        std::vector<Complex> next(n);
        for (const auto& [k, d] : g)
          for (std::size_t i = 0; i < n; ++i) next[i] += d[i] * y[(i + k) % n];
        y = next;
      }
      EXPECT_LT(max_error(y, bit_reversed(u)), 1e-12) << n << " " << levels;
      for (const auto& g : circuits::factor_special_fft(ctx, n, DftKind::slots_to_coeffs, levels)) {
        std::vector<Complex> next(n);
        for (const auto& [k, d] : g)
          for (std::size_t i = 0; i < n; ++i) next[i] += d[i] * y[(i + k) % n];
        y = next;
      }
      EXPECT_LT(max_error(y, z), 1e-12) << n << " " << levels;
    }
  }
}

TEST(Dft, EncryptedCoeffsToSlotsAndBack) {
  Context ctx(Parameters::preset(Preset::T14));
  Encoder enc(ctx);
  KeyGenerator kg(ctx, core::Seed{42});
  const SecretKey sk = kg.secret_key();
  const PublicKey pk = kg.public_key(sk);
  Encryptor encryptor(ctx, pk, core::Seed{43});
  Decryptor dec(ctx, sk);
  Evaluator ev(ctx);
  core::Prng p(core::Seed{44});
  for (std::size_t n : {std::size_t{256}, ctx.max_slots()}) {
    const std::size_t top = ctx.max_level();
    HomomorphicDft cts(ctx, enc, n, DftKind::coeffs_to_slots, 3, top);
    HomomorphicDft stc(ctx, enc, n, DftKind::slots_to_coeffs, 3, top - 3);
    std::vector<long long> rots = cts.rotations();
    for (long long k : stc.rotations()) rots.push_back(k);
    const GaloisKeys gk = kg.galois_keys(sk, rots, false, top);
    const auto z = random_vec(p, n);
    const Ciphertext ct = encryptor.encrypt(enc.encode(z, top, ctx.default_scale()));
    const Ciphertext c = cts.apply(ev, ct, gk);
    EXPECT_EQ(c.level(), top - 3);
    auto u = z;
    enc.fft_special_inv(u);
    EXPECT_LT(max_error(enc.decode(dec.decrypt(c)), bit_reversed(u)), 1e-5) << n;
    const Ciphertext back = stc.apply(ev, c, gk);
    EXPECT_EQ(back.level(), top - 6);
    EXPECT_LT(max_error(enc.decode(dec.decrypt(back)), z), 1e-4) << n;
  }
}
