// Encrypted softmax (our pipeline of softmax/plain.h) on logits in DiagABT's output layout: a
// batch x c block, each row's c_pad entries repeated s1 / c_pad times across the block row
// (matrix::Packing::tiled_cols). The output probabilities come back in the same layout, which
// is what DiagATB takes for P - Y, so the training loop closes.
//
// Row operations (tournament max, row sum) rotate left by 1, 2, .., c_pad / 2: a block row's
// first slot then covers exactly its own c_pad classes (other slots reach into the next row and
// are discarded), and its value is broadcast over the row (one mask, one level). Any number of
// copies works, one included.
//
// Every piece lands on the default scale, so bootstrapping can refresh any intermediate; all
// bootstrapped values lie in [-2, 2] (normalised logits, comparison signs, exp / c_pad, row
// sums / c_pad, Goldschmidt's N and D). The logits themselves are never bootstrapped when they
// arrive at level >= 9: exp takes x - shift from the input, so bootstrapping errors only touch
// the shift, which softmax ignores.
#pragma once

#include <cstddef>
#include <vector>

#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/circuits/polynomial/polynomial_evaluator.h"
#include "hetal/matrix/layout.h"
#include "hetal/softmax/plain.h"

namespace hetal::softmax {

struct SoftmaxStats {
  std::size_t bootstraps = 0;
};

class EncryptedSoftmax {
 public:
  EncryptedSoftmax(const ckks::Context& ctx, const ckks::Encoder& enc, const ckks::Evaluator& ev,
                   const rlwe::RelinKey& rlk, std::size_t classes, matrix::BlockShape block,
                   OursParams params = {});
  EncryptedSoftmax(const ckks::Context&, const ckks::Encoder&, const ckks::Evaluator&,
                   rlwe::RelinKey&&, std::size_t, matrix::BlockShape, OursParams = {}) = delete;

  /// Bootstrapping for the pieces that run out of levels (null: throw instead).
  void set_bootstrapper(const circuits::Bootstrapper* boot, const circuits::BootstrapKeys* keys) {
    boot_ = boot;
    boot_keys_ = keys;
  }

  /// The output keeps at least this many levels when bootstrapping can arrange it (training
  /// needs levels after the softmax for P - Y, DiagATB and the update).
  void set_min_output_level(std::size_t level) { min_output_level_ = level; }

  /// Throws std::invalid_argument unless the block fills a power-of-two slot count and its rows
  /// hold whole copies of the padded classes (both pipelines).
  static void check_block(const ckks::Context& ctx, matrix::BlockShape block, std::size_t classes);
  /// Rotation steps the Galois keys must cover.
  std::vector<long long> rotations() const;
  /// The same without an instance (key generation on the client).
  static std::vector<long long> rotations_for(std::size_t classes, matrix::BlockShape block);
  /// Levels the whole pipeline consumes without bootstrapping (the depth).
  std::size_t depth() const;
  const OursPolynomials& polynomials() const { return polys_; }

  /// Whole pipeline: logits (original units, default scale) -> probabilities.
  ckks::Ciphertext apply(const ckks::Ciphertext& x, const rlwe::GaloisKeys& gk,
                         SoftmaxStats* stats = nullptr) const;

  // The pieces, each against its plain counterpart in the tests.
  /// x / (2R) on the real classes, -1/2 on the padded ones (1 level).
  ckks::Ciphertext normalize(const ckks::Ciphertext& x) const;
  /// Tournament max of normalised values (3 (dg + df) + 1 levels per round); the value at each
  /// row's first slot is the shift.
  ckks::Ciphertext row_max(const ckks::Ciphertext& u, const rlwe::GaloisKeys& gk,
                           SoftmaxStats& st) const;
  /// e^(x - 2R m - margin) with m broadcast from each row's first slot, 0 on padded classes
  /// (1 + 1 + exp depth levels).
  ckks::Ciphertext exp_shifted(const ckks::Ciphertext& x, const ckks::Ciphertext& m,
                               const rlwe::GaloisKeys& gk, SoftmaxStats& st) const;
  /// Row sums / c_pad, broadcast over each row (1 level).
  ckks::Ciphertext row_sum(const ckks::Ciphertext& e, const rlwe::GaloisKeys& gk,
                           SoftmaxStats& st) const;
  /// e / z by Goldschmidt (iterations + 2 levels).
  ckks::Ciphertext divide(const ckks::Ciphertext& e, const ckks::Ciphertext& z,
                          SoftmaxStats& st) const;

