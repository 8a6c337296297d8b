// Encrypted softmax (softmax/encrypted) piece by piece against the plain reference, then the
// whole pipeline with bootstrapping, on the TB13-INSECURE preset (the production chain shape).
#include <gtest/gtest.h>

#include <cmath>

#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/softmax/encrypted.h"
#include "tb13_env.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {
using Env = hetal::test::Tb13Env;
Env& env() { return hetal::test::tb13_env(); }

constexpr std::size_t kClasses = 3;
const matrix::BlockShape kBlock{512, 8};  // 4096 slots: rows of 8 = two copies of c_pad = 4

matrix::Matrix random_logits(std::size_t rows, double range, std::uint8_t seed) {
  core::Prng p(core::Seed{seed});
  matrix::Matrix m(rows, kClasses);
  for (auto& v : m.data) v = range * (2 * ((p.next_u64() >> 11) * 0x1p-53) - 1);
  return m;
}

Ciphertext encrypt(const matrix::Matrix& m, std::size_t level) {
  Env& e = env();
  const auto slots = matrix::pack(matrix::Layout::tiled_cols(m.rows, m.cols, kBlock), m)[0];
  return e.encryptor.encrypt(
      e.enc.encode(std::span<const double>(slots), level, e.ctx.default_scale()));
}

std::vector<double> decrypt(const Ciphertext& c) {
  Env& e = env();
  std::vector<double> out;
  for (const auto& z : e.enc.decode(e.dec.decrypt(c))) out.push_back(z.real());
  return out;
}
}  // namespace

TEST(EncryptedSoftmax, PiecesMatchThePlainReference) {
  // Inputs at the user top level 9 (the chain's 40-bit primes), bootstrapping as needed.
  Env& e = env();
  softmax::EncryptedSoftmax sm(e.ctx, e.enc, e.ev, e.rlk, kClasses, kBlock);
  sm.set_bootstrapper(&e.boot, &e.boot_keys);
  const GaloisKeys gk = e.kg.galois_keys(e.sk, sm.rotations(), false, 9);
  const matrix::Matrix x = random_logits(kBlock.s0, 128, 1);
  const Ciphertext cx = encrypt(x, 9);
  softmax::SoftmaxStats st;
  // Row max: each row's first slot holds the plain tournament's value.
  const Ciphertext m = sm.row_max(sm.normalize(cx), gk, st);
  const auto mv = decrypt(m);
  double err_max = 0;
  for (std::size_t r = 0; r < x.rows; ++r) {
    std::vector<double> u(4, -0.5);
    for (std::size_t j = 0; j < kClasses; ++j) u[j] = x(r, j) / 256;
    const double want = softmax::tournament_max(u, 2, 2)[0];
    err_max = std::max(err_max, std::abs(mv[r * kBlock.s1] - want));  // the shift's slot
  }
  // exp of the shifted logits, padded classes at 0 (the plain shift from the decrypted max).
  const auto& polys = sm.polynomials();
  const Ciphertext ce = sm.exp_shifted(cx, m, gk, st);
  const auto ev = decrypt(ce);
  double err_exp = 0;
  for (std::size_t r = 0; r < x.rows; ++r) {
    for (std::size_t j = 0; j < kBlock.s1; ++j) {
      const std::size_t cls = j % 4;
      const double shift = mv[r * kBlock.s1] * 256;
      const double want = cls < kClasses ? polys.exp(x(r, cls) - shift) : 0.0;
      err_exp = std::max(err_exp, std::abs(ev[r * kBlock.s1 + j] - want));
    }
  }
  // Row sums and the division.
  const Ciphertext cz = sm.row_sum(ce, gk, st);
  const auto zv = decrypt(cz);
  double err_z = 0;
  for (std::size_t r = 0; r < x.rows; ++r) {
    double want = 0;
    for (std::size_t j = 0; j < 4; ++j) want += ev[r * kBlock.s1 + j] / 4;  // sum / c_pad
    for (std::size_t j = 0; j < kBlock.s1; ++j)
      err_z = std::max(err_z, std::abs(zv[r * kBlock.s1 + j] - want));
  }
  const Ciphertext cp = sm.divide(ce, cz, st);
  const auto pv = decrypt(cp);
  double err_p = 0;
  for (std::size_t r = 0; r < x.rows; ++r) {
    const std::vector<double> row{x(r, 0), x(r, 1), x(r, 2)};
    const auto want = softmax::exact(row);
    for (std::size_t j = 0; j < kClasses; ++j)
      err_p = std::max(err_p, std::abs(pv[r * kBlock.s1 + j] - want[j]));
  }
  std::printf("pieces: max %.2e, exp %.2e, sum %.2e, probabilities %.2e; %zu bootstraps\n", err_max,
              err_exp, err_z, err_p, st.bootstraps);
  EXPECT_LT(err_max, 1e-3);  // normalised units; only a shift
  EXPECT_LT(err_exp, 1e-5);
  EXPECT_LT(err_z, 1e-5);
  EXPECT_LT(err_p, 1e-4);
}

