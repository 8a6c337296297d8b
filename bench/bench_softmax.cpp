// Softmax approximation errors (hetal.md 5.3-5.4): HETAL's pipeline (normal and precise) and
// ours, on uniform rows in [-4,4], [-8,8], [-32,32] and [-128,128], HETAL's protocol: for a
// target range, one batch of `rows` per listed sub-range up to it; error = max over the row of
// |approx - exact|, then max and mean over the rows.
//
//   build/bench/bench_softmax                 # plain reference, 10^6 rows per sub-range
//   build/bench/bench_softmax --rows 100000
//   build/bench/bench_softmax --encrypted 3,5,7,10   # encrypted, N = 2^16, one ciphertext each
//   build/bench/bench_softmax --encrypted 10 --level 5 --min-output 5   # a training step's levels
//   build/bench/bench_softmax --encrypted 3 --preset TB13-INSECURE --pipeline nsq
// Encrypted pipelines: nsq (normalize-and-square, the default) and tournament, both unless
// --pipeline lists others (e.g. tournament,nsq,nsq: the first run of a process is slower, its
// key memory being touched for the first time). HETAL's own pipeline is reproduced in plain only
// (its pieces are tested encrypted); its depth is in docs/benchmarks.md.
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
#include "hetal/softmax/nsq_encrypted.h"
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

struct EncOptions {
  std::vector<std::size_t> classes;
  bool insecure = false;
  std::size_t level = 0;  ///< of the logits (0: the user top level)
  std::size_t min_output = 0;
  std::vector<softmax::Pipeline> pipelines{softmax::Pipeline::nsq, softmax::Pipeline::tournament};
};

