// 16 ChaCha20 blocks at once with AVX-512 (one vector per state word, lane b = block b), for
// Prng::uniform_fill. Same block function as Prng::refill (RFC 8439), same output order.
// GCC 12 flags its own _mm512_undefined placeholders in avx512fintrin.h (system header).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "hetal/core/prng_batch.h"

namespace hetal::core::detail {

bool chacha_avx512_available() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return std::getenv("HETAL_NO_AVX512") == nullptr && __builtin_cpu_supports("avx512f");
  }();
  return ok;
}

namespace {
#define HETAL_TARGET_F __attribute__((target("avx512f")))
HETAL_TARGET_F inline void quarter16(__m512i& a, __m512i& b, __m512i& c, __m512i& d) {
  a = _mm512_add_epi32(a, b);
  d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 16);
  c = _mm512_add_epi32(c, d);
  b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 12);
  a = _mm512_add_epi32(a, b);
  d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 8);
  c = _mm512_add_epi32(c, d);
  b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 7);
}
}  // namespace

HETAL_TARGET_F void chacha_blocks16_avx512(const std::array<std::uint32_t, 16>& state,
                                           std::uint64_t counter, void* out_bytes) {
  auto* out = static_cast<__m512i*>(out_bytes);
  __m512i in[16], x[16];
  for (int w = 0; w < 16; ++w) in[w] = _mm512_set1_epi32(static_cast<int>(state[w]));
  // Counter words 12 (low) and 13 (high) of block b: counter + b, with the carry.
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i lo0 = _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(counter)));
  in[12] = _mm512_add_epi32(lo0, lane);
  const __mmask16 carry = _mm512_cmplt_epu32_mask(in[12], lo0);
  const __m512i hi0 =
      _mm512_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(counter >> 32)));
  in[13] = _mm512_mask_add_epi32(hi0, carry, hi0, _mm512_set1_epi32(1));
  for (int w = 0; w < 16; ++w) x[w] = in[w];
  for (int i = 0; i < 10; ++i) {
    quarter16(x[0], x[4], x[8], x[12]);
    quarter16(x[1], x[5], x[9], x[13]);
    quarter16(x[2], x[6], x[10], x[14]);
    quarter16(x[3], x[7], x[11], x[15]);
    quarter16(x[0], x[5], x[10], x[15]);
    quarter16(x[1], x[6], x[11], x[12]);
    quarter16(x[2], x[7], x[8], x[13]);
    quarter16(x[3], x[4], x[9], x[14]);
  }
  // Word-major to block-major (lane b of word w to out[16 b + w]): a 16 x 16 transpose in
  // registers, 32-bit then 64-bit unpacks within 128-bit lanes, then two 128-bit shuffles.
  __m512i u[16];
  for (int g = 0; g < 4; ++g) {
    const __m512i r0 = _mm512_add_epi32(x[4 * g], in[4 * g]);
    const __m512i r1 = _mm512_add_epi32(x[4 * g + 1], in[4 * g + 1]);
    const __m512i r2 = _mm512_add_epi32(x[4 * g + 2], in[4 * g + 2]);
    const __m512i r3 = _mm512_add_epi32(x[4 * g + 3], in[4 * g + 3]);
    const __m512i ta = _mm512_unpacklo_epi32(r0, r1), tb = _mm512_unpackhi_epi32(r0, r1);
    const __m512i tc = _mm512_unpacklo_epi32(r2, r3), td = _mm512_unpackhi_epi32(r2, r3);
    u[4 * g] = _mm512_unpacklo_epi64(ta, tc);  // lane L: rows 4g..4g+3 of column 4L
    u[4 * g + 1] = _mm512_unpackhi_epi64(ta, tc);
    u[4 * g + 2] = _mm512_unpacklo_epi64(tb, td);
    u[4 * g + 3] = _mm512_unpackhi_epi64(tb, td);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);
    const __m512i v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i v3 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
    _mm512_store_si512(out + j, _mm512_shuffle_i32x4(v0, v2, 0x88));
    _mm512_store_si512(out + (8 + j), _mm512_shuffle_i32x4(v0, v2, 0xdd));
    _mm512_store_si512(out + (4 + j), _mm512_shuffle_i32x4(v1, v3, 0x88));
    _mm512_store_si512(out + (12 + j), _mm512_shuffle_i32x4(v1, v3, 0xdd));
  }
}

HETAL_TARGET_F std::size_t accept_avx512(const std::uint64_t* v, std::size_t words,
                                         std::uint64_t mask, std::uint64_t bound,
                                         std::uint64_t* out, std::size_t room,
                                         std::size_t& written) {
  const __m512i vm = _mm512_set1_epi64(static_cast<long long>(mask));
  const __m512i vb = _mm512_set1_epi64(static_cast<long long>(bound));
  std::size_t j = 0;
  written = 0;
  // Eight at a time while eight fit.
  for (; j + 8 <= words && room - written >= 8; j += 8) {
    const __m512i x = _mm512_and_si512(_mm512_load_si512(v + j), vm);
    const __mmask8 ok = _mm512_cmplt_epu64_mask(x, vb);
    // The accepted lanes packed to the front (no branch: half the B16 primes sit just above a
    // power of two, where half the candidates are rejected); the rest is overwritten next.
    _mm512_storeu_si512(out + written, _mm512_maskz_compress_epi64(ok, x));
    written += static_cast<std::size_t>(__builtin_popcount(ok));
  }
  for (; j < words && written < room; ++j) {
    const std::uint64_t x = v[j] & mask;
    if (x < bound) out[written++] = x;
  }
  return j;
}

}  // namespace hetal::core::detail