TEST(EncryptedSoftmax, WholePipelineWithBootstrapping) {
  Env& e = env();
  softmax::EncryptedSoftmax sm(e.ctx, e.enc, e.ev, e.rlk, kClasses, kBlock);
  EXPECT_EQ(sm.depth(), 45u);
  const GaloisKeys gk = e.kg.galois_keys(e.sk, sm.rotations(), false, 9);
  sm.set_bootstrapper(&e.boot, &e.boot_keys);
  for (double range : {8.0, 128.0}) {
    const matrix::Matrix x = random_logits(kBlock.s0, range, 2);
    softmax::SoftmaxStats st;
    const Ciphertext out = sm.apply(encrypt(x, 9), gk, &st);
    // On the default scale exactly: P - Y needs no scale matching.
    EXPECT_EQ(out.scale, e.ctx.default_scale()) << out.scale / e.ctx.default_scale() - 1;
    const auto pv = decrypt(out);
    double err = 0, err_ref = 0;
    for (std::size_t r = 0; r < x.rows; ++r) {
      const std::vector<double> row{x(r, 0), x(r, 1), x(r, 2)};
      const auto want = softmax::exact(row);
      const auto ref = softmax::ours(row, sm.polynomials());
      for (std::size_t j = 0; j < kBlock.s1; ++j) {  // every copy
        const std::size_t cls = j % 4;
        if (cls >= kClasses) continue;
        err = std::max(err, std::abs(pv[r * kBlock.s1 + j] - want[cls]));
        err_ref = std::max(err_ref, std::abs(pv[r * kBlock.s1 + j] - ref[cls]));
      }
    }
    std::printf("range %g: %zu bootstraps, max error %.2e vs exact, %.2e vs plain reference\n",
                range, st.bootstraps, err, err_ref);
    EXPECT_LT(err_ref, 1e-3) << range;  // the bar
    EXPECT_LT(err, 1.86e-3) << range;   // half of HETAL's maximum for c = 3
  }
}

TEST(EncryptedSoftmax, OneCopyPerRow) {
  // HETAL's training shape can leave a single copy of the classes per block row.
  Env& e = env();
  const matrix::BlockShape one{1024, 4};
  softmax::EncryptedSoftmax sm(e.ctx, e.enc, e.ev, e.rlk, kClasses, one);
  sm.set_bootstrapper(&e.boot, &e.boot_keys);
  const GaloisKeys gk = e.kg.galois_keys(e.sk, sm.rotations(), false, 9);
  const matrix::Matrix x = random_logits(one.s0, 128, 4);
  const auto slots = matrix::pack(matrix::Layout::tiled_cols(x.rows, kClasses, one), x)[0];
  const Ciphertext cx =
      e.encryptor.encrypt(e.enc.encode(std::span<const double>(slots), 9, e.ctx.default_scale()));
  const auto pv = decrypt(sm.apply(cx, gk));
  double err = 0;
  for (std::size_t r = 0; r < x.rows; ++r) {
    const auto want = softmax::exact(std::vector<double>{x(r, 0), x(r, 1), x(r, 2)});
    for (std::size_t j = 0; j < kClasses; ++j)
      err = std::max(err, std::abs(pv[r * one.s1 + j] - want[j]));
  }
  EXPECT_LT(err, 1e-4);
}

TEST(EncryptedSoftmax, HetalDomainExtensionAndExpMatchTheirPlainPolynomials) {
  Env& e = env();
  const circuits::PolynomialEvaluator pe(e.ctx, e.ev, e.rlk);
  core::Prng p(core::Seed{5});
  std::vector<double> u(e.ctx.max_slots());  // (x - max) / 256 for x - max in [-256, 0]
  for (auto& v : u) v = -static_cast<double>(p.next_u64() >> 11) * 0x1p-53;
  for (bool precise : {false, true}) {
    softmax::HetalParams hp;
    hp.precise = precise;
    softmax::SoftmaxStats st;
    const Ciphertext cu =
        e.encryptor.encrypt(e.enc.encode(std::span<const double>(u), 9, e.ctx.default_scale()));
    const auto got =
        decrypt(softmax::hetal_domain_extension(pe, cu, hp, 256, &e.boot, &e.boot_keys, &st));
    const auto steps = softmax::hetal_domain_extension(hp, 256);
    double err = 0;
    for (std::size_t i = 0; i < u.size(); ++i) {
      double want = u[i];
      for (const auto& s : steps) want = s(want);
      err = std::max(err, std::abs(got[i] - want) * 256);  // original units
    }
    EXPECT_GE(st.bootstraps, 1u);
    EXPECT_LT(err, 1e-2) << precise;  // bootstrapping noise times 256
  }
  // exp: v = x / 8 in [-1, 0], 7 levels.
  const Ciphertext cv =
      e.encryptor.encrypt(e.enc.encode(std::span<const double>(u), 9, e.ctx.default_scale()));
  const Ciphertext ce = softmax::hetal_exp(pe, e.ev, e.rlk, cv);
  EXPECT_EQ(ce.level(), 2u);
  const auto got = decrypt(ce);
  double err = 0;
  for (std::size_t i = 0; i < u.size(); ++i)
    err = std::max(err, std::abs(got[i] - softmax::hetal_exp(u[i])));
  EXPECT_LT(err, 1e-6);
}

TEST(EncryptedSoftmax, RefusesBadShapesAndMissingLevels) {
  Env& e = env();
  EXPECT_THROW(softmax::EncryptedSoftmax(e.ctx, e.enc, e.ev, e.rlk, 3, {2048, 2}),
               std::invalid_argument);  // rows narrower than the padded classes
  softmax::EncryptedSoftmax sm(e.ctx, e.enc, e.ev, e.rlk, kClasses, kBlock);
  const GaloisKeys gk = e.kg.galois_keys(e.sk, sm.rotations(), false, 9);
  // At level 9 without a bootstrapper the tournament runs out of levels.
  EXPECT_THROW(sm.apply(encrypt(random_logits(kBlock.s0, 8, 3), 9), gk), std::invalid_argument);
}
