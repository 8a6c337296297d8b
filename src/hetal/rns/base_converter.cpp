#include "hetal/rns/base_converter.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace hetal::rns {

BaseConverter::BaseConverter(std::vector<core::Modulus> from, std::vector<core::Modulus> to)
    : from_(std::move(from)), to_(std::move(to)) {
  const std::size_t a = from_.size();
  if (a == 0 || a > 15) throw std::invalid_argument("base conversion supports 1..15 source primes");
  qhat_inv_.resize(a);
  for (std::size_t j = 0; j < a; ++j) {
    const core::Modulus& qj = from_[j];
    u64 prod = 1;
    for (std::size_t i = 0; i < a; ++i) {
      if (i != j) prod = qj.mul(prod, qj.reduce(from_[i].value));
    }
    qhat_inv_[j] = core::ShoupConst(qj.inv(prod), qj.value);
  }
  qhat_mod_.resize(to_.size() * a);
  for (std::size_t t = 0; t < to_.size(); ++t) {
    for (std::size_t j = 0; j < a; ++j) {
      u64 prod = 1;
      for (std::size_t i = 0; i < a; ++i) {
        if (i != j) prod = to_[t].mul(prod, to_[t].reduce(from_[i].value));
      }
      qhat_mod_[t * a + j] = prod;
    }
  }
  q_neg_mod_.resize(to_.size() * (a + 1));
  for (std::size_t t = 0; t < to_.size(); ++t) {
    u64 qm = 1;
    for (std::size_t i = 0; i < a; ++i) qm = to_[t].mul(qm, to_[t].reduce(from_[i].value));
    for (std::size_t c = 0; c <= a; ++c)
      q_neg_mod_[t * (a + 1) + c] = to_[t].neg(to_[t].mul(qm, c));
  }
}

void BaseConverter::convert(const u64* const* in, std::size_t n, const std::size_t* targets,
                            std::size_t target_count, u64* const* out) const {
  const std::size_t a = from_.size();
  constexpr std::size_t kBlock = 256;
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel
  {
    alignas(64) u64 y[15][kBlock];
    alignas(64) std::uint8_t neg[kBlock];
#pragma omp for schedule(static)
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t c0 = b * kBlock, len = std::min(kBlock, n - c0);
      for (std::size_t i = 0; i < len; ++i) neg[i] = 0;
      for (std::size_t j = 0; j < a; ++j) {
        const u64 qj = from_[j].value, half = qj >> 1;
        const core::ShoupConst s = qhat_inv_[j];
        const u64* src = in[j] + c0;
        // y_j is used as is; the ones above q_j/2 stand for y_j - q_j, and each such term
        // contributes -q_j (Q/q_j) = -Q, corrected once per target below.
        for (std::size_t i = 0; i < len; ++i) {
          const u64 v = core::mul_shoup(src[i], s, qj);
          y[j][i] = v;
          neg[i] += v > half;
        }
      }
      for (std::size_t k = 0; k < target_count; ++k) {
        const std::size_t t = targets[k];
        const u64* row = &qhat_mod_[t * a];
        const u64* corr = &q_neg_mod_[t * (a + 1)];
        const core::Modulus& mt = to_[t];
        u64* dst = out[k] + c0;
        for (std::size_t i = 0; i < len; ++i) {
          core::u128 acc = corr[neg[i]];
          for (std::size_t j = 0; j < a; ++j) acc += static_cast<core::u128>(y[j][i]) * row[j];
          dst[i] = mt.reduce128(acc);
        }
      }
    }
  }
}

}  // namespace hetal::rns
