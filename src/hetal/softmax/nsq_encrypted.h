// Encrypted softmax by normalize-and-square (softmax/nsq.h), on logits in DiagABT's output
// layout (matrix::Packing::tiled_cols: each block row holds its c_pad classes, repeated) with
// the probabilities returned in the same layout, on the default scale (what DiagATB takes for
// P - Y). Row sums are rotation sums over c_pad slots (valid at each block row's first slot)
// broadcast over the row by one mask (one level) and rotations.
//
// Bootstrapping (a real pair per call: two real ciphertexts share one complex bootstrap) is
// placed where it costs the least precision: the normalised logits at the start (as the
// tournament pipeline does) and then only values that are already normalised. The first two
// rounds' values a_0 = e^z and a_1 are never bootstrapped (their row maximum can be small, and
// each later squaring doubles a relative error): while they wait, the per-row sums and their
// inverses' inputs are refreshed instead. Every step checks its levels and refreshes the live
// pair when short, so the same code serves logits at any level and any output level asked for.
#pragma once

#include <cstddef>
#include <vector>

#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/circuits/polynomial/polynomial_evaluator.h"
#include "hetal/matrix/layout.h"
#include "hetal/softmax/encrypted.h"
#include "hetal/softmax/nsq.h"

namespace hetal::softmax {

class NsqSoftmax {
 public:
  NsqSoftmax(const ckks::Context& ctx, const ckks::Encoder& enc, const ckks::Evaluator& ev,
             const rlwe::RelinKey& rlk, std::size_t classes, matrix::BlockShape block,
             const NsqParams& params = {});
  NsqSoftmax(const ckks::Context&, const ckks::Encoder&, const ckks::Evaluator&, rlwe::RelinKey&&,
             std::size_t, matrix::BlockShape, const NsqParams& = {}) = delete;

  /// Bootstrapping for the steps that run out of levels (null: throw instead).
  void set_bootstrapper(const circuits::Bootstrapper* boot, const circuits::BootstrapKeys* keys) {
    boot_ = boot;
    boot_keys_ = keys;
  }
  /// The output keeps at least this many levels (training needs some after the softmax).
  void set_min_output_level(std::size_t level) { min_output_level_ = level; }

  /// Rotation steps the Galois keys must cover (the same as the tournament pipeline's).
  std::vector<long long> rotations() const;
  /// Levels the whole pipeline consumes without bootstrapping (its critical path).
  std::size_t depth() const;
  const NsqPolynomials& polynomials() const { return polys_; }

  /// Logits (original units, any scale) -> probabilities on the default scale.
  ckks::Ciphertext apply(const ckks::Ciphertext& x, const rlwe::GaloisKeys& gk,
                         SoftmaxStats* stats = nullptr) const;

 private:
  ckks::Ciphertext shifted_input(const ckks::Ciphertext& x, const rlwe::GaloisKeys& gk) const;
  ckks::Ciphertext row_total(const ckks::Ciphertext& u, double factor, double target_scale,
                             const rlwe::GaloisKeys& gk) const;
  ckks::Ciphertext row_copy(const ckks::Ciphertext& z, double factor, double target_scale,
                            const rlwe::GaloisKeys& gk) const;
  ckks::Ciphertext square(const ckks::Ciphertext& a) const;
  ckks::Ciphertext multiply(const ckks::Ciphertext& a, const ckks::Ciphertext& b) const;
  void refresh_pair(ckks::Ciphertext& a, ckks::Ciphertext& b, SoftmaxStats& st,
                    double output_scale = 0) const;
  void refresh_pair_values(ckks::Ciphertext& a, ckks::Ciphertext& y, SoftmaxStats& st) const;
  double q(std::size_t level) const;

  const ckks::Context& ctx_;
  const ckks::Encoder& enc_;
  const ckks::Evaluator& ev_;
  const rlwe::RelinKey& rlk_;
  circuits::PolynomialEvaluator pe_;
  std::size_t c_, c_pad_;
  matrix::BlockShape block_;
  NsqPolynomials polys_;
  const circuits::Bootstrapper* boot_ = nullptr;
  const circuits::BootstrapKeys* boot_keys_ = nullptr;
  std::size_t min_output_level_ = 0;
};

}  // namespace hetal::softmax
