#include "hetal/ring/ntt_avx512.h"

// GCC 12 reports its own _mm512_undefined_epi32() placeholders in avx512fintrin.h as
// "maybe uninitialized" (a false positive in the system header, not in this file).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdlib>

namespace hetal::ring::detail {

namespace {
bool disabled() { return std::getenv("HETAL_NO_AVX512") != nullptr; }
}  // namespace

bool ifma_available() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return !disabled() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
  }();
  return ok;
}

bool avx512dq_available() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return !disabled() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  }();
  return ok;
}

namespace {

#define HETAL_TARGET_IFMA __attribute__((target("avx512f,avx512ifma")))
#define HETAL_TARGET_DQ __attribute__((target("avx512f,avx512dq")))

// x * w mod q in [0, 2q) for x < 2^52, w < q < 2^50, w52 = floor(w 2^52 / q): IFMA Shoup.
HETAL_TARGET_IFMA inline __m512i mul_shoup_ifma(__m512i x, __m512i w, __m512i wq, __m512i q) {
  const __m512i zero = _mm512_set1_epi64(0);
  const __m512i mask = _mm512_set1_epi64((1LL << 52) - 1);
  const __m512i qhat = _mm512_madd52hi_epu64(zero, x, wq);
  const __m512i xw = _mm512_madd52lo_epu64(zero, x, w);
  const __m512i qq = _mm512_madd52lo_epu64(zero, qhat, q);
  return _mm512_and_si512(_mm512_sub_epi64(xw, qq), mask);
}

// x * w mod q in [0, 2q) for any 64-bit x, q < 2^62, wq = floor(w 2^64 / q): 64-bit Shoup with
// the high product assembled from four 32x32-bit products.
HETAL_TARGET_DQ inline __m512i mul_shoup_dq(__m512i x, __m512i w, __m512i wq, __m512i q) {
  const __m512i m32 = _mm512_set1_epi64(0xffffffffLL);
  const __m512i xh = _mm512_srli_epi64(x, 32), wh = _mm512_srli_epi64(wq, 32);
  const __m512i ll = _mm512_mul_epu32(x, wq), lh = _mm512_mul_epu32(x, wh);
  const __m512i hl = _mm512_mul_epu32(xh, wq), hh = _mm512_mul_epu32(xh, wh);
  __m512i mid = _mm512_add_epi64(_mm512_srli_epi64(ll, 32), _mm512_and_si512(lh, m32));
  mid = _mm512_add_epi64(mid, _mm512_and_si512(hl, m32));
  __m512i hi = _mm512_add_epi64(hh, _mm512_srli_epi64(lh, 32));
  hi = _mm512_add_epi64(hi, _mm512_srli_epi64(hl, 32));
  hi = _mm512_add_epi64(hi, _mm512_srli_epi64(mid, 32));
  return _mm512_sub_epi64(_mm512_mullo_epi64(x, w), _mm512_mullo_epi64(hi, q));
}

// Permute indices for a block of 16 coefficients in a stage with butterfly distance t:
// coefficient p is in group p / 2t; x element e of the block sits at (e / t) 2t + e % t and
// its y partner t further; w[e] selects the twiddle of element e's group.
struct SmallStageIndex {
  alignas(64) long long x[8], y[8], lo[8], hi[8], w[8];
};
SmallStageIndex make_small_stage_index(int t) {
  SmallStageIndex ix{};
  for (int e = 0; e < 8; ++e) {
    ix.x[e] = (e / t) * 2 * t + e % t;
    ix.y[e] = ix.x[e] + t;
    ix.w[e] = e / t;
  }
  // Inverse map for the stores: position p takes x (index e) or y (index 8 + e).
  long long out[16];
  for (int e = 0; e < 8; ++e) {
    out[ix.x[e]] = e;
    out[ix.y[e]] = 8 + e;
  }
  for (int p = 0; p < 8; ++p) {
    ix.lo[p] = out[p];
    ix.hi[p] = out[8 + p];
  }
  return ix;
}
const SmallStageIndex& small_stage_index(std::size_t t) {
  static const SmallStageIndex t1 = make_small_stage_index(1), t2 = make_small_stage_index(2),
                               t4 = make_small_stage_index(4);
  return t == 1 ? t1 : (t == 2 ? t2 : t4);
}

}  // namespace

