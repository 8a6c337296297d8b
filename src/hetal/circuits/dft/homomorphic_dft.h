// Homomorphic encoding and decoding: the CKKS special FFT evaluated on slots, factorised into a
// few sparse linear transforms (Chen-Chillotti-Song, EUROCRYPT 2019; Han-Hhan-Cheon 2018/1073;
// Bossuat et al. 2021). Every butterfly stage of the encoder's FFT is a matrix with three
// generalized diagonals (offsets 0 and +-len/2); consecutive stages are multiplied together
// into `levels` groups, each applied as one LinearTransform (one level). The bit reversal of
// the FFT is left out: CoeffsToSlots leaves the coefficient-side vector in bit-reversed slot
// order and SlotsToCoeffs takes it in that order, which slot-wise steps in between (EvalMod of
// bootstrapping) do not mind.
//
//   coeffs_to_slots: slots z -> bitrev(u) * factor, u = the encoder's coefficient vector
//                    (u_k = c_k + i c_{k+n} for the n-slot subring polynomial, divided by the
//                    scale)
//   slots_to_coeffs: bitrev(u) -> z * factor, the inverse map.
#pragma once

#include <complex>
#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include "hetal/circuits/lintrans/linear_transform.h"

namespace hetal::circuits {

enum class DftKind { coeffs_to_slots, slots_to_coeffs };

using Diagonals = std::map<long long, std::vector<Complex>>;

/// The factorised special FFT: `levels` sparse matrices in application order (the scalar factor
/// spread evenly over them). levels must be in 1..log2(slots).
std::vector<Diagonals> factor_special_fft(const ckks::Context& ctx, std::size_t slots, DftKind kind,
                                          std::size_t levels, Complex factor = 1.0);

/// Product A * B of two diagonal-form matrices (B applied first).
Diagonals multiply_diagonals(const Diagonals& a, const Diagonals& b, std::size_t slots);

class HomomorphicDft {
 public:
  /// Consumes `levels` levels starting from ciphertexts at `level`. The output scale is the
  /// input's times `scale_ratio` (1 keeps it), spread evenly over the stages.
  HomomorphicDft(const ckks::Context& ctx, const ckks::Encoder& enc, std::size_t slots,
                 DftKind kind, std::size_t levels, std::size_t level, Complex factor = 1.0,
                 double scale_ratio = 1.0, bool compact = false, bool double_hoist = true);

  std::vector<long long> rotations() const;
  /// Each rotation step with the highest level it is applied at (the level its key must cover).
  std::map<long long, std::size_t> rotation_levels() const;
  ckks::Ciphertext apply(const ckks::Evaluator& ev, const ckks::Ciphertext& x,
                         const rlwe::GaloisKeys& gk) const;
  std::size_t levels() const { return stages_.size(); }
  /// Bytes held by the encoded diagonals of every stage.
  std::size_t bytes() const;

 private:
  std::vector<std::unique_ptr<LinearTransform>> stages_;
};

}  // namespace hetal::circuits
