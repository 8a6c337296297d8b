// Cryptographically secure pseudo-random generator: the ChaCha20 block function (RFC 8439)
// in counter mode. A 32-byte seed and a 64-bit stream id select an independent stream, so a
// uniform polynomial can be regenerated limb by limb from its seed (seeded compression).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace hetal::core {

using Seed = std::array<std::uint8_t, 32>;

/// A fresh seed from the operating system's entropy source (getrandom).
Seed os_seed();

class Prng {
 public:
  explicit Prng(const Seed& seed, std::uint64_t stream = 0);
  /// Seeded from OS entropy.
  static Prng from_os(std::uint64_t stream = 0) { return Prng(os_seed(), stream); }

  std::uint64_t next_u64();
  std::uint32_t next_u32();
  /// Uniform in [0, bound) by rejection (no modulo bias).
  std::uint64_t uniform(std::uint64_t bound);
  /// out[k] = uniform(bound) for k < n: the same values and the same state afterwards, 16
  /// ChaCha blocks at a time with AVX-512, 8 with AVX2, where the CPU has them (regenerating a
  /// key's uniform half on the fly depends on this speed; prng_batch.h).
  void uniform_fill(std::uint64_t bound, std::uint64_t* out, std::size_t n);
  void fill(std::uint8_t* out, std::size_t n);
  Seed next_seed();

 private:
  void refill();
  std::array<std::uint32_t, 16> key_state_{};
  std::array<std::uint32_t, 16> block_{};
  std::uint64_t counter_ = 0;
  unsigned pos_ = 16;
};

}  // namespace hetal::core
