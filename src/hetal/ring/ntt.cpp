#include "hetal/ring/ntt.h"

#include <stdexcept>

#include "hetal/core/primes.h"
#include "hetal/ring/ntt_avx2.h"
#include "hetal/ring/ntt_avx512.h"

namespace hetal::ring {

using core::mul_shoup_lazy;
using core::reduce_once;

NttTables::NttTables(u64 q, int log_n) : mod_(q), log_n_(log_n), n_(std::size_t{1} << log_n) {
  if (log_n < 1 || log_n > 17) throw std::invalid_argument("NTT size out of range");
  if (q >= (u64{1} << core::kMaxPrimeBits)) throw std::invalid_argument("NTT prime too large");
  psi_ = core::primitive_root_2n(q, log_n);
  const u64 psi_inv = mod_.inv(psi_);
  fw_.resize(n_);
  fw_shoup_.resize(n_);
  iw_.resize(n_);
  iw_shoup_.resize(n_);
  u64 p = 1, pi = 1;
  for (std::size_t k = 0; k < n_; ++k) {
    const std::size_t r = bit_reverse(static_cast<std::uint32_t>(k), log_n);
    fw_[r] = p;
    iw_[r] = pi;
    p = mod_.mul(p, psi_);
    pi = mod_.mul(pi, psi_inv);
  }
  for (std::size_t k = 0; k < n_; ++k) {
    fw_shoup_[k] = core::ShoupConst(fw_[k], q).wq;
    iw_shoup_[k] = core::ShoupConst(iw_[k], q).wq;
  }
  const u64 n_inv = mod_.inv(static_cast<u64>(n_) % q);
  n_inv_ = core::ShoupConst(n_inv, q);
  n_inv_w_ = core::ShoupConst(mod_.mul(n_inv, iw_[1]), q);
  use_ifma_ = detail::ifma_available() && q < (u64{1} << detail::kIfmaMaxBits) && n_ >= 16;
  use_dq_ = !use_ifma_ && detail::avx512dq_available() && n_ >= 16;
  use_avx2_ = !use_ifma_ && !use_dq_ && detail::avx2_available();
  if (use_ifma_) {
    auto q52 = [q](u64 w) { return static_cast<u64>((static_cast<core::u128>(w) << 52) / q); };
    fw52_.resize(n_);
    iw52_.resize(n_);
    for (std::size_t k = 0; k < n_; ++k) {
      fw52_[k] = q52(fw_[k]);
      iw52_[k] = q52(iw_[k]);
    }
    n_inv52_ = q52(n_inv_.w);
    n_inv_w52_ = q52(n_inv_w_.w);
  }
}

namespace {
// Harvey's lazy butterflies, two stages per pass over the data on the portable path: at
// N = 2^16 a limb (512 KiB) outgrows the L2 caches of many CPUs, and half the passes halve
// the traffic. Forward values stay below 4q, inverse ones below 2q (as stage by stage).
inline void ct_butterfly(u64& x, u64& y, u64 w, u64 wq, u64 q, u64 two_q) {
  u64 u = x;
  u -= two_q & (0 - static_cast<u64>(u >= two_q));
  const u64 v = mul_shoup_lazy(y, w, wq, q);
  x = u + v;
  y = u - v + two_q;
}

inline void gs_butterfly(u64& x, u64& y, u64 w, u64 wq, u64 q, u64 two_q) {
  const u64 u = x, v = y;
  u64 s = u + v;
  s -= two_q & (0 - static_cast<u64>(s >= two_q));
  x = s;
  y = mul_shoup_lazy(u - v + two_q, w, wq, q);
}

// Stages m, 2m (block i of stage m holds blocks 2i, 2i + 1 of stage 2m), then any last one.
void forward_portable(u64* a, std::size_t n, const u64* fw, const u64* fwq, u64 q, bool avx2) {
  const u64 two_q = 2 * q;
  std::size_t m = 1, t = n / 2;
  for (; 2 * m < n; m <<= 2, t >>= 2) {
    const std::size_t h = t / 2;
    if (avx2 && h >= 4) {
      detail::forward_pair_avx2(a, m, t, fw, fwq, q);
      continue;
    }
    if (avx2 && t == 2 && m % 4 == 0) {
      detail::forward_last_pair_avx2(a, m, fw, fwq, q);
      continue;
    }
    for (std::size_t i = 0; i < m; ++i) {
      const u64 w1 = fw[m + i], w1q = fwq[m + i];
      const u64 wa = fw[2 * m + 2 * i], waq = fwq[2 * m + 2 * i];
      const u64 wb = fw[2 * m + 2 * i + 1], wbq = fwq[2 * m + 2 * i + 1];
      u64* x = a + 2 * i * t;
      for (std::size_t j = 0; j < h; ++j) {
        u64 x0 = x[j], x1 = x[j + h], x2 = x[j + t], x3 = x[j + t + h];
        ct_butterfly(x0, x2, w1, w1q, q, two_q);
        ct_butterfly(x1, x3, w1, w1q, q, two_q);
        ct_butterfly(x0, x1, wa, waq, q, two_q);
        ct_butterfly(x2, x3, wb, wbq, q, two_q);
        x[j] = x0;
        x[j + h] = x1;
        x[j + t] = x2;
        x[j + t + h] = x3;
      }
    }
  }
  if (m < n) {  // an odd number of stages: the last one (t = 1) alone
    for (std::size_t i = 0; i < m; ++i)
      ct_butterfly(a[2 * i], a[2 * i + 1], fw[m + i], fwq[m + i], q, two_q);
  }
}

// Stages down to m = 4 (m = 2 is the last one, with N^-1: the caller's); returns its t.
std::size_t inverse_portable(u64* a, std::size_t n, const u64* iw, const u64* iwq, u64 q,
                             bool avx2) {
  const u64 two_q = 2 * q;
  std::size_t m = n, t = 1;
  for (; m > 4; m >>= 2, t <<= 2) {
    if (avx2 && t >= 4) {
      detail::inverse_pair_avx2(a, m, t, iw, iwq, q);
      continue;
    }
    if (avx2 && t == 1 && n % 16 == 0) {
      detail::inverse_first_pair_avx2(a, n, iw, iwq, q);
      continue;
    }
    const std::size_t ha = m / 2, hb = m / 4;
    for (std::size_t i = 0; i < hb; ++i) {
      const u64 wa = iw[ha + 2 * i], waq = iwq[ha + 2 * i];
      const u64 wb = iw[ha + 2 * i + 1], wbq = iwq[ha + 2 * i + 1];
      const u64 w2 = iw[hb + i], w2q = iwq[hb + i];
      u64* x = a + 4 * i * t;
      for (std::size_t j = 0; j < t; ++j) {
        u64 x0 = x[j], x1 = x[j + t], x2 = x[j + 2 * t], x3 = x[j + 3 * t];
        gs_butterfly(x0, x1, wa, waq, q, two_q);
        gs_butterfly(x2, x3, wb, wbq, q, two_q);
        gs_butterfly(x0, x2, w2, w2q, q, two_q);
        gs_butterfly(x1, x3, w2, w2q, q, two_q);
        x[j] = x0;
        x[j + t] = x1;
        x[j + 2 * t] = x2;
        x[j + 3 * t] = x3;
      }
    }
  }
  if (m > 2) {  // m = 4 alone
    for (std::size_t i = 0; i < 2; ++i) {
      u64* x = a + 2 * i * t;
      for (std::size_t j = 0; j < t; ++j)
        gs_butterfly(x[j], x[j + t], iw[2 + i], iwq[2 + i], q, two_q);
    }
    t <<= 1;
  }
  return t;
}
}  // namespace

void NttTables::forward_scalar(u64* a) const {
  const u64 q = mod_.value;
  if (!use_ifma_ && !use_dq_) {
    forward_portable(a, n_, fw_.data(), fw_shoup_.data(), q, use_avx2_);
    return;
  }
  // AVX-512 (n >= 16), stage by stage.
  std::size_t t = n_;
  for (std::size_t m = 1; m < n_; m <<= 1) {
    t >>= 1;
    if (use_ifma_ && t >= 8) {
      detail::forward_stage_ifma(a, m, t, fw_.data() + m, fw52_.data() + m, q);
      continue;
    }
    if (use_dq_ && t >= 8) {
      detail::forward_stage_dq(a, m, t, fw_.data() + m, fw_shoup_.data() + m, q);
      continue;
    }
    if (use_ifma_) {
      detail::forward_small_stage_ifma(a, n_, t, fw_.data() + m, fw52_.data() + m, q);
      continue;
    }
    detail::forward_small_stage_dq(a, n_, t, fw_.data() + m, fw_shoup_.data() + m, q);
  }
}

void NttTables::inverse_scalar(u64* a) const {
  const u64 q = mod_.value, two_q = 2 * q;
  std::size_t t = 1;
  if (!use_ifma_ && !use_dq_)
    t = inverse_portable(a, n_, iw_.data(), iw_shoup_.data(), q, use_avx2_);
  for (std::size_t m = n_ / t; m > 2; m >>= 1) {
    const std::size_t h = m >> 1;
    if (use_ifma_ && t >= 8) {
      detail::inverse_stage_ifma(a, h, t, iw_.data() + h, iw52_.data() + h, q);
      t <<= 1;
      continue;
    }
    if (use_dq_ && t >= 8) {
      detail::inverse_stage_dq(a, h, t, iw_.data() + h, iw_shoup_.data() + h, q);
      t <<= 1;
      continue;
    }
    // The small stages (use_ifma_ or use_dq_ here: the portable path ran above).
    if (use_ifma_) {
      detail::inverse_small_stage_ifma(a, n_, t, iw_.data() + h, iw52_.data() + h, q);
    } else {
      detail::inverse_small_stage_dq(a, n_, t, iw_.data() + h, iw_shoup_.data() + h, q);
    }
    t <<= 1;
  }
  // Last stage (m = 2) with N^-1 merged in.
  if (use_ifma_) {
    detail::inverse_last_stage_ifma(a, t, n_inv_.w, n_inv52_, n_inv_w_.w, n_inv_w52_, q);
    return;
  }
  if (use_dq_) {
    detail::inverse_last_stage_dq(a, t, n_inv_.w, n_inv_.wq, n_inv_w_.w, n_inv_w_.wq, q);
    return;
  }
  u64* x = a;
  u64* y = a + t;
  for (std::size_t j = 0; j < t; ++j) {
    const u64 u = x[j], v = y[j];
    x[j] = mul_shoup_lazy(u + v, n_inv_, q);
    y[j] = mul_shoup_lazy(u - v + two_q, n_inv_w_, q);
  }
}

void NttTables::forward_lazy(u64* a) const { forward_scalar(a); }

void NttTables::forward(u64* a) const {
  forward_lazy(a);
  const u64 q = mod_.value, two_q = 2 * q;
  if (use_avx2_ && n_ % 4 == 0) {
    detail::reduce_avx2(a, n_, q, 2);
    return;
  }
  for (std::size_t j = 0; j < n_; ++j) {
    u64 x = a[j];
    x -= two_q & (0 - static_cast<u64>(x >= two_q));
    a[j] = reduce_once(x, q);
  }
}

void NttTables::inverse_lazy(u64* a) const { inverse_scalar(a); }

void NttTables::inverse(u64* a) const {
  inverse_lazy(a);
  const u64 q = mod_.value;
  if (use_avx2_ && n_ % 4 == 0) {
    detail::reduce_avx2(a, n_, q, 1);
    return;
  }
  for (std::size_t j = 0; j < n_; ++j) a[j] = reduce_once(a[j], q);
}

}  // namespace hetal::ring