 private:
  ckks::Ciphertext refresh(const ckks::Ciphertext& c, std::size_t need, SoftmaxStats& st) const;
  ckks::Ciphertext broadcast(const ckks::Ciphertext& c, const rlwe::GaloisKeys& gk,
                             SoftmaxStats& st, double factor = 1.0) const;
  ckks::Ciphertext max_round(const ckks::Ciphertext& m, long long step, const rlwe::GaloisKeys& gk,
                             SoftmaxStats& st) const;
  ckks::Plaintext plain(const std::vector<double>& v, std::size_t level, double scale) const;

  const ckks::Context& ctx_;
  const ckks::Encoder& enc_;
  const ckks::Evaluator& ev_;
  const rlwe::RelinKey& rlk_;
  circuits::PolynomialEvaluator pe_;
  std::size_t c_, c_pad_;
  matrix::BlockShape block_;
  OursParams p_;
  OursPolynomials polys_;
  circuits::Polynomial exp_unit_;  // polys_.exp on [-1, 1] (the change of variable is masked)
  std::vector<double> real_mask_;
  const circuits::Bootstrapper* boot_ = nullptr;
  const circuits::BootstrapKeys* boot_keys_ = nullptr;
  std::size_t min_output_level_ = 0;
};

/// Each block row's first slot times `factor`, in every slot of its row: one mask (one level,
/// landing on target_scale) and rotations. The first slot is the only one whose rotations by
/// 1 .. c_pad - 1 stay inside its row; one value per row also gives every slot of a row the
/// same noise (per-slot differences in a shift or a divisor would not cancel). Both pipelines.
ckks::Ciphertext copy_first_slot(const ckks::Context& ctx, const ckks::Encoder& enc,
                                 const ckks::Evaluator& ev, matrix::BlockShape block,
                                 const ckks::Ciphertext& z, double factor, double target_scale,
                                 const rlwe::GaloisKeys& gk);
/// The scale at which `steps` Goldschmidt steps (each s -> s^2 / q_level) starting at `level`
/// end exactly on the default scale.
double goldschmidt_start_scale(const ckks::Context& ctx, std::size_t level, int steps);

/// HETAL's own pieces on ciphertexts (its pipeline, for comparison: ours does without them).
/// Domain extension of u = (x - max) / scale, each step a polynomial of softmax/plain.h (2
/// levels per step, 3 for the precise correction); bootstraps when a step runs out of levels
/// and `boot` is given (u stays in [-1, 0] for scale = 2 R_max, so it bootstraps precisely).
ckks::Ciphertext hetal_domain_extension(const circuits::PolynomialEvaluator& pe,
                                        const ckks::Ciphertext& u, const HetalParams& p,
                                        double scale, const circuits::Bootstrapper* boot = nullptr,
                                        const circuits::BootstrapKeys* keys = nullptr,
                                        SoftmaxStats* stats = nullptr);
/// HETAL's exp: v = x / 8 in [-1, 0] -> p(v)^8 = e^x (4 + 3 levels).
ckks::Ciphertext hetal_exp(const circuits::PolynomialEvaluator& pe, const ckks::Evaluator& ev,
                           const rlwe::RelinKey& rlk, const ckks::Ciphertext& v);

}  // namespace hetal::softmax
