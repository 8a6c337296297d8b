#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "hetal/core/modarith.h"
#include "hetal/core/primes.h"
#include "hetal/core/prng.h"
#include "hetal/core/sampler.h"

using namespace hetal::core;

TEST(ModArith, BarrettAndShoupMatchDivision) {
  Prng prng(Seed{1});
  for (int bits : {20, 40, 50, 59, 60, 61}) {
    const u64 q = generate_ntt_primes(10, {bits})[0];
    const Modulus m(q);
    for (int i = 0; i < 20000; ++i) {
      const u64 a = prng.uniform(q), b = prng.uniform(q), x = prng.next_u64();
      ASSERT_EQ(m.mul(a, b), static_cast<u64>(static_cast<u128>(a) * b % q));
      ASSERT_EQ(m.reduce(x), x % q);
      const u128 big = static_cast<u128>(a) * b * 7 + x;
      ASSERT_EQ(m.reduce128(big), static_cast<u64>(big % q));
      const ShoupConst s(b, q);
      const u64 lazy = mul_shoup_lazy(x, s, q);
      ASSERT_LT(lazy, 2 * q);
      ASSERT_EQ(lazy % q, static_cast<u64>(static_cast<u128>(x) * b % q));
      ASSERT_EQ(mul_shoup(x, s, q), static_cast<u64>(static_cast<u128>(x) * b % q));
    }
    EXPECT_EQ(m.mul(m.inv(12345), 12345), 1u);
    EXPECT_EQ(m.from_signed(-1), q - 1);
    EXPECT_EQ(m.to_centered(q - 5), -5);
  }
}

TEST(Primes, NttFriendlyDistinctAndCorrectSize) {
  const int log_n = 16;
  const auto qs = generate_ntt_primes(log_n, {60, 40, 40, 40, 61, 61, 39, 56});
  std::set<u64> seen;
  const std::vector<int> bits = {60, 40, 40, 40, 61, 61, 39, 56};
  for (std::size_t i = 0; i < qs.size(); ++i) {
    EXPECT_TRUE(is_prime(qs[i]));
    EXPECT_EQ(qs[i] % (u64{2} << log_n), 1u);
    EXPECT_NEAR(std::log2(static_cast<double>(qs[i])), bits[i], 0.01);
    EXPECT_TRUE(seen.insert(qs[i]).second);
  }
  EXPECT_LT(qs[4], u64{1} << 61);
  EXPECT_FALSE(is_prime(561));                    // Carmichael number
  EXPECT_FALSE(is_prime(3215031751ull));          // strong pseudoprime to bases 2,3,5,7
  EXPECT_TRUE(is_prime(2305843009213693951ull));  // 2^61 - 1
  const u64 psi = primitive_root_2n(qs[0], log_n);
  const Modulus m(qs[0]);
  EXPECT_EQ(m.pow(psi, u64{1} << log_n), qs[0] - 1);
}

TEST(Prng, SeededStreamsAreReproducibleAndDistinct) {
  Seed s{};
  s[0] = 7;
  Prng a(s, 3), b(s, 3), c(s, 4);
  for (int i = 0; i < 100; ++i) {
    const u64 x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
  EXPECT_NE(os_seed(), os_seed());
}

TEST(Prng, ChaCha20MatchesRfc8439BlockFunction) {
  // RFC 8439 section 2.3.2 uses a 96-bit nonce and 32-bit counter; with our layout (64-bit
  // counter, 64-bit stream) the all-zero key, counter 0, nonce 0 vector of RFC 7539 A.1 applies.
  Prng p(Seed{}, 0);
  EXPECT_EQ(p.next_u32(), 0xade0b876u);
  EXPECT_EQ(p.next_u32(), 0x903df1a0u);
}

TEST(Prng, UniformIsUnbiased) {
  Prng p(Seed{9});
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) counts[p.uniform(6)]++;
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
}

TEST(Sampler, TernaryAndSparse) {
  Prng p(Seed{2});
  const auto t = sample_ternary(p, 30000);
  std::map<long, int> h;
  for (auto v : t) h[v]++;
  EXPECT_EQ(h.size(), 3u);
  for (auto& [v, c] : h) EXPECT_NEAR(c, 10000, 500) << v;
  for (std::size_t hw : {192u, 32u}) {
    const auto s = sample_sparse_ternary(p, 1 << 16, hw);
    std::size_t nz = 0, pos = 0;
    for (auto v : s) {
      ASSERT_TRUE(v >= -1 && v <= 1);
      nz += v != 0;
      pos += v == 1;
    }
    EXPECT_EQ(nz, hw);
    EXPECT_GT(pos, 0u);
    EXPECT_LT(pos, hw);
  }
}

TEST(Sampler, GaussianMomentsAndBound) {
  Prng p(Seed{3});
  GaussianSampler g(3.2);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const auto x = g.sample(p);
    ASSERT_LE(std::abs(x), g.bound());
    s += x;
    s2 += static_cast<double>(x) * x;
  }
  EXPECT_NEAR(s / n, 0.0, 0.05);
  EXPECT_NEAR(std::sqrt(s2 / n), 3.2, 0.05);
}
