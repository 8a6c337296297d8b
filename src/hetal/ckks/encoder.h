// CKKS encoding through the canonical embedding (Cheon-Kim-Kim-Song, ASIACRYPT 2017, section 3)
// with the "special FFT" over the roots zeta^(5^j): n complex slots (n a power of two up to N/2)
// live in the subring Z[X^(N/2n)] (sparse packing). Constants are encoded without an FFT.
#pragma once

#include <complex>
#include <cstddef>
#include <span>
#include <vector>

#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"

namespace hetal::ckks {

using Complex = std::complex<double>;

/// Residues of round(x) modulo the first nq ciphertext primes (x any finite double).
std::vector<core::u64> round_to_residues(const Context& ctx, double x, std::size_t nq);

/// A plaintext kept as its 2n rounded integer coefficients (n = slots) instead of (level + 1)
/// NTT limbs of N words: 2n words for a full-slot plaintext at any level. Expanded on use.
struct CompactPlaintext {
  std::vector<std::int64_t> coeffs;
  std::size_t level = 0;
  double scale = 1.0;
  std::size_t slots = 0;
  std::size_t bytes() const { return coeffs.size() * sizeof(std::int64_t); }
};

class Encoder {
 public:
  explicit Encoder(const Context& ctx);
  explicit Encoder(Context&&) = delete;  // keeps a reference

  /// Encodes values (padded with zeros to a power of two, at least `min_slots`) at `level` with
  /// `scale`. Throws if a scaled value would not fit the modulus at that level.
  void encode(std::span<const Complex> values, std::size_t level, double scale, Plaintext& out,
              std::size_t min_slots = 1) const;
  void encode(std::span<const double> values, std::size_t level, double scale, Plaintext& out,
              std::size_t min_slots = 1) const;
  Plaintext encode(std::span<const Complex> values, std::size_t level, double scale) const;
  Plaintext encode(std::span<const double> values, std::size_t level, double scale) const;

  /// Compact form of encode(values, level, scale); needs |coefficient| < q0 / 2 (always the
  /// case for values of magnitude ~1 at a scale below q0 / N).
  CompactPlaintext encode_compact(std::span<const Complex> values, std::size_t level,
                                  double scale) const;
  /// The NTT-form plaintext of a compact one (2n residues and one NTT per limb); with_p adds
  /// the special primes' limbs after the Q limbs (a factor of double-hoisted sums over Q_l P).
  void expand(const CompactPlaintext& c, Plaintext& out, bool with_p = false) const;

  /// The same complex constant in every slot: c.re Delta + c.im Delta X^(N/2), no FFT.
  Plaintext encode_constant(Complex c, std::size_t level, double scale, std::size_t slots) const;

  std::vector<Complex> decode(const Plaintext& pt) const;
  std::vector<double> decode_real(const Plaintext& pt) const;

  /// Residues of round(x) modulo the first nq primes (x any finite double).
  std::vector<core::u64> round_to_residues(double x, std::size_t nq) const {
    return ckks::round_to_residues(ctx_, x, nq);
  }

  // The special FFT pair on n = values.size() slots (exposed for tests).
  void fft_special(std::vector<Complex>& v) const;      ///< coefficients -> slots
  void fft_special_inv(std::vector<Complex>& v) const;  ///< slots -> coefficients

 private:
  const Context& ctx_;
  // Garner (mixed-radix) constants: inv_[i][j] = q_j^-1 mod q_i for j < i.
  std::vector<std::vector<core::ShoupConst>> garner_inv_;
};

}  // namespace hetal::ckks
