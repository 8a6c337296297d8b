// Exact layer tests against big-integer CRT (GMP as the oracle).
#include <gmpxx.h>
#include <gtest/gtest.h>

#include "hetal/core/primes.h"
#include "hetal/core/prng.h"
#include "hetal/rns/rns_context.h"

using namespace hetal;
using core::u64;
using ring::RnsPoly;

namespace {
mpz_class product(const std::vector<u64>& ps) {
  mpz_class r = 1;
  for (u64 p : ps) r *= mpz_class(std::to_string(p));
  return r;
}
u64 mod_u64(const mpz_class& x, u64 p) {
  mpz_class r = x % mpz_class(std::to_string(p));
  if (r < 0) r += mpz_class(std::to_string(p));
  return std::stoull(r.get_str());
}
mpz_class random_below(gmp_randclass& rng, const mpz_class& m) { return rng.get_z_range(m); }

struct Fixture {
  int log_n = 8;
  std::vector<u64> q, p;
  std::unique_ptr<rns::RnsContext> ctx;
  Fixture(std::size_t alpha = 2) {
    q = core::generate_ntt_primes(log_n, {50, 40, 40, 45, 40});
    p = core::generate_ntt_primes(log_n, {55, 55}, q);
    ctx = std::make_unique<rns::RnsContext>(log_n, q, p, alpha);
  }
};
}  // namespace

TEST(Rns, RescaleIsExactDivideAndRound) {
  Fixture f;
  const std::size_t n = f.ctx->n(), nq = f.q.size();
  gmp_randclass rng(gmp_randinit_default);
  rng.seed(42);
  const mpz_class Q = product(f.q);
  std::vector<mpz_class> x(n);
  RnsPoly a(n, nq);
  for (std::size_t k = 0; k < n; ++k) {
    x[k] = random_below(rng, Q);
    for (std::size_t i = 0; i < nq; ++i) a.limb(i)[k] = mod_u64(x[k], f.q[i]);
  }
  f.ctx->ntt(a);
  f.ctx->rescale_inplace(a);
  f.ctx->intt(a);
  ASSERT_EQ(a.nq(), nq - 1);
  const mpz_class ql(std::to_string(f.q.back()));
  for (std::size_t k = 0; k < n; ++k) {
    mpz_class c = x[k];
    if (c > Q / 2) c -= Q;  // centered
    mpz_class r;
    mpz_fdiv_q(r.get_mpz_t(), mpz_class(2 * c + ql).get_mpz_t(), mpz_class(2 * ql).get_mpz_t());
    for (std::size_t i = 0; i + 1 < nq; ++i) {
      // round(c / ql) with ties either way: accept both neighbours only at exact ties.
      ASSERT_EQ(a.limb(i)[k], mod_u64(r, f.q[i])) << "coeff " << k << " limb " << i;
    }
  }
}

TEST(Rns, FastBaseConversionErrorIsSmallMultipleOfQ) {
  Fixture f;
  const std::size_t n = f.ctx->n();
  std::vector<core::Modulus> from, to;
  for (int i = 0; i < 3; ++i) from.emplace_back(f.q[i]);
  for (u64 x : f.p) to.emplace_back(x);
  to.emplace_back(f.q[4]);
  rns::BaseConverter conv(from, to);
  gmp_randclass rng(gmp_randinit_default);
  rng.seed(7);
  const mpz_class Qf = product({f.q[0], f.q[1], f.q[2]});
  std::vector<std::vector<u64>> in(3, std::vector<u64>(n)), out(3, std::vector<u64>(n));
  std::vector<mpz_class> x(n);
  for (std::size_t k = 0; k < n; ++k) {
    x[k] = random_below(rng, Qf);
    for (int j = 0; j < 3; ++j) in[j][k] = mod_u64(x[k], f.q[j]);
  }
  const u64* ip[3] = {in[0].data(), in[1].data(), in[2].data()};
  u64* op[3] = {out[0].data(), out[1].data(), out[2].data()};
  const std::size_t targets[3] = {0, 1, 2};
  conv.convert(ip, n, targets, 3, op);
  for (std::size_t k = 0; k < n; ++k) {
    bool found = false;
    for (int e = -2; e <= 2 && !found; ++e) {
      bool all = true;
      for (int t = 0; t < 3; ++t) all &= out[t][k] == mod_u64(x[k] + e * Qf, to[t].value);
      found = all;
    }
    ASSERT_TRUE(found) << k;
  }
}

