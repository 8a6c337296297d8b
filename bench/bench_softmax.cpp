// Softmax approximation errors (hetal.md 5.3-5.4): HETAL's pipeline (normal and precise) and
// ours, on uniform rows in [-4,4], [-8,8], [-32,32] and [-128,128], HETAL's protocol: for a
// target range, one batch of `rows` per listed sub-range up to it; error = max over the row of
// |approx - exact|, then max and mean over the rows.
//
//   build/bench/bench_softmax                 # plain reference, 10^6 rows per sub-range
//   build/bench/bench_softmax --rows 100000
//   build/bench/bench_softmax --encrypted 3,5,7,10   # encrypted, N = 2^16, one ciphertext each
//   build/bench/bench_softmax --encrypted 3 --preset TB13-INSECURE
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/core/prng.h"
#include "hetal/softmax/encrypted.h"
#include "hetal/softmax/plain.h"

using namespace hetal;

namespace {

struct Err {
  double max = 0, sum = 0;
  std::size_t n = 0;
  void add(double e) {
    max = std::max(max, e);
    sum += e;
    ++n;
  }
  double mean() const { return n ? sum / static_cast<double>(n) : 0; }
};

double row_error(const std::vector<double>& got, const std::vector<double>& want) {
  double e = 0;
  for (std::size_t i = 0; i < want.size(); ++i) e = std::max(e, std::abs(got[i] - want[i]));
  return e;
}

// One ciphertext of rows (batch 1024 in HETAL's training block shape) per class count: error
// against the exact softmax and the plain reference, bootstraps, depth and time.
int run_encrypted(const std::vector<std::size_t>& classes, bool insecure) {
  using namespace hetal::ckks;
  using bench::Clock;
  using bench::seconds_since;
  const Context ctx(Parameters::preset(insecure ? Preset::TB13_INSECURE : Preset::B16_H192),
                    insecure ? SecurityPolicy::allow_insecure : SecurityPolicy::require_128);
  const Encoder enc(ctx);
  const Evaluator ev(ctx);
  KeyGenerator kg(ctx);
  const SecretKey sk = kg.secret_key();
  const RelinKey rlk = kg.relin_key(sk);
  Encryptor encryptor(ctx, sk);
  const Decryptor dec(ctx, sk);
  auto t0 = Clock::now();
  const circuits::Bootstrapper boot(ctx, enc, ev, rlk, {});
  const circuits::BootstrapKeys bk = boot.generate_keys(kg, sk);
  std::printf("%s, %d threads; bootstrapping setup %.1f s\n\n", ctx.params().name.c_str(),
              omp_get_max_threads(), seconds_since(t0));
  std::printf(
      "| c | block | rows | max / mean error vs exact | max vs plain reference | depth "
      "(no bootstrapping) | bootstraps | seconds |\n|---|---|---|---|---|---|---|---|\n");
  for (std::size_t c : classes) {
    const matrix::BlockShape block = matrix::training_block_shape(1024, c, ctx.max_slots());
    softmax::EncryptedSoftmax sm(ctx, enc, ev, rlk, c, block);
    sm.set_bootstrapper(&boot, &bk);
    const GaloisKeys gk = kg.galois_keys(sk, sm.rotations(), false, ctx.user_top_level());
    // The rows: a quarter from each of HETAL's sub-ranges [-4,4], [-8,8], [-32,32], [-128,128].
    matrix::Matrix x(block.s0, c);
    core::Prng prng(core::os_seed());
    const double ranges[] = {4, 8, 32, 128};
    for (std::size_t r = 0; r < x.rows; ++r) {
      for (std::size_t j = 0; j < c; ++j)
        x(r, j) = ranges[4 * r / x.rows] * (2 * ((prng.next_u64() >> 11) * 0x1p-53) - 1);
    }
    const matrix::Layout layout = matrix::Layout::tiled_cols(x.rows, c, block);
    const auto slots = matrix::pack(layout, x)[0];
    const Ciphertext cx = encryptor.encrypt(
        enc.encode(std::span<const double>(slots), ctx.user_top_level(), ctx.default_scale()));
    softmax::SoftmaxStats st;
    t0 = Clock::now();
    const Ciphertext out = sm.apply(cx, gk, &st);
    const double secs = seconds_since(t0);
    const auto dv = enc.decode(dec.decrypt(out));
    Err e_exact;
    double e_ref = 0;
    for (std::size_t r = 0; r < x.rows; ++r) {
      const std::vector<double> row(x.data.begin() + static_cast<long>(r * c),
                                    x.data.begin() + static_cast<long>((r + 1) * c));
      const auto want = softmax::exact(row);
      const auto ref = softmax::ours(row, sm.polynomials());
      std::vector<double> got(c);
      double er = 0;
      for (std::size_t k = 0; k < block.s1; ++k) {  // every copy of the row
        const std::size_t cls = k % softmax::padded(c);
        if (cls >= c) continue;
        const double v = dv[r * block.s1 + k].real();
        er = std::max(er, std::abs(v - want[cls]));
        e_ref = std::max(e_ref, std::abs(v - ref[cls]));
      }
      e_exact.add(er);
    }
    std::printf("| %zu | %zu x %zu | %zu | %.2e / %.2e | %.2e | %zu | %zu | %.1f |\n", c, block.s0,
                block.s1, x.rows, e_exact.max, e_exact.mean(), e_ref, sm.depth(), st.bootstraps,
                secs);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t rows = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rows") == 0) rows = std::strtoull(argv[i + 1], nullptr, 10);
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--encrypted") == 0) {
      std::vector<std::size_t> cs;
      for (const char* p = argv[i + 1]; *p;) {
        char* end = nullptr;
        cs.push_back(std::strtoull(p, &end, 10));
        if (end == p || cs.back() < 2) {
          std::fprintf(stderr, "bench_softmax: --encrypted takes class counts like 3,5,7,10\n");
          return 2;
        }
        p = *end == ',' ? end + 1 : end;
      }
      bool insecure = false;
      for (int k = 1; k + 1 < argc; k += 2)
        insecure |=
            std::strcmp(argv[k], "--preset") == 0 && std::strcmp(argv[k + 1], "TB13-INSECURE") == 0;
      return run_encrypted(cs, insecure);
    }
  }
  const double ranges[] = {4, 8, 32, 128};
  // HETAL on [-128, 128] (hetal.md 5.3, its own script, 10^6 rows per sub-range): max / mean.
  const double paper_max[] = {3.72e-3, 7.95e-3, 8.52e-3, 2.03e-2};
  const double paper_mean[] = {1.38e-3, 2.27e-3, 2.86e-3, 3.86e-3};
  const std::size_t classes[] = {3, 5, 7, 10};
  std::printf("rows per sub-range: %zu\n\n", rows);
  std::printf(
      "| range | c | HETAL max / mean | HETAL precise max / mean | ours max / mean | "
      "ours: max |shift - max| |\n|---|---|---|---|---|---|\n");
  for (std::size_t ci = 0; ci < 4; ++ci) {
    const std::size_t c = classes[ci];
    const softmax::OursParams op;
    const softmax::OursPolynomials polys = softmax::ours_polynomials(c, op);
    std::printf("c = %zu: exp degree %zu, Goldschmidt R = %.1f with %d iterations\n", c,
                op.exp_degree, polys.inv_r, polys.inv_iters);
    softmax::HetalParams hp, hpp;
    hpp.precise = true;
    Err eh_all, ep_all, eo_all;
    double shift_all = 0;
    for (double range : ranges) {
      Err eh, ep, eo;
      double shift_err = 0;
#pragma omp parallel
      {
        Err th, tp, to;
        double ts = 0;
#pragma omp for schedule(static)
        for (std::size_t r = 0; r < rows; ++r) {
          core::Prng prng(core::Seed{static_cast<std::uint8_t>(ci)},
                          (static_cast<std::uint64_t>(range) << 32) | r);
          std::vector<double> x(c);
          for (auto& v : x) v = range * (2 * ((prng.next_u64() >> 11) * 0x1p-53) - 1);
          const auto want = softmax::exact(x);
          th.add(row_error(softmax::hetal(x, hp), want));
          tp.add(row_error(softmax::hetal(x, hpp), want));
          to.add(row_error(softmax::ours(x, polys, op), want));
          std::vector<double> u(softmax::padded(c), -0.5);
          double mx = x[0];
          for (std::size_t i = 0; i < c; ++i) {
            u[i] = x[i] / (2 * op.r_max);
            mx = std::max(mx, x[i]);
          }
          const double m = softmax::tournament_max(u, op.dg, op.df)[0] * 2 * op.r_max;
          ts = std::max(ts, std::abs(m - mx));
        }
#pragma omp critical
        {
          for (auto [dst, src] : {std::pair{&eh, &th}, {&ep, &tp}, {&eo, &to}}) {
            dst->max = std::max(dst->max, src->max);
            dst->sum += src->sum;
            dst->n += src->n;
          }
          shift_err = std::max(shift_err, ts);
        }
      }
      for (auto [dst, src] : {std::pair{&eh_all, &eh}, {&ep_all, &ep}, {&eo_all, &eo}}) {
        dst->max = std::max(dst->max, src->max);
        dst->sum += src->sum;
        dst->n += src->n;
      }
      shift_all = std::max(shift_all, shift_err);
      std::printf("| [-%g,%g] | %zu | %.2e / %.2e | %.2e / %.2e | %.2e / %.2e | %.2f |\n", range,
                  range, c, eh.max, eh.mean(), ep.max, ep.mean(), eo.max, eo.mean(), shift_err);
    }
    std::printf(
        "| **[-128,128] all sub-ranges** | %zu | **%.2e / %.2e** (paper script: %.2e / "
        "%.2e) | %.2e / %.2e | **%.2e / %.2e** | %.2f |\n",
        c, eh_all.max, eh_all.mean(), paper_max[ci], paper_mean[ci], ep_all.max, ep_all.mean(),
        eo_all.max, eo_all.mean(), shift_all);
  }
  return 0;
}
