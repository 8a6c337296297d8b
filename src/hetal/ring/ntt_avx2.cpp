#include "hetal/ring/ntt_avx2.h"

#include <immintrin.h>

#include "hetal/core/cpu.h"

namespace hetal::ring::detail {

bool avx2_available() { return core::avx2_enabled(); }

namespace {
#define HETAL_TARGET_AVX2 __attribute__((target("avx2")))
using u64 = std::uint64_t;

// A constant with its high halves (the 32 x 32 multiplies read the low half of each lane).
struct Wide {
  __m256i v, hi;
};
HETAL_TARGET_AVX2 inline Wide wide(u64 x) {
  return {_mm256_set1_epi64x(static_cast<long long>(x)),
          _mm256_set1_epi64x(static_cast<long long>(x >> 32))};
}

// floor(a b / 2^64), exactly: four partial products and the carries of the middle words.
HETAL_TARGET_AVX2 inline __m256i mul_hi(__m256i a, __m256i a_hi, const Wide& b) {
  const __m256i lo32 = _mm256_set1_epi64x(0xffffffff);
  const __m256i ll = _mm256_mul_epu32(a, b.v), lh = _mm256_mul_epu32(a, b.hi);
  const __m256i hl = _mm256_mul_epu32(a_hi, b.v), hh = _mm256_mul_epu32(a_hi, b.hi);
  const __m256i mid =
      _mm256_add_epi64(_mm256_srli_epi64(ll, 32),
                       _mm256_add_epi64(_mm256_and_si256(lh, lo32), _mm256_and_si256(hl, lo32)));
  return _mm256_add_epi64(_mm256_add_epi64(hh, _mm256_srli_epi64(mid, 32)),
                          _mm256_add_epi64(_mm256_srli_epi64(lh, 32), _mm256_srli_epi64(hl, 32)));
}

// a b mod 2^64.
HETAL_TARGET_AVX2 inline __m256i mul_lo(__m256i a, __m256i a_hi, __m256i b, __m256i b_hi) {
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(a_hi, b), _mm256_mul_epu32(a, b_hi));
  return _mm256_add_epi64(_mm256_mul_epu32(a, b), _mm256_slli_epi64(cross, 32));
}

// y w mod q in [0, 2q) (Shoup: w' = floor(w 2^64 / q)), for any 64-bit y.
HETAL_TARGET_AVX2 inline __m256i mul_shoup(__m256i y, const Wide& w, const Wide& wq,
                                           const Wide& q) {
  const __m256i y_hi = _mm256_srli_epi64(y, 32);
  const __m256i qhat = mul_hi(y, y_hi, wq);
  const __m256i r = mul_lo(y, y_hi, w.v, w.hi);
  return _mm256_sub_epi64(r, mul_lo(qhat, _mm256_srli_epi64(qhat, 32), q.v, q.hi));
}

// x - 2q where x >= 2q (x < 2^63).
HETAL_TARGET_AVX2 inline __m256i reduce_2q(__m256i x, __m256i two_q, __m256i two_q_m1) {
  return _mm256_sub_epi64(x, _mm256_and_si256(_mm256_cmpgt_epi64(x, two_q_m1), two_q));
}

struct Consts {
  Wide q;
  __m256i two_q, two_q_m1;
};
HETAL_TARGET_AVX2 inline Consts consts(u64 q) {
  return {wide(q), _mm256_set1_epi64x(static_cast<long long>(2 * q)),
          _mm256_set1_epi64x(static_cast<long long>(2 * q - 1))};
}

HETAL_TARGET_AVX2 inline void ct(__m256i& x, __m256i& y, const Wide& w, const Wide& wq,
                                 const Consts& c) {
  const __m256i u = reduce_2q(x, c.two_q, c.two_q_m1);
  const __m256i v = mul_shoup(y, w, wq, c.q);
  x = _mm256_add_epi64(u, v);
  y = _mm256_add_epi64(_mm256_sub_epi64(u, v), c.two_q);
}

HETAL_TARGET_AVX2 inline void gs(__m256i& x, __m256i& y, const Wide& w, const Wide& wq,
                                 const Consts& c) {
  const __m256i s = reduce_2q(_mm256_add_epi64(x, y), c.two_q, c.two_q_m1);
  y = mul_shoup(_mm256_add_epi64(_mm256_sub_epi64(x, y), c.two_q), w, wq, c.q);
  x = s;
}

// A twiddle vector with its high halves.
HETAL_TARGET_AVX2 inline Wide wide(__m256i v) { return {v, _mm256_srli_epi64(v, 32)}; }

// 4 x 4 transpose of 64-bit words (its own inverse): x[r][c] -> x[c][r].
HETAL_TARGET_AVX2 inline void transpose4(__m256i& x0, __m256i& x1, __m256i& x2, __m256i& x3) {
  const __m256i t0 = _mm256_unpacklo_epi64(x0, x1), t1 = _mm256_unpackhi_epi64(x0, x1);
  const __m256i t2 = _mm256_unpacklo_epi64(x2, x3), t3 = _mm256_unpackhi_epi64(x2, x3);
  x0 = _mm256_permute2x128_si256(t0, t2, 0x20);
  x1 = _mm256_permute2x128_si256(t1, t3, 0x20);
  x2 = _mm256_permute2x128_si256(t0, t2, 0x31);
  x3 = _mm256_permute2x128_si256(t1, t3, 0x31);
}

// Words p[0], p[2], p[4], p[6] and p[1], p[3], p[5], p[7].
HETAL_TARGET_AVX2 inline void deinterleave(const u64* p, __m256i& even, __m256i& odd) {
  const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4));
  even = _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(v0, v1), 0xd8);
  odd = _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(v0, v1), 0xd8);
}

