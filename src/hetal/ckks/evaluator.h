// Homomorphic operations on CKKS ciphertexts. Keys are explicit arguments (no hidden state);
// every operation has an in-place form and a copying form. Binary operations align levels by
// dropping the higher operand (free in the NTT domain); scales must match (see match_scale).
#pragma once

#include <complex>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <vector>

#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"
#include "hetal/rlwe/keys.h"
#include "hetal/rlwe/keyswitch.h"

namespace hetal::ckks {

using Complex = std::complex<double>;

class Evaluator {
 public:
  explicit Evaluator(const Context& ctx);
  explicit Evaluator(Context&&) = delete;  // keeps a reference

  // --- addition family ---
  void add_inplace(Ciphertext& a, const Ciphertext& b) const;
  Ciphertext add(const Ciphertext& a, const Ciphertext& b) const;
  void sub_inplace(Ciphertext& a, const Ciphertext& b) const;
  Ciphertext sub(const Ciphertext& a, const Ciphertext& b) const;
  void negate_inplace(Ciphertext& a) const;
  Ciphertext negate(const Ciphertext& a) const;
  void add_plain_inplace(Ciphertext& a, const Plaintext& p) const;
  Ciphertext add_plain(const Ciphertext& a, const Plaintext& p) const;
  void sub_plain_inplace(Ciphertext& a, const Plaintext& p) const;
  Ciphertext sub_plain(const Ciphertext& a, const Plaintext& p) const;
  /// Adds a constant (real or complex) to every slot, encoded at the ciphertext's scale.
  void add_const_inplace(Ciphertext& a, Complex c) const;
  Ciphertext add_const(const Ciphertext& a, Complex c) const;

  // --- multiplication family ---
  /// Tensor product: a size-3 ciphertext (relinearize afterwards).
  void multiply_inplace(Ciphertext& a, const Ciphertext& b) const;
  Ciphertext multiply(const Ciphertext& a, const Ciphertext& b) const;
  void square_inplace(Ciphertext& a) const;
  Ciphertext square(const Ciphertext& a) const;
  void relinearize_inplace(Ciphertext& a, const rlwe::RelinKey& rlk) const;
  Ciphertext relinearize(const Ciphertext& a, const rlwe::RelinKey& rlk) const;
  /// multiply + relinearize.
  void multiply_relin_inplace(Ciphertext& a, const Ciphertext& b, const rlwe::RelinKey& rlk) const;
  Ciphertext multiply_relin(const Ciphertext& a, const Ciphertext& b,
                            const rlwe::RelinKey& rlk) const;
  void multiply_plain_inplace(Ciphertext& a, const Plaintext& p) const;
  Ciphertext multiply_plain(const Ciphertext& a, const Plaintext& p) const;
  /// sum_i cts[i] * pts[i] in one pass with lazy 128-bit accumulation (the inner sums of a
  /// baby-step giant-step linear transform). All ciphertexts share level, slots and size; every
  /// product must have the same scale.
  Ciphertext multiply_plain_sum(std::span<const Ciphertext* const> cts,
                                std::span<const Plaintext* const> pts) const;
  /// Multiplies by a constant encoded at `const_scale` (default: the ciphertext's last prime, so
  /// that a following rescale restores the scale exactly). The result's scale is
  /// a.scale * const_scale.
  void multiply_const_inplace(Ciphertext& a, Complex c, double const_scale = 0) const;
  Ciphertext multiply_const(const Ciphertext& a, Complex c, double const_scale = 0) const;
  /// Multiplies by an integer: no scale change, no level.
  void multiply_integer_inplace(Ciphertext& a, std::int64_t k) const;
  /// Multiplies every slot by i: a monomial X^(N/2), exact, no level.
  void multiply_by_i_inplace(Ciphertext& a) const;
  Ciphertext multiply_by_i(const Ciphertext& a) const;

  // --- levels and scales ---
  void rescale_inplace(Ciphertext& a) const;
  Ciphertext rescale(const Ciphertext& a) const;
  void drop_to_level_inplace(Ciphertext& a, std::size_t level) const;
  Ciphertext drop_to_level(const Ciphertext& a, std::size_t level) const;
  /// Drops the higher of the two to the lower level.
  void align_levels_inplace(Ciphertext& a, Ciphertext& b) const;
  /// Brings a to exactly `scale` by a constant multiplication and a rescale (one level).
  void match_scale_inplace(Ciphertext& a, double scale) const;