TEST(Rns, DecomposeAndModDownReconstruct) {
  for (std::size_t alpha : {1u, 2u, 3u}) {
    Fixture f(alpha);
    const std::size_t n = f.ctx->n();
    for (std::size_t nq : {std::size_t{5}, std::size_t{4}, std::size_t{2}}) {
      std::vector<u64> qs(f.q.begin(), f.q.begin() + nq);
      const mpz_class Q = product(qs), P = product(f.p);
      gmp_randclass rng(gmp_randinit_default);
      rng.seed(11 + nq);
      RnsPoly c(n, nq);
      std::vector<mpz_class> x(n);
      for (std::size_t k = 0; k < n; ++k) {
        x[k] = random_below(rng, Q);
        for (std::size_t i = 0; i < nq; ++i) c.limb(i)[k] = mod_u64(x[k], qs[i]);
      }
      f.ctx->ntt(c);
      std::vector<RnsPoly> digits;
      f.ctx->decompose(c, digits);
      ASSERT_EQ(digits.size(), (nq + alpha - 1) / alpha);
      for (std::size_t d = 0; d < digits.size(); ++d) {
        RnsPoly dig = digits[d];
        f.ctx->intt(dig);
        const std::size_t s = d * alpha, e = std::min(s + alpha, nq);
        std::vector<u64> dq(f.q.begin() + s, f.q.begin() + e);
        const mpz_class Qd = product(dq);
        for (std::size_t k = 0; k < n; k += 17) {
          const mpz_class xd = x[k] % Qd;
          bool found = false;
          for (long err = -static_cast<long>(alpha); err <= static_cast<long>(alpha) && !found;
               ++err) {
            bool all = true;
            for (std::size_t i = 0; i < nq + f.p.size(); ++i) {
              const u64 prime = i < nq ? qs[i] : f.p[i - nq];
              all &= dig.limb(i)[k] == mod_u64(xd + err * Qd, prime);
            }
            found = all;
          }
          ASSERT_TRUE(found) << "digit " << d << " coeff " << k;
        }
      }
      // ModDown: y over QP -> round(y / P) up to the fast-conversion error (< |P| units).
      RnsPoly y(n, nq, f.p.size());
      std::vector<mpz_class> yv(n);
      for (std::size_t k = 0; k < n; ++k) {
        yv[k] = random_below(rng, Q * P);
        for (std::size_t i = 0; i < y.limbs(); ++i) {
          y.limb(i)[k] = mod_u64(yv[k], i < nq ? qs[i] : f.p[i - nq]);
        }
      }
      f.ctx->ntt(y);
      RnsPoly out;
      f.ctx->mod_down(y, out);
      f.ctx->intt(out);
      for (std::size_t k = 0; k < n; ++k) {
        mpz_class fl;  // round(y / P)
        mpz_fdiv_q(fl.get_mpz_t(), mpz_class(2 * yv[k] + P).get_mpz_t(),
                   mpz_class(2 * P).get_mpz_t());
        bool ok = false;
        for (int e = -1; e <= 1 && !ok; ++e) {
          bool all = true;
          for (std::size_t i = 0; i < nq; ++i) all &= out.limb(i)[k] == mod_u64(fl + e, qs[i]);
          ok = all;
        }
        ASSERT_TRUE(ok) << "mod_down coeff " << k;
      }
    }
  }
}
