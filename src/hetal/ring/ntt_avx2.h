// AVX2 NTT butterflies for CPUs without AVX-512 (ntt_avx512.h has the faster kernels): four
// 64-bit lanes, Shoup multiplication with the 64-bit products built from 32 x 32 -> 64
// multiplies (exact high word), Harvey's lazy ranges as on the scalar path (forward < 4q,
// inverse < 2q; q < 2^62, so signed compares suffice). Two stages per pass, as the scalar
// path. HETAL_NO_AVX2 in the environment turns it off.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hetal::ring::detail {

bool avx2_available();

/// a[k] mod q for a[k] < (1 << shift) q, shift 1 or 2 (n a multiple of 4).
void reduce_avx2(std::uint64_t* a, std::size_t n, std::uint64_t q, int shift);
/// Forward stages m and 2m (stage m: groups of 2t, t / 2 a multiple of 4).
void forward_pair_avx2(std::uint64_t* a, std::size_t m, std::size_t t, const std::uint64_t* w,
                       const std::uint64_t* wq, std::uint64_t q);
/// The last two forward stages (t = 2, 1) on m = n / 4 groups of 4, m a multiple of 4.
void forward_last_pair_avx2(std::uint64_t* a, std::size_t m, const std::uint64_t* w,
                            const std::uint64_t* wq, std::uint64_t q);
/// The first two inverse stages (t = 1, 2) of a size-n transform, n a multiple of 16.
void inverse_first_pair_avx2(std::uint64_t* a, std::size_t n, const std::uint64_t* w,
                             const std::uint64_t* wq, std::uint64_t q);
/// Inverse stages m and m / 2 (stage m: m / 2 groups of 2t, t a multiple of 4).
void inverse_pair_avx2(std::uint64_t* a, std::size_t m, std::size_t t, const std::uint64_t* w,
                       const std::uint64_t* wq, std::uint64_t q);

}  // namespace hetal::ring::detail
