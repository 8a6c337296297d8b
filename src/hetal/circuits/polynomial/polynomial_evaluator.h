// Homomorphic polynomial evaluation, level- and scale-aware (after Bossuat et al., EUROCRYPT
// 2021, section 4; Han-Ki, CT-RSA 2020).
//
// The polynomial is split recursively, p = q * T_n + r with n the largest power of two not
// above deg p (Chebyshev: T_{n+j} = 2 T_n T_j - T_{n-j}; monomial: x^{n+j} = x^n x^j), so only
// the giant powers T_{2^k} and the baby powers T_i, i < 2^l, are ever computed (baby-step
// giant-step). The quotient q, which is multiplied again, is always evaluated one level above
// its parent; a remainder becomes a leaf (sum of c_i T_i, one constant multiplication and one
// rescale) as soon as its powers sit high enough, and is split further otherwise. This keeps
// the depth at ceil(log2(deg + 1)) levels, plus one for the change of variable when the
// interval is not [-1, 1].
//
// Scales are planned top-down: every leaf encodes its constants at exactly the scale that makes
// the final result land on the requested scale after its rescales, so no level is spent on
// scale matching. Powers are computed lazily, so odd or even polynomials only build the powers
// they use.
#pragma once

#include <atomic>
#include <cstddef>
#include <map>
#include <vector>

#include "hetal/circuits/polynomial/polynomial.h"
#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/rlwe/keys.h"

namespace hetal::circuits {

class PolynomialEvaluator {
 public:
  PolynomialEvaluator(const ckks::Context& ctx, const ckks::Evaluator& ev,
                      const rlwe::RelinKey& rlk);
  // Keeps references: temporaries would dangle.
  PolynomialEvaluator(const ckks::Context&, const ckks::Evaluator&, rlwe::RelinKey&&) = delete;

  /// p(x) slot-wise. The output scale is target_scale (0: the input's scale) and the output
  /// level is input level - depth(p). Throws if the input has too few levels.
  ckks::Ciphertext evaluate(const ckks::Ciphertext& x, const Polynomial& p,
                            double target_scale = 0) const;

  /// Levels consumed by evaluate().
  static std::size_t depth(const Polynomial& p);

  /// Number of ciphertext x ciphertext multiplications of the last evaluate() (for tests and
  /// benchmarks: baby-step giant-step needs about 2 sqrt(deg) + log2(deg)).
  std::size_t last_multiplications() const { return mults_; }

 private:
  struct State;
  ckks::Ciphertext power(State& s, std::size_t i) const;
  ckks::Ciphertext eval(State& s, const std::vector<double>& c, std::size_t level,
                        double scale) const;
  ckks::Ciphertext leaf(State& s, const std::vector<double>& c, std::size_t level,
                        double scale) const;

  const ckks::Context& ctx_;
  const ckks::Evaluator& ev_;
  const rlwe::RelinKey& rlk_;
  mutable std::atomic<std::size_t> mults_ = 0;  // evaluate() may run on several threads
};

}  // namespace hetal::circuits
