// NTT-friendly prime generation: primes q = 1 (mod 2N) near 2^bits.
#pragma once

#include <cstdint>
#include <vector>

namespace hetal::core {

/// Deterministic Miller-Rabin for 64-bit integers.
bool is_prime(std::uint64_t n);

/// Primes q = 1 mod 2N with bit sizes `bits[i]`, all distinct and none in `exclude`.
/// For each bit size b the primes closest to 2^b are taken, alternating above and below 2^b
/// (never above 2^61) so that the product of k primes of size b stays close to 2^(k*b) and
/// rescaling keeps the scale near 2^b.
std::vector<std::uint64_t> generate_ntt_primes(int log_n, const std::vector<int>& bits,
                                               const std::vector<std::uint64_t>& exclude = {});

/// A primitive 2N-th root of unity mod q (the smallest one reached from small generators, so
/// the result is deterministic).
std::uint64_t primitive_root_2n(std::uint64_t q, int log_n);

}  // namespace hetal::core
