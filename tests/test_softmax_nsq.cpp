// Encrypted normalize-and-square softmax (softmax/nsq_encrypted.h) against its plain reference
// and the exact softmax, on the TB13-INSECURE preset (the production chain's shape at N = 2^13,
// real bootstrapping): logits at the user top level (as the benchmarks give them) and at level
// 5 with 5 levels asked for the output (as a training step gives and needs them).
#include <gtest/gtest.h>

#include <cmath>

#include "hetal/ckks/encryptor.h"
#include "hetal/softmax/nsq_encrypted.h"
#include "tb13_env.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {
hetal::test::Tb13Env& env() { return hetal::test::tb13_env(); }

struct Outcome {
  double err_exact = 0, err_ref = 0, pad_max = 0;
  std::size_t bootstraps = 0, level = 0;
  double scale = 0;
};

// One ciphertext of rows, each row from [-range, range]; the last rows are HETAL's extreme
// cases (j classes at R, the others at -R).
Outcome run(std::size_t classes, matrix::BlockShape block, std::size_t level, std::size_t min_out,
            double range, std::uint8_t seed) {
  auto& e = env();
  softmax::NsqSoftmax sm(e.ctx, e.enc, e.ev, e.rlk, classes, block);
  sm.set_bootstrapper(&e.boot, &e.boot_keys);
  sm.set_min_output_level(min_out);
  const GaloisKeys gk = e.kg.galois_keys(e.sk, sm.rotations(), false, 9);
  core::Prng p(core::Seed{seed});
  matrix::Matrix x(block.s0, classes);
  for (auto& v : x.data) v = range * (2 * ((p.next_u64() >> 11) * 0x1p-53) - 1);
  for (std::size_t j = 0; j <= classes; ++j)
    for (std::size_t k = 0; k < classes; ++k) x(x.rows - 1 - j, k) = k < j ? 128 : -128;
  const auto slots = matrix::pack(matrix::Layout::tiled_cols(x.rows, classes, block), x)[0];
  const Ciphertext cx = e.encryptor.encrypt(
      e.enc.encode(std::span<const double>(slots), level, e.ctx.default_scale()));
  softmax::SoftmaxStats st;
  const Ciphertext out = sm.apply(cx, gk, &st);
  Outcome r;
  r.bootstraps = st.bootstraps;
  r.level = out.level();
  r.scale = out.scale;
  const auto dv = e.enc.decode(e.dec.decrypt(out));
  const std::size_t c_pad = softmax::padded(classes);
  for (std::size_t row = 0; row < x.rows; ++row) {
    const std::vector<double> xr(x.data.begin() + static_cast<long>(row * classes),
                                 x.data.begin() + static_cast<long>((row + 1) * classes));
    const auto want = softmax::exact(xr);
    const auto ref = softmax::nsq(xr, sm.polynomials());
    for (std::size_t j = 0; j < block.s1; ++j) {  // every copy of the row
      const double v = dv[row * block.s1 + j].real();
      const std::size_t cls = j % c_pad;
      if (cls >= classes) {
        r.pad_max = std::max(r.pad_max, std::abs(v));
        continue;
      }
      r.err_exact = std::max(r.err_exact, std::abs(v - want[cls]));
      r.err_ref = std::max(r.err_ref, std::abs(v - ref[cls]));
    }
  }
  std::printf(
      "c = %zu, block %zu x %zu, logits at %zu, output >= %zu: %zu bootstraps, output "
      "level %zu, max error %.2e vs exact, %.2e vs plain, padded classes %.1e\n",
      classes, block.s0, block.s1, level, min_out, r.bootstraps, r.level, r.err_exact, r.err_ref,
      r.pad_max);
  return r;
}
}  // namespace

TEST(NsqSoftmax, TrainingLevelsMatchTheExactSoftmax) {
  // As in a training step: logits at level 5, 5 levels left for P - Y, DiagATB and the update.
  const Outcome r = run(3, {512, 8}, 5, 5, 128, 1);
  EXPECT_EQ(r.scale, env().ctx.default_scale());
  EXPECT_GE(r.level, 5u);
  EXPECT_LT(r.err_ref, 1e-3);
  EXPECT_LT(r.err_exact, 2e-4);
  EXPECT_LT(r.pad_max, 1e-4);
  EXPECT_LE(r.bootstraps, 6u);
}

TEST(NsqSoftmax, TopLevelLogitsAndTenClasses) {
  // c = 10 (16 padded classes, two copies per block row), logits at the user top level.
  const Outcome r = run(10, {128, 32}, 9, 0, 128, 2);
  EXPECT_EQ(r.scale, env().ctx.default_scale());
  EXPECT_LT(r.err_ref, 1e-3);
  EXPECT_LT(r.err_exact, 2e-4);
  EXPECT_LE(r.bootstraps, 5u);
  const Outcome one = run(10, {256, 16}, 5, 5, 8, 3);  // one copy per block row, narrow logits
  EXPECT_LT(one.err_exact, 2e-4);
  EXPECT_GE(one.level, 5u);
}

TEST(NsqSoftmax, RefusesBadShapesAndMissingLevels) {
  auto& e = env();
  EXPECT_THROW(softmax::NsqSoftmax(e.ctx, e.enc, e.ev, e.rlk, 3, {2048, 2}),
               std::invalid_argument);  // rows narrower than the padded classes
  EXPECT_THROW(softmax::NsqSoftmax(e.ctx, e.enc, e.ev, e.rlk, 1, {512, 8}), std::invalid_argument);
  softmax::NsqSoftmax sm(e.ctx, e.enc, e.ev, e.rlk, 3, {512, 8});
  const GaloisKeys gk = e.kg.galois_keys(e.sk, sm.rotations(), false, 9);
  std::vector<double> zeros(4096, 0.0);
  const Ciphertext cx =
      e.encryptor.encrypt(e.enc.encode(std::span<const double>(zeros), 9, e.ctx.default_scale()));
  try {  // without a bootstrapper the pipeline (depth > 9) cannot finish
    (void)sm.apply(cx, gk);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& ex) {
    EXPECT_NE(std::string(ex.what()).find("bootstrapper"), std::string::npos) << ex.what();
  }
}
