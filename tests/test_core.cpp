#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "hetal/core/memory.h"
#include "hetal/core/modarith.h"
#include "hetal/core/primes.h"
#include "hetal/core/prng.h"
#include "hetal/core/sampler.h"
#include "hetal/core/sha256.h"

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

// uniform_fill (16 blocks at a time with AVX-512) gives uniform()'s values and leaves the
// generator where uniform() would: for bounds with much and with little rejection, lengths that
// end inside a block, on a block boundary and on a batch boundary, starting mid-block.
TEST(Prng, UniformFillMatchesUniform) {
  for (const u64 bound : {u64{6}, u64{1} << 40, (u64{1} << 40) + 1, (u64{1} << 60) - 93,
                          u64{1099511480321}, ~u64{0}}) {
    for (const std::size_t n : {0u, 1u, 7u, 8u, 127u, 128u, 129u, 1000u, 4096u}) {
      for (const bool odd_start : {false, true}) {
        Seed s{};
        s[1] = static_cast<std::uint8_t>(n);
        Prng a(s, 5), b(s, 5);
        if (odd_start) {
          EXPECT_EQ(a.next_u32(), b.next_u32());
        }
        std::vector<u64> got(n);
        a.uniform_fill(bound, got.data(), n);
        for (std::size_t k = 0; k < n; ++k)
          ASSERT_EQ(got[k], b.uniform(bound)) << bound << " " << n << " " << k;
        for (int k = 0; k < 40; ++k) ASSERT_EQ(a.next_u32(), b.next_u32()) << "state after " << n;
      }
    }
  }
}

// The block cache never holds more than what the blocks in use fell from their peak: a miss
// frees cached blocks of other sizes first. 400 distinct sizes allocated and freed one after
// the other would otherwise leave ~400 MiB cached beside a peak of 64 MiB.
TEST(Pool, CacheAddsNothingToThePeak) {
  pool_release();
  const std::size_t big = 64u << 20;
  void* p = pool_allocate(big);
  pool_deallocate(p, big);
  EXPECT_GE(pool_peak_in_use_bytes(), big);
  const std::size_t base = pool_in_use_bytes();
  for (std::size_t i = 0; i < 400; ++i) {
    const std::size_t bytes = (1u << 20) + 4096 * i;
    void* q = pool_allocate(bytes);
    ASSERT_LE(pool_in_use_bytes() + pool_cached_bytes(),
              std::max(pool_peak_in_use_bytes(), base + bytes));
    pool_deallocate(q, bytes);
    ASSERT_LE(pool_in_use_bytes() + pool_cached_bytes(), pool_peak_in_use_bytes()) << i;
  }
  // Same-size reuse still hits the cache: the block comes back.
  void* a = pool_allocate(big);
  pool_deallocate(a, big);
  void* b = pool_allocate(big);
  EXPECT_EQ(a, b);
  pool_deallocate(b, big);
  EXPECT_EQ(pool_in_use_bytes(), base);
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

TEST(Sha256, UpdateFileEqualsUpdateOfTheSameBytes) {
  const auto path = std::filesystem::temp_directory_path() / "hetal_sha_file.bin";
  std::string bytes(3 << 20 | 12345, '\0');  // more than one read buffer
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  std::ofstream(path, std::ios::binary) << bytes;
  const auto hex = [](const std::string& b) {
    hetal::core::Sha256 h;
    h.update(b.data(), b.size());
    return h.finish_hex();
  };
  hetal::core::Sha256 all, prefix;
  EXPECT_EQ(all.update_file(path.string()), bytes.size());
  EXPECT_EQ(all.finish_hex(), hex(bytes));
  EXPECT_EQ(prefix.update_file(path.string(), 1000001), 1000001u);
  EXPECT_EQ(prefix.finish_hex(), hex(bytes.substr(0, 1000001)));
  hetal::core::Sha256 missing;
  EXPECT_EQ(missing.update_file((path.string() + ".none")), 0u);
  std::filesystem::remove(path);
}
