// Plaintext-matrix x ciphertext products by generalized diagonals with the baby-step
// giant-step split and hoisted baby rotations (Halevi-Shoup, CRYPTO 2014 and 2018; Bossuat et
// al., EUROCRYPT 2021, section 3). For an n-slot matrix M with diagonals
// d_k[i] = M[i][(i + k) mod n],
//   M x = sum_k d_k . rot(x, k) = sum_j rot( sum_i rot(d_{n1 j + i}, -n1 j) . rot(x, i), n1 j ),
// so one hoisted decomposition serves the n1 baby rotations, and only n2 = ceil(n / n1) giant
// rotations remain. Double hoisting (section 3.3 there) keeps the rotations over Q_l P and
// divides by P once per giant step and once at the end. The diagonals are encoded once,
// pre-rotated, at the level where they are consumed and at the scale of that level's prime, so the
// output keeps the input's scale after its single rescale.
#pragma once

#include <complex>
#include <cstddef>
#include <map>
#include <vector>

#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/evaluator.h"

namespace hetal::circuits {

using Complex = std::complex<double>;

class LinearTransform {
 public:
  /// diagonals: index k in [0, slots) -> the slots values of d_k (missing diagonals are zero).
  /// level: the level of the input ciphertexts. n1: baby steps (0 picks ~sqrt of the span).
  /// scale_ratio: output scale / input scale (1 keeps the scale; the diagonals are encoded at
  /// q_level * scale_ratio). compact: keep the diagonals as integer coefficients (2 * slots
  /// words each instead of (level + 1) * N) and run their NTTs at every apply().
  /// double_hoist: keep the baby rotations and the giant steps' key switches over Q_l P and
  /// divide by P once per giant step and once at the end (Bossuat et al., EUROCRYPT 2021,
  /// section 3.3); false: every rotation is brought back to Q_l at once (single hoisting).
  LinearTransform(const ckks::Context& ctx, const ckks::Encoder& enc,
                  const std::map<long long, std::vector<Complex>>& diagonals, std::size_t slots,
                  std::size_t level, std::size_t n1 = 0, double scale_ratio = 1.0,
                  bool compact = false, bool double_hoist = true);

  /// Diagonals of a dense slots x slots matrix given row-major.
  static std::map<long long, std::vector<Complex>> diagonals_of(const std::vector<Complex>& m,
                                                                std::size_t slots);

  /// Rotation steps whose Galois keys apply() needs.
  std::vector<long long> rotations() const;
  /// M x (one level consumed; the input's scale is kept).
  ckks::Ciphertext apply(const ckks::Evaluator& ev, const ckks::Ciphertext& x,
                         const rlwe::GaloisKeys& gk) const;

  std::size_t baby_steps() const { return n1_; }
  /// Bytes held by the encoded diagonals.
  std::size_t bytes() const;
  std::size_t level() const { return level_; }
  bool double_hoisted() const { return double_hoist_; }

 private:
  ckks::Ciphertext apply_single(const ckks::Evaluator& ev, const ckks::Ciphertext& in,
                                const rlwe::GaloisKeys& gk) const;
  ckks::Ciphertext apply_double(const ckks::Evaluator& ev, const ckks::Ciphertext& in,
                                const rlwe::GaloisKeys& gk) const;
  /// Each giant step's inner sum (mul_sum over its babies and diagonals), rotated by its shift.
  template <class Ct, class MulSum, class Rotate>
  std::vector<Ct> giant_steps(const std::map<long long, const Ct*>& baby, MulSum&& mul_sum,
                              Rotate&& rotate) const;
  /// Baby indices other than 0, ascending.
  std::vector<long long> baby_indices() const;
  /// The plaintext of diagonal (shift, i): the stored one, or `scratch` expanded from it.
  const ckks::Plaintext& diagonal(long long shift, long long i, ckks::Plaintext& scratch) const;

  const ckks::Encoder& enc_;
  std::size_t slots_, level_, n1_;
  double scale_ratio_ = 1.0;
  bool double_hoist_ = true;
  // giant shift -> baby indices (ascending), and the pre-rotated diagonals in NTT form (with the
  // P limbs when double hoisting) or compact
  std::map<long long, std::vector<long long>> layout_;
  std::map<long long, std::map<long long, ckks::Plaintext>> plain_;
  std::map<long long, std::map<long long, ckks::CompactPlaintext>> compact_;
};

}  // namespace hetal::circuits
