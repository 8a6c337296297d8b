// Negacyclic NTT over Z_q[X]/(X^N + 1) with the 2N-th root twist merged into the twiddles
// (Longa-Naehrig, CANS 2016) and Harvey's lazy butterflies with Shoup multiplication
// (Harvey 2014). Forward: Cooley-Tukey, natural order in, bit-reversed order out, so that
// out[k] = a(psi^(2*bitrev(k)+1)). Inverse: Gentleman-Sande, N^-1 merged into the last stage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hetal/core/memory.h"
#include "hetal/core/modarith.h"

namespace hetal::ring {

using core::u64;

class NttTables {
 public:
  NttTables(u64 q, int log_n);

  /// In place; input any values < 4q, output in [0, 4q).
  void forward_lazy(u64* a) const;
  /// In place; input < 4q, output in [0, q).
  void forward(u64* a) const;
  /// In place; input < 2q, output in [0, 2q).
  void inverse_lazy(u64* a) const;
  /// In place; input < 2q, output in [0, q).
  void inverse(u64* a) const;

  const core::Modulus& modulus() const { return mod_; }
  u64 q() const { return mod_.value; }
  int log_n() const { return log_n_; }
  std::size_t n() const { return n_; }
  u64 psi() const { return psi_; }
  /// Whether this prime runs the AVX-512 IFMA kernels.
  bool uses_ifma() const { return use_ifma_; }

 private:
  void forward_scalar(u64* a) const;
  void inverse_scalar(u64* a) const;
  core::Modulus mod_;
  int log_n_;
  std::size_t n_;
  u64 psi_;
  core::WordVector fw_, fw_shoup_;  // psi^bitrev(k)
  core::WordVector iw_, iw_shoup_;  // psi^-bitrev(k)
  core::ShoupConst n_inv_, n_inv_w_;
  // AVX-512 IFMA path (q < 2^50): 52-bit Shoup quotients of the same twiddles.
  bool use_ifma_ = false;
  bool use_dq_ = false;    // AVX-512DQ 64-bit path for the larger primes
  bool use_avx2_ = false;  // AVX2 pairs of stages on the portable path (ntt_avx2.h)
  core::WordVector fw52_, iw52_;
  u64 n_inv52_ = 0, n_inv_w52_ = 0;
};

/// Bit reversal of the low `bits` bits.
inline std::uint32_t bit_reverse(std::uint32_t x, int bits) {
  std::uint32_t r = 0;
  for (int i = 0; i < bits; ++i) {
    r = (r << 1) | (x & 1);
    x >>= 1;
  }
  return r;
}

}  // namespace hetal::ring