// The three stage kernels, instantiated once per multiplier (IFMA for q < 2^50, DQ otherwise).
#define HETAL_NTT_STAGES(SUFFIX, TARGET, MUL)                                                   \
  TARGET void forward_stage_##SUFFIX(std::uint64_t* a, std::size_t m, std::size_t t,            \
                                     const std::uint64_t* w, const std::uint64_t* wq,           \
                                     std::uint64_t q) {                                         \
    const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));                            \
    const __m512i v2q = _mm512_set1_epi64(static_cast<long long>(2 * q));                       \
    for (std::size_t i = 0; i < m; ++i) {                                                       \
      const __m512i vw = _mm512_set1_epi64(static_cast<long long>(w[i]));                       \
      const __m512i vwq = _mm512_set1_epi64(static_cast<long long>(wq[i]));                     \
      std::uint64_t* x = a + 2 * i * t;                                                         \
      std::uint64_t* y = x + t;                                                                 \
      for (std::size_t j = 0; j < t; j += 8) {                                                  \
        __m512i vx = _mm512_loadu_si512(x + j);                                                 \
        const __m512i vy = _mm512_loadu_si512(y + j);                                           \
        vx = _mm512_mask_sub_epi64(vx, _mm512_cmpge_epu64_mask(vx, v2q), vx, v2q);              \
        const __m512i tt = MUL(vy, vw, vwq, vq);                                                \
        _mm512_storeu_si512(x + j, _mm512_add_epi64(vx, tt));                                   \
        _mm512_storeu_si512(y + j, _mm512_add_epi64(_mm512_sub_epi64(vx, tt), v2q));            \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  TARGET void inverse_stage_##SUFFIX(std::uint64_t* a, std::size_t h, std::size_t t,            \
                                     const std::uint64_t* w, const std::uint64_t* wq,           \
                                     std::uint64_t q) {                                         \
    const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));                            \
    const __m512i v2q = _mm512_set1_epi64(static_cast<long long>(2 * q));                       \
    for (std::size_t i = 0; i < h; ++i) {                                                       \
      const __m512i vw = _mm512_set1_epi64(static_cast<long long>(w[i]));                       \
      const __m512i vwq = _mm512_set1_epi64(static_cast<long long>(wq[i]));                     \
      std::uint64_t* x = a + 2 * i * t;                                                         \
      std::uint64_t* y = x + t;                                                                 \
      for (std::size_t j = 0; j < t; j += 8) {                                                  \
        const __m512i vx = _mm512_loadu_si512(x + j);                                           \
        const __m512i vy = _mm512_loadu_si512(y + j);                                           \
        __m512i s = _mm512_add_epi64(vx, vy);                                                   \
        s = _mm512_mask_sub_epi64(s, _mm512_cmpge_epu64_mask(s, v2q), s, v2q);                  \
        const __m512i d = _mm512_add_epi64(_mm512_sub_epi64(vx, vy), v2q);                      \
        _mm512_storeu_si512(x + j, s);                                                          \
        _mm512_storeu_si512(y + j, MUL(d, vw, vwq, vq));                                        \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  TARGET void inverse_last_stage_##SUFFIX(std::uint64_t* a, std::size_t t, std::uint64_t n_inv, \
                                          std::uint64_t n_inv_q, std::uint64_t n_inv_w,         \
                                          std::uint64_t n_inv_w_q, std::uint64_t q) {           \
    const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));                            \
    const __m512i v2q = _mm512_set1_epi64(static_cast<long long>(2 * q));                       \
    const __m512i a0 = _mm512_set1_epi64(static_cast<long long>(n_inv));                        \
    const __m512i a1 = _mm512_set1_epi64(static_cast<long long>(n_inv_q));                      \
    const __m512i b0 = _mm512_set1_epi64(static_cast<long long>(n_inv_w));                      \
    const __m512i b1 = _mm512_set1_epi64(static_cast<long long>(n_inv_w_q));                    \
    std::uint64_t* x = a;                                                                       \
    std::uint64_t* y = a + t;                                                                   \
    for (std::size_t j = 0; j < t; j += 8) {                                                    \
      const __m512i vx = _mm512_loadu_si512(x + j);                                             \
      const __m512i vy = _mm512_loadu_si512(y + j);                                             \
      const __m512i s = _mm512_add_epi64(vx, vy);                                               \
      const __m512i d = _mm512_add_epi64(_mm512_sub_epi64(vx, vy), v2q);                        \
      _mm512_storeu_si512(x + j, MUL(s, a0, a1, vq));                                           \
      _mm512_storeu_si512(y + j, MUL(d, b0, b1, vq));                                           \
    }                                                                                           \
  }

