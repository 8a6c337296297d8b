// CKKS key generation over a Context: secret, public, relinearization and Galois keys, each
// switching key generated only up to a chosen level (smaller keys, faster key switching).
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "hetal/ckks/context.h"
#include "hetal/rlwe/keygen.h"

namespace hetal::ckks {

using rlwe::GaloisKeys;
using rlwe::PublicKey;
using rlwe::RelinKey;
using rlwe::SecretKey;

class KeyGenerator {
 public:
  /// Randomness from the OS unless a seed is given (tests, reproducible examples).
  explicit KeyGenerator(const Context& ctx, std::optional<core::Seed> seed = std::nullopt);
  explicit KeyGenerator(Context&&, std::optional<core::Seed> = std::nullopt) = delete;

  SecretKey secret_key();
  PublicKey public_key(const SecretKey& sk);
  /// Relinearization key usable for ciphertexts at levels <= level (default: the whole chain).
  RelinKey relin_key(const SecretKey& sk, std::optional<std::size_t> level = std::nullopt);
  /// Keys for left rotations by each step (negative = right) and, optionally, conjugation.
  GaloisKeys galois_keys(const SecretKey& sk, std::span<const long long> steps,
                         bool conjugation = false, std::optional<std::size_t> level = std::nullopt);
  /// Keys for rotations by every +-2^i and conjugation: any rotation is reachable.
  GaloisKeys galois_keys_pow2(const SecretKey& sk, std::optional<std::size_t> level = std::nullopt);
  /// Fresh secret key with exactly h nonzero ternary coefficients, whatever the chain's
  /// distribution (the ephemeral key of sparse-secret encapsulation).
  SecretKey sparse_secret_key(std::size_t hamming_weight);
  /// Key switching `from` to `to`, usable for ciphertexts at levels <= level.
  rlwe::SwitchingKey switching_key(const SecretKey& to, const SecretKey& from,
                                   std::optional<std::size_t> level = std::nullopt);
  /// A seed drawn from this generator's stream (for keys over other RNS bases).
  core::Seed fresh_seed() { return prng_.next_seed(); }
  /// Adds the key for one Galois element to `keys`.
  void add_galois_key(const SecretKey& sk, std::uint64_t galois, GaloisKeys& keys,
                      std::optional<std::size_t> level = std::nullopt);

 private:
  std::size_t key_nq(std::optional<std::size_t> level) const;
  const Context& ctx_;
  rlwe::KeyGenerator kg_;
  core::Prng prng_;
};

}  // namespace hetal::ckks