HETAL_TARGET_AVX2 inline __m256i load(const u64* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
HETAL_TARGET_AVX2 inline void store(u64* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}
}  // namespace

HETAL_TARGET_AVX2 void forward_pair_avx2(u64* a, std::size_t m, std::size_t t, const u64* w,
                                         const u64* wq, u64 q) {
  const Consts c = consts(q);
  const std::size_t h = t / 2;
  for (std::size_t i = 0; i < m; ++i) {
    const Wide w1 = wide(w[m + i]), w1q = wide(wq[m + i]);
    const Wide wa = wide(w[2 * m + 2 * i]), waq = wide(wq[2 * m + 2 * i]);
    const Wide wb = wide(w[2 * m + 2 * i + 1]), wbq = wide(wq[2 * m + 2 * i + 1]);
    u64* x = a + 2 * i * t;
    for (std::size_t j = 0; j < h; j += 4) {
      __m256i x0 = load(x + j), x1 = load(x + j + h), x2 = load(x + j + t),
              x3 = load(x + j + t + h);
      ct(x0, x2, w1, w1q, c);
      ct(x1, x3, w1, w1q, c);
      ct(x0, x1, wa, waq, c);
      ct(x2, x3, wb, wbq, c);
      store(x + j, x0);
      store(x + j + h, x1);
      store(x + j + t, x2);
      store(x + j + t + h, x3);
    }
  }
}

HETAL_TARGET_AVX2 void reduce_avx2(u64* a, std::size_t n, u64 q, int shift) {
  const Consts c = consts(q);
  const __m256i q_m1 = _mm256_set1_epi64x(static_cast<long long>(q - 1));
  for (std::size_t k = 0; k < n; k += 4) {
    __m256i x = load(a + k);
    if (shift == 2) x = reduce_2q(x, c.two_q, c.two_q_m1);
    x = _mm256_sub_epi64(x, _mm256_and_si256(_mm256_cmpgt_epi64(x, q_m1), c.q.v));
    store(a + k, x);
  }
}

// Four groups at a time, transposed so that lane g holds group i + g's word.
HETAL_TARGET_AVX2 void forward_last_pair_avx2(u64* a, std::size_t m, const u64* w, const u64* wq,
                                              u64 q) {
  const Consts c = consts(q);
  for (std::size_t i = 0; i < m; i += 4) {
    u64* x = a + 4 * i;
    __m256i x0 = load(x), x1 = load(x + 4), x2 = load(x + 8), x3 = load(x + 12);
    transpose4(x0, x1, x2, x3);
    const Wide w1 = wide(load(w + m + i)), w1q = wide(load(wq + m + i));
    __m256i ea, oa, eq, oq;
    deinterleave(w + 2 * m + 2 * i, ea, oa);
    deinterleave(wq + 2 * m + 2 * i, eq, oq);
    ct(x0, x2, w1, w1q, c);
    ct(x1, x3, w1, w1q, c);
    ct(x0, x1, wide(ea), wide(eq), c);
    ct(x2, x3, wide(oa), wide(oq), c);
    transpose4(x0, x1, x2, x3);
    store(x, x0);
    store(x + 4, x1);
    store(x + 8, x2);
    store(x + 12, x3);
  }
}

HETAL_TARGET_AVX2 void inverse_first_pair_avx2(u64* a, std::size_t n, const u64* w, const u64* wq,
                                               u64 q) {
  const Consts c = consts(q);
  const std::size_t ha = n / 2, hb = n / 4;
  for (std::size_t i = 0; i < hb; i += 4) {
    u64* x = a + 4 * i;
    __m256i x0 = load(x), x1 = load(x + 4), x2 = load(x + 8), x3 = load(x + 12);
    transpose4(x0, x1, x2, x3);
    __m256i ea, oa, eq, oq;
    deinterleave(w + ha + 2 * i, ea, oa);
    deinterleave(wq + ha + 2 * i, eq, oq);
    const Wide w2 = wide(load(w + hb + i)), w2q = wide(load(wq + hb + i));
    gs(x0, x1, wide(ea), wide(eq), c);
    gs(x2, x3, wide(oa), wide(oq), c);
    gs(x0, x2, w2, w2q, c);
    gs(x1, x3, w2, w2q, c);
    transpose4(x0, x1, x2, x3);
    store(x, x0);
    store(x + 4, x1);
    store(x + 8, x2);
    store(x + 12, x3);
  }
}

HETAL_TARGET_AVX2 void inverse_pair_avx2(u64* a, std::size_t m, std::size_t t, const u64* w,
                                         const u64* wq, u64 q) {
  const Consts c = consts(q);
  const std::size_t ha = m / 2, hb = m / 4;
  for (std::size_t i = 0; i < hb; ++i) {
    const Wide wa = wide(w[ha + 2 * i]), waq = wide(wq[ha + 2 * i]);
    const Wide wb = wide(w[ha + 2 * i + 1]), wbq = wide(wq[ha + 2 * i + 1]);
    const Wide w2 = wide(w[hb + i]), w2q = wide(wq[hb + i]);
    u64* x = a + 4 * i * t;
    for (std::size_t j = 0; j < t; j += 4) {
      __m256i x0 = load(x + j), x1 = load(x + j + t), x2 = load(x + j + 2 * t),
              x3 = load(x + j + 3 * t);
      gs(x0, x1, wa, waq, c);
      gs(x2, x3, wb, wbq, c);
      gs(x0, x2, w2, w2q, c);
      gs(x1, x3, w2, w2q, c);
      store(x + j, x0);
      store(x + j + t, x1);
      store(x + j + 2 * t, x2);
      store(x + j + 3 * t, x3);
    }
  }
}

}  // namespace hetal::ring::detail
