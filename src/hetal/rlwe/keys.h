// RLWE key material. Every key lives in the NTT domain over explicit RNS limbs; the uniform
// parts are regenerated from 32-byte seeds, so serialized keys carry only their b parts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "hetal/core/memory.h"
#include "hetal/core/prng.h"
#include "hetal/ring/poly.h"

namespace hetal::rlwe {

using ring::RnsPoly;

/// Distribution of the secret: uniform ternary, or ternary with a fixed Hamming weight h.
struct SecretDistribution {
  enum class Kind : std::uint8_t { uniform_ternary = 0, sparse_ternary = 1 };
  Kind kind = Kind::uniform_ternary;
  std::size_t hamming_weight = 0;  // only for sparse_ternary
  bool operator==(const SecretDistribution&) const = default;
};

class SecretKey {
 public:
  std::vector<std::int8_t> coeffs;  // ternary coefficients (the key itself)
  RnsPoly ntt;                      // NTT form over every Q and P prime

  SecretKey() = default;
  SecretKey(const SecretKey&) = default;
  SecretKey(SecretKey&&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  SecretKey& operator=(SecretKey&&) = default;
  /// Wipes the key material before the memory goes back to the allocator's block cache.
  ~SecretKey() {
    if (!coeffs.empty()) core::secure_zero(coeffs.data(), coeffs.size());
    if (!ntt.empty()) core::secure_zero(ntt.data(), ntt.size() * sizeof(std::uint64_t));
  }
};

class PublicKey {
 public:
  RnsPoly b, a;  // b = -a s + e over all Q and P primes, NTT form
  core::Seed seed{};
};

/// Hybrid (Han-Ki) switching key from s_from to s: for each digit d,
/// b_d = -a_d s + e_d + P * g_d * s_from  over Q_{nq-1} P, with g_d the CRT idempotent of digit d.
class SwitchingKey {
 public:
  std::size_t nq = 0;  // ciphertext limbs covered (key level + 1)
  std::vector<RnsPoly> b, a;
  core::Seed seed{};
  std::size_t digits() const { return b.size(); }
  /// Without its uniform halves: a_d is a function of the seed, regenerated limb by limb by
  /// each key switch (half the memory, ~3 ns per word of a_d per use with AVX-512).
  bool seeded() const { return a.empty(); }
  void drop_uniform() { std::vector<RnsPoly>().swap(a); }
  /// Resident size: b, and a unless seeded.
  std::size_t bytes() const {
    std::size_t words = 0;
    for (const auto& p : b) words += p.size();
    for (const auto& p : a) words += p.size();
    return words * sizeof(std::uint64_t);
  }
};

class RelinKey {
 public:
  SwitchingKey key;
};

class GaloisKeys {
 public:
  std::map<std::uint64_t, SwitchingKey> keys;  // by Galois element
  bool has(std::uint64_t galois) const { return keys.count(galois) != 0; }
};

}  // namespace hetal::rlwe
