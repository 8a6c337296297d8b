// 8 ChaCha20 blocks at once with AVX2 (one vector per state word, lane b = block b), for
// Prng::uniform_fill on CPUs without AVX-512. Same block function as Prng::refill (RFC 8439),
// same output order.
#include <immintrin.h>

#include "hetal/core/cpu.h"
#include "hetal/core/prng_batch.h"

namespace hetal::core::detail {

bool chacha_avx2_available() { return core::avx2_enabled(); }

namespace {
#define HETAL_TARGET_AVX2 __attribute__((target("avx2")))
template <int R>
HETAL_TARGET_AVX2 inline __m256i rotl(__m256i x) {
  return _mm256_or_si256(_mm256_slli_epi32(x, R), _mm256_srli_epi32(x, 32 - R));
}
// Rotations by 16 and 8 move whole bytes: one shuffle instead of two shifts and an or.
HETAL_TARGET_AVX2 inline __m256i rotl_bytes(__m256i x, __m256i pattern) {
  return _mm256_shuffle_epi8(x, pattern);
}
HETAL_TARGET_AVX2 inline void quarter8(__m256i& a, __m256i& b, __m256i& c, __m256i& d, __m256i r16,
                                       __m256i r8) {
  a = _mm256_add_epi32(a, b);
  d = rotl_bytes(_mm256_xor_si256(d, a), r16);
  c = _mm256_add_epi32(c, d);
  b = rotl<12>(_mm256_xor_si256(b, c));
  a = _mm256_add_epi32(a, b);
  d = rotl_bytes(_mm256_xor_si256(d, a), r8);
  c = _mm256_add_epi32(c, d);
  b = rotl<7>(_mm256_xor_si256(b, c));
}
}  // namespace

HETAL_TARGET_AVX2 void chacha_blocks8_avx2(const std::array<std::uint32_t, 16>& state,
                                           std::uint64_t counter, void* out_bytes) {
  auto* out = static_cast<__m256i*>(out_bytes);
  const __m256i r16 = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3,
                                       0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  const __m256i r8 = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1,
                                      2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
  __m256i in[16], x[16];
  for (int w = 0; w < 16; ++w) in[w] = _mm256_set1_epi32(static_cast<int>(state[w]));
  // Counter words 12 (low) and 13 (high) of block b: counter + b, with the carry (an unsigned
  // lo + b < lo, compared as signed after flipping the top bits).
  const __m256i lo0 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(counter)));
  in[12] = _mm256_add_epi32(lo0, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i flip = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i carry = _mm256_cmpgt_epi32(_mm256_xor_si256(lo0, flip),
                                           _mm256_xor_si256(in[12], flip));  // -1 where carried
  in[13] = _mm256_sub_epi32(
      _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(counter >> 32))), carry);
  for (int w = 0; w < 16; ++w) x[w] = in[w];
  for (int i = 0; i < 10; ++i) {
    quarter8(x[0], x[4], x[8], x[12], r16, r8);
    quarter8(x[1], x[5], x[9], x[13], r16, r8);
    quarter8(x[2], x[6], x[10], x[14], r16, r8);
    quarter8(x[3], x[7], x[11], x[15], r16, r8);
    quarter8(x[0], x[5], x[10], x[15], r16, r8);
    quarter8(x[1], x[6], x[11], x[12], r16, r8);
    quarter8(x[2], x[7], x[8], x[13], r16, r8);
    quarter8(x[3], x[4], x[9], x[14], r16, r8);
  }
  // Word-major to block-major, words 0-7 and 8-15 apart: an 8 x 8 transpose each (32-bit and
  // 64-bit unpacks within 128-bit lanes, then 128-bit permutes). Block b's words h*8 .. h*8+7
  // go to out[2 b + h].
  for (int h = 0; h < 2; ++h) {
    __m256i r[8];
    for (int w = 0; w < 8; ++w) r[w] = _mm256_add_epi32(x[8 * h + w], in[8 * h + w]);
    __m256i t[8], u[8];
    for (int p = 0; p < 4; ++p) {
      t[2 * p] = _mm256_unpacklo_epi32(r[2 * p], r[2 * p + 1]);      // blocks 0,1 | 4,5
      t[2 * p + 1] = _mm256_unpackhi_epi32(r[2 * p], r[2 * p + 1]);  // blocks 2,3 | 6,7
    }
    for (int g = 0; g < 2; ++g) {  // words 4g .. 4g + 3
      const __m256i a = t[4 * g], b = t[4 * g + 1], c = t[4 * g + 2], d = t[4 * g + 3];
      u[4 * g] = _mm256_unpacklo_epi64(a, c);      // block 0 | 4
      u[4 * g + 1] = _mm256_unpackhi_epi64(a, c);  // block 1 | 5
      u[4 * g + 2] = _mm256_unpacklo_epi64(b, d);  // block 2 | 6
      u[4 * g + 3] = _mm256_unpackhi_epi64(b, d);  // block 3 | 7
    }
    for (int b = 0; b < 4; ++b) {
      _mm256_store_si256(out + 2 * b + h, _mm256_permute2x128_si256(u[b], u[4 + b], 0x20));
      _mm256_store_si256(out + 2 * (b + 4) + h, _mm256_permute2x128_si256(u[b], u[4 + b], 0x31));
    }
  }
}

}  // namespace hetal::core::detail