// Stages with t in {1, 2, 4}: 16 coefficients (16 / 2t butterfly groups) per step, split into
// the x and y halves of the butterflies with two-source permutes and merged back afterwards.
#define HETAL_NTT_SMALL_STAGES(SUFFIX, TARGET, MUL)                                         \
  TARGET void forward_small_stage_##SUFFIX(std::uint64_t* a, std::size_t n, std::size_t t,  \
                                           const std::uint64_t* w, const std::uint64_t* wq, \
                                           std::uint64_t q) {                               \
    const SmallStageIndex& ix = small_stage_index(t);                                       \
    const __m512i xi = _mm512_loadu_si512(ix.x), yi = _mm512_loadu_si512(ix.y);             \
    const __m512i lo_i = _mm512_loadu_si512(ix.lo), hi_i = _mm512_loadu_si512(ix.hi);       \
    const __m512i wi = _mm512_loadu_si512(ix.w);                                            \
    const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));                        \
    const __m512i v2q = _mm512_set1_epi64(static_cast<long long>(2 * q));                   \
    for (std::size_t p = 0, g = 0; p < n; p += 16, g += 8 / t) {                            \
      const __m512i lo = _mm512_loadu_si512(a + p), hi = _mm512_loadu_si512(a + p + 8);     \
      __m512i vx = _mm512_permutex2var_epi64(lo, xi, hi);                                   \
      const __m512i vy = _mm512_permutex2var_epi64(lo, yi, hi);                             \
      const __m512i vw = _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(w + g));           \
      const __m512i vwq = _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(wq + g));         \
      vx = _mm512_mask_sub_epi64(vx, _mm512_cmpge_epu64_mask(vx, v2q), vx, v2q);            \
      const __m512i tt = MUL(vy, vw, vwq, vq);                                              \
      const __m512i ox = _mm512_add_epi64(vx, tt);                                          \
      const __m512i oy = _mm512_add_epi64(_mm512_sub_epi64(vx, tt), v2q);                   \
      _mm512_storeu_si512(a + p, _mm512_permutex2var_epi64(ox, lo_i, oy));                  \
      _mm512_storeu_si512(a + p + 8, _mm512_permutex2var_epi64(ox, hi_i, oy));              \
    }                                                                                       \
  }                                                                                         \
  TARGET void inverse_small_stage_##SUFFIX(std::uint64_t* a, std::size_t n, std::size_t t,  \
                                           const std::uint64_t* w, const std::uint64_t* wq, \
                                           std::uint64_t q) {                               \
    const SmallStageIndex& ix = small_stage_index(t);                                       \
    const __m512i xi = _mm512_loadu_si512(ix.x), yi = _mm512_loadu_si512(ix.y);             \
    const __m512i lo_i = _mm512_loadu_si512(ix.lo), hi_i = _mm512_loadu_si512(ix.hi);       \
    const __m512i wi = _mm512_loadu_si512(ix.w);                                            \
    const __m512i vq = _mm512_set1_epi64(static_cast<long long>(q));                        \
    const __m512i v2q = _mm512_set1_epi64(static_cast<long long>(2 * q));                   \
    for (std::size_t p = 0, g = 0; p < n; p += 16, g += 8 / t) {                            \
      const __m512i lo = _mm512_loadu_si512(a + p), hi = _mm512_loadu_si512(a + p + 8);     \
      const __m512i vx = _mm512_permutex2var_epi64(lo, xi, hi);                             \
      const __m512i vy = _mm512_permutex2var_epi64(lo, yi, hi);                             \
      const __m512i vw = _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(w + g));           \
      const __m512i vwq = _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(wq + g));         \
      __m512i s = _mm512_add_epi64(vx, vy);                                                 \
      s = _mm512_mask_sub_epi64(s, _mm512_cmpge_epu64_mask(s, v2q), s, v2q);                \
      const __m512i d = _mm512_add_epi64(_mm512_sub_epi64(vx, vy), v2q);                    \
      const __m512i oy = MUL(d, vw, vwq, vq);                                               \
      _mm512_storeu_si512(a + p, _mm512_permutex2var_epi64(s, lo_i, oy));                   \
      _mm512_storeu_si512(a + p + 8, _mm512_permutex2var_epi64(s, hi_i, oy));               \
    }                                                                                       \
  }

HETAL_NTT_STAGES(ifma, HETAL_TARGET_IFMA, mul_shoup_ifma)
HETAL_NTT_STAGES(dq, HETAL_TARGET_DQ, mul_shoup_dq)
HETAL_NTT_SMALL_STAGES(ifma, HETAL_TARGET_IFMA, mul_shoup_ifma)
HETAL_NTT_SMALL_STAGES(dq, HETAL_TARGET_DQ, mul_shoup_dq)
#undef HETAL_NTT_STAGES
#undef HETAL_NTT_SMALL_STAGES

}  // namespace hetal::ring::detail