  // --- rotations ---
  /// Left rotation by k slots (negative: right). Uses the key for k if present, otherwise
  /// composes power-of-two rotations.
  void rotate_inplace(Ciphertext& a, long long k, const rlwe::GaloisKeys& gk) const;
  Ciphertext rotate(const Ciphertext& a, long long k, const rlwe::GaloisKeys& gk) const;
  void conjugate_inplace(Ciphertext& a, const rlwe::GaloisKeys& gk) const;
  Ciphertext conjugate(const Ciphertext& a, const rlwe::GaloisKeys& gk) const;
  /// X -> X^galois with its key.
  void apply_galois_inplace(Ciphertext& a, std::uint64_t galois, const rlwe::GaloisKeys& gk) const;

  /// Hoisting (Halevi-Shoup): decompose c1 once ...
  rlwe::Decomposition hoist(const Ciphertext& a) const;
  /// ... then each rotation costs only an inner product and a ModDown.
  Ciphertext rotate_hoisted(const Ciphertext& a, const rlwe::Decomposition& dec, long long k,
                            const rlwe::GaloisKeys& gk) const;
  std::vector<Ciphertext> rotate_hoisted(const Ciphertext& a, std::span<const long long> steps,
                                         const rlwe::GaloisKeys& gk) const;

  // --- double hoisting (Bossuat et al., EUROCRYPT 2021, section 3.3): rotations kept over
  // Q_l P, multiplied by P, so that sums of them pay one ModDown ---
  /// P a over Q_l P (exact).
  CiphertextQP lift_qp(const Ciphertext& a) const;
  /// P rot(a, k) over Q_l P from a's hoisted decomposition: an inner product, no ModDown.
  CiphertextQP rotate_hoisted_qp(const Ciphertext& a, const rlwe::Decomposition& dec, long long k,
                                 const rlwe::GaloisKeys& gk) const;
  /// sum_i xs[i] * pts[i] over Q_l P; every plaintext has exactly the ciphertexts' Q limbs and
  /// the P limbs (Encoder::expand with P).
  CiphertextQP multiply_plain_sum_qp(std::span<const CiphertextQP* const> xs,
                                     std::span<const Plaintext* const> pts) const;
  /// x <- P rot(x / P, k): ModDown of c1 alone, whose key switch stays over Q_l P; c0 is only
  /// permuted. Needs the key for k itself (no composition).
  void rotate_qp_inplace(CiphertextQP& x, long long k, const rlwe::GaloisKeys& gk) const;
  void add_qp_inplace(CiphertextQP& a, const CiphertextQP& b) const;
  /// round(x / P): the ciphertext over Q_l (consumes x).
  Ciphertext mod_down(CiphertextQP&& x) const;

  /// a <- sum_{j < count} rot(a, j * step), count a power of two: log2(count) rotations.
  void rotate_sum_inplace(Ciphertext& a, std::size_t count, long long step,
                          const rlwe::GaloisKeys& gk) const;

  const Context& context() const { return ctx_; }

 private:
  void check(const Ciphertext& a) const;
  void binary_prepare(Ciphertext& a, const Ciphertext& b, std::size_t& nq) const;
  void add_sub_inplace(Ciphertext& a, const Ciphertext& b, bool subtract) const;
  std::uint64_t resolve_galois(std::size_t slots, long long k, const rlwe::GaloisKeys& gk,
                               std::vector<std::uint64_t>& chain) const;
  const std::vector<std::uint32_t>& galois_map(std::uint64_t galois) const;
  /// The Galois element that rotates a's slots by k with one key (1: no rotation).
  std::uint64_t single_key_galois(std::size_t slots, long long k, const rlwe::GaloisKeys& gk,
                                  const char* what) const;
  void apply_galois_hoisted(const Ciphertext& a, const rlwe::Decomposition& dec,
                            std::uint64_t galois, const rlwe::GaloisKeys& gk,
                            Ciphertext& out) const;

  const Context& ctx_;
  mutable std::mutex map_mutex_;
  mutable std::map<std::uint64_t, std::vector<std::uint32_t>> maps_;
};

}  // namespace hetal::ckks
