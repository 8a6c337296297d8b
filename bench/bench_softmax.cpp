// Softmax approximation errors (hetal.md 5.3-5.4): HETAL's pipeline (normal and precise) and
// ours, on uniform rows in [-4,4], [-8,8], [-32,32] and [-128,128], HETAL's protocol: for a
// target range, one batch of `rows` per listed sub-range up to it; error = max over the row of
// |approx - exact|, then max and mean over the rows.
//
//   build/bench/bench_softmax                 # plain reference, 10^6 rows per sub-range
//   build/bench/bench_softmax --rows 100000
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hetal/core/prng.h"
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

}  // namespace

int main(int argc, char** argv) {
  std::size_t rows = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rows") == 0) rows = std::strtoull(argv[i + 1], nullptr, 10);
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
