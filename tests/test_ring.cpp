#include <gtest/gtest.h>

#include "hetal/core/primes.h"
#include "hetal/core/prng.h"
#include "hetal/ring/automorphism.h"
#include "hetal/ring/ntt.h"

using namespace hetal;
using core::u64;

namespace {
std::vector<u64> random_poly(core::Prng& p, std::size_t n, u64 q) {
  std::vector<u64> a(n);
  for (auto& x : a) x = p.uniform(q);
  return a;
}
std::vector<u64> schoolbook_negacyclic(const std::vector<u64>& a, const std::vector<u64>& b,
                                       const core::Modulus& m) {
  const std::size_t n = a.size();
  std::vector<u64> c(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const u64 p = m.mul(a[i], b[j]);
      if (i + j < n)
        c[i + j] = m.add(c[i + j], p);
      else
        c[i + j - n] = m.sub(c[i + j - n], p);
    }
  return c;
}
}  // namespace

class NttTest : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(NttTest, ProductMatchesSchoolbook) {
  const auto [log_n, bits] = GetParam();
  const std::size_t n = std::size_t{1} << log_n;
  const u64 q = core::generate_ntt_primes(log_n, {bits})[0];
  ring::NttTables t(q, log_n);
  core::Prng p(core::Seed{static_cast<std::uint8_t>(log_n)});
  auto a = random_poly(p, n, q), b = random_poly(p, n, q);
  const auto expect = schoolbook_negacyclic(a, b, t.modulus());
  t.forward(a.data());
  t.forward(b.data());
  for (std::size_t i = 0; i < n; ++i) a[i] = t.modulus().mul(a[i], b[i]);
  t.inverse(a.data());
  EXPECT_EQ(a, expect);
}

TEST_P(NttTest, InverseOfForwardIsIdentityAndLazyRanges) {
  const auto [log_n, bits] = GetParam();
  const std::size_t n = std::size_t{1} << log_n;
  const u64 q = core::generate_ntt_primes(log_n, {bits})[0];
  ring::NttTables t(q, log_n);
  core::Prng p(core::Seed{5});
  const auto a = random_poly(p, n, q);
  auto b = a;
  t.forward_lazy(b.data());
  for (u64 x : b) ASSERT_LT(x, 4 * q);
  for (auto& x : b) x = x >= 2 * q ? x - 2 * q : x;  // inverse input must be < 2q
  t.inverse_lazy(b.data());
  for (u64 x : b) ASSERT_LT(x, 2 * q);
  for (auto& x : b) x = core::reduce_once(x, q);
  EXPECT_EQ(a, b);
  // Forward output k is a(psi^(2 bitrev(k) + 1)).
  auto c = a;
  t.forward(c.data());
  const core::Modulus& m = t.modulus();
  for (std::size_t k : {std::size_t{0}, std::size_t{1}, n / 2, n - 1}) {
    const u64 x = m.pow(t.psi(), 2 * ring::bit_reverse(static_cast<std::uint32_t>(k), log_n) + 1);
    u64 v = 0, xp = 1;
    for (std::size_t i = 0; i < n; ++i) {
      v = m.add(v, m.mul(a[i], xp));
      xp = m.mul(xp, x);
    }
    EXPECT_EQ(c[k], v) << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, NttTest,
                         ::testing::Values(std::pair{4, 30}, std::pair{8, 40}, std::pair{10, 50},
                                           std::pair{10, 61}, std::pair{11, 60}));

TEST(Ntt, LargeRoundTrip) {
  for (int bits : {40, 61}) {
    const int log_n = 16;
    const u64 q = core::generate_ntt_primes(log_n, {bits})[0];
    ring::NttTables t(q, log_n);
    core::Prng p(core::Seed{6});
    const auto a = random_poly(p, 1 << log_n, q);
    auto b = a;
    t.forward(b.data());
    t.inverse(b.data());
    EXPECT_EQ(a, b);
  }
}

TEST(Automorphism, NttDomainMatchesCoefficientDomain) {
  const int log_n = 10;
  const std::size_t n = 1 << log_n;
  const u64 q = core::generate_ntt_primes(log_n, {50})[0];
  ring::NttTables t(q, log_n);
  core::Prng p(core::Seed{8});
  const auto a = random_poly(p, n, q);
  for (long long k : {1LL, 2LL, 5LL, -1LL, 100LL}) {
    for (u64 g :
         {ring::galois_element_for_rotation(log_n, k), ring::galois_element_conjugate(log_n)}) {
      std::vector<u64> coeff(n), ntt = a, out(n);
      ring::automorphism_coeff(a.data(), n, g, q, coeff.data());
      t.forward(coeff.data());
      t.forward(ntt.data());
      const auto map = ring::automorphism_ntt_map(log_n, g);
      ring::apply_ntt_map(ntt.data(), map.data(), n, out.data());
      EXPECT_EQ(out, coeff) << "g=" << g;
    }
  }
  EXPECT_EQ(ring::galois_element_for_rotation(log_n, 0), 1u);
  EXPECT_EQ(ring::galois_element_for_rotation(log_n, 1), 5u);
}