// One ciphertext of rows (batch 1024 in HETAL's training block shape) per class count and
// pipeline: error against the exact softmax and the pipeline's plain reference, bootstraps,
// depth and time.
int run_encrypted(const EncOptions& o) {
  using namespace hetal::ckks;
  using bench::Clock;
  using bench::seconds_since;
  const Context ctx(Parameters::preset(o.insecure ? Preset::TB13_INSECURE : Preset::B16_H192),
                    o.insecure ? SecurityPolicy::allow_insecure : SecurityPolicy::require_128);
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
  const std::size_t level = o.level ? o.level : ctx.user_top_level();
  std::printf(
      "%s, %d threads; bootstrapping setup %.1f s; logits at level %zu, output kept at "
      ">= %zu levels\n\n",
      ctx.params().name.c_str(), omp_get_max_threads(), seconds_since(t0), level, o.min_output);
  std::printf(
      "| pipeline | c | block | rows | max / mean error vs exact | max vs plain reference | "
      "depth (no bootstrapping) | bootstraps | output level | seconds |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n");
  for (std::size_t c : o.classes) {
    const matrix::BlockShape block = matrix::training_block_shape(1024, c, ctx.max_slots());
    const GaloisKeys gk = kg.galois_keys(sk, softmax::EncryptedSoftmax::rotations_for(c, block),
                                         false, ctx.user_top_level());
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
    const Ciphertext cx =
        encryptor.encrypt(enc.encode(std::span<const double>(slots), level, ctx.default_scale()));
    for (const softmax::Pipeline pipeline : o.pipelines) {
      const bool nsq = pipeline == softmax::Pipeline::nsq;
      softmax::EncryptedSoftmax tm(ctx, enc, ev, rlk, c, block);
      softmax::NsqSoftmax nm(ctx, enc, ev, rlk, c, block);
      tm.set_bootstrapper(&boot, &bk);
      nm.set_bootstrapper(&boot, &bk);
      tm.set_min_output_level(o.min_output);
      nm.set_min_output_level(o.min_output);
      softmax::SoftmaxStats st;
      t0 = Clock::now();
      const Ciphertext out = nsq ? nm.apply(cx, gk, &st) : tm.apply(cx, gk, &st);
      const double secs = seconds_since(t0);
      const auto dv = enc.decode(dec.decrypt(out));
      Err e_exact;
      double e_ref = 0;
      for (std::size_t r = 0; r < x.rows; ++r) {
        const std::vector<double> row(x.data.begin() + static_cast<long>(r * c),
                                      x.data.begin() + static_cast<long>((r + 1) * c));
        const auto want = softmax::exact(row);
        const auto ref =
            nsq ? softmax::nsq(row, nm.polynomials()) : softmax::ours(row, tm.polynomials());
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
      std::printf("| %s | %zu | %zu x %zu | %zu | %.2e / %.2e | %.2e | %zu | %zu | %zu | %.1f |\n",
                  nsq ? "normalize-and-square" : "tournament", c, block.s0, block.s1, x.rows,
                  e_exact.max, e_exact.mean(), e_ref, nsq ? nm.depth() : tm.depth(), st.bootstraps,
                  out.level(), secs);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t rows = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rows") == 0) rows = std::strtoull(argv[i + 1], nullptr, 10);
  }
  EncOptions eo;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--encrypted") == 0) {
      for (const char* p = argv[i + 1]; *p;) {
        char* end = nullptr;
        eo.classes.push_back(std::strtoull(p, &end, 10));
        if (end == p || eo.classes.back() < 2) {
          std::fprintf(stderr, "bench_softmax: --encrypted takes class counts like 3,5,7,10\n");
          return 2;
        }
        p = *end == ',' ? end + 1 : end;
      }
    } else if (std::strcmp(argv[i], "--preset") == 0) {
      eo.insecure = std::strcmp(argv[i + 1], "TB13-INSECURE") == 0;
    } else if (std::strcmp(argv[i], "--level") == 0) {
      eo.level = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--min-output") == 0) {
      eo.min_output = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (std::strcmp(argv[i], "--pipeline") == 0) {
      // A comma-separated list, run in that order (e.g. nsq,nsq: the second run is warm).
      eo.pipelines.clear();
      std::string v = argv[i + 1];
      for (std::size_t pos = 0; pos <= v.size();) {
        const std::size_t end = std::min(v.find(',', pos), v.size());
        const std::string name = v.substr(pos, end - pos);
        if (name == "nsq") {
          eo.pipelines.push_back(softmax::Pipeline::nsq);
        } else if (name == "tournament") {
          eo.pipelines.push_back(softmax::Pipeline::tournament);
        } else {
          std::fprintf(stderr,
                       "bench_softmax: --pipeline takes nsq and tournament, comma-separated\n");
          return 2;
        }
        pos = end + 1;
      }
    }
  }
  if (!eo.classes.empty()) return run_encrypted(eo);
  const double ranges[] = {4, 8, 32, 128};
  // HETAL on [-128, 128] (hetal.md 5.3, its own script, 10^6 rows per sub-range): max / mean.
  const double paper_max[] = {3.72e-3, 7.95e-3, 8.52e-3, 2.03e-2};
  const double paper_mean[] = {1.38e-3, 2.27e-3, 2.86e-3, 3.86e-3};
  const std::size_t classes[] = {3, 5, 7, 10};
  std::printf("rows per sub-range: %zu\n\n", rows);
  std::printf(
      "| range | c | HETAL max / mean | HETAL precise max / mean | tournament max / mean | "
      "tournament: max |shift - max| | normalize-and-square max / mean |\n"
      "|---|---|---|---|---|---|---|\n");
  for (std::size_t ci = 0; ci < 4; ++ci) {
    const std::size_t c = classes[ci];
    const softmax::OursParams op;
    const softmax::OursPolynomials polys = softmax::ours_polynomials(c, op);
    const softmax::NsqPolynomials npolys = softmax::nsq_polynomials(c);
    std::printf("c = %zu: exp degree %zu, Goldschmidt R = %.1f with %d iterations\n", c,
                op.exp_degree, polys.inv_r, polys.inv_iters);
    softmax::HetalParams hp, hpp;
    hpp.precise = true;
    Err eh_all, ep_all, eo_all, en_all;
    double shift_all = 0;
    for (double range : ranges) {
      Err eh, ep, eo, en;
      double shift_err = 0;
#pragma omp parallel
      {
        Err th, tp, to, tn;
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
          tn.add(row_error(softmax::nsq(x, npolys), want));
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
          for (auto [dst, src] : {std::pair{&eh, &th}, {&ep, &tp}, {&eo, &to}, {&en, &tn}}) {
            dst->max = std::max(dst->max, src->max);
            dst->sum += src->sum;
            dst->n += src->n;
          }
          shift_err = std::max(shift_err, ts);
        }
      }
      for (auto [dst, src] :
           {std::pair{&eh_all, &eh}, {&ep_all, &ep}, {&eo_all, &eo}, {&en_all, &en}}) {
        dst->max = std::max(dst->max, src->max);
        dst->sum += src->sum;
        dst->n += src->n;
      }
      shift_all = std::max(shift_all, shift_err);
      std::printf(
          "| [-%g,%g] | %zu | %.2e / %.2e | %.2e / %.2e | %.2e / %.2e | %.2f | %.2e / %.2e |\n",
          range, range, c, eh.max, eh.mean(), ep.max, ep.mean(), eo.max, eo.mean(), shift_err,
          en.max, en.mean());
    }
    std::printf(
        "| **[-128,128] all sub-ranges** | %zu | **%.2e / %.2e** (paper script: %.2e / "
        "%.2e) | %.2e / %.2e | **%.2e / %.2e** | %.2f | **%.2e / %.2e** |\n",
        c, eh_all.max, eh_all.mean(), paper_max[ci], paper_mean[ci], ep_all.max, ep_all.mean(),
        eo_all.max, eo_all.mean(), shift_all, en_all.max, en_all.mean());
  }
  return 0;
}
