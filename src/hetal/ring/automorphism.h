// Ring automorphisms X -> X^g (g odd) used for slot rotations (g = 5^k mod 2N) and complex
// conjugation (g = 2N - 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hetal::ring {

/// Index map for the NTT (evaluation) domain: out[k] = in[map[k]]. With the forward NTT's
/// ordering out[k] = a(psi^(2 bitrev(k) + 1)), sigma_g(a) evaluated there is a evaluated at
/// psi^(g (2 bitrev(k) + 1)), a pure permutation of the evaluations.
std::vector<std::uint32_t> automorphism_ntt_map(int log_n, std::uint64_t galois);

/// Applies the map to one limb: out[k] = in[map[k]] (out must not alias in).
void apply_ntt_map(const std::uint64_t* in, const std::uint32_t* map, std::size_t n,
                   std::uint64_t* out);

/// Coefficient-domain automorphism on one limb modulo q: X^i -> X^(g i mod 2N) with the sign
/// flip of X^N = -1.
void automorphism_coeff(const std::uint64_t* in, std::size_t n, std::uint64_t galois,
                        std::uint64_t q, std::uint64_t* out);

/// Galois element 5^k mod 2N for a left rotation by k slots (k may be negative).
std::uint64_t galois_element_for_rotation(int log_n, long long k);
/// Galois element of complex conjugation: 2N - 1.
inline std::uint64_t galois_element_conjugate(int log_n) { return (std::uint64_t{2} << log_n) - 1; }

}  // namespace hetal::ring
