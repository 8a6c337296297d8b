// EvalMod ("mod 1") for bootstrapping (Cheon et al. EUROCRYPT 2018; Han-Ki CT-RSA 2020):
// for slot values x = I + e with I an integer, |I| <= K, and small e, computes
//   sin(2 pi x) ~ 2 pi e
// as cos(2 pi (x - 1/4) / 2^r) by a Chebyshev interpolant on [-K-1, K+1] (scaled to [-1, 1]),
// followed by r double-angle steps cos(2t) = 2 cos(t)^2 - 1. The error of the approximation
// sin(2 pi e)/(2 pi) - e ~ -(2 pi)^2 e^3 / 6 is what bounds the message-to-q0 ratio.
//
// The interpolant's error at x = I is the same function of I in every coefficient, so its
// mean over I's distribution is a constant added to every coefficient; SlotsToCoeffs sends a
// constant coefficient vector almost entirely to the first slots (sum_j zeta^j = 2 / (1 - zeta),
// ~2N/pi, against ~sqrt(N) for the zero-mean rest): uncorrected, the worst slot at N = 2^16 is
// 7 bits below the mean. The mean is computed in plain and subtracted.
#pragma once

#include <cstddef>

#include "hetal/circuits/polynomial/polynomial_evaluator.h"

namespace hetal::circuits {

struct Mod1Parameters {
  /// Bound on |I|. With the ephemeral h = 32 key, I is a sum of 33 bounded terms of variance
  /// 2.75 (sigma 1.66); the interpolant covers |x| <= K + 1 = 13, so |I| >= 14 (8.1 sigma,
  /// ~2^-51 per coefficient by the Gaussian tail, ~2^-35 per N = 2^16 bootstrap) is the failure
  /// event. K = 16 (Lattigo's choice) costs ~7 bits of precision with a plain Chebyshev
  /// interpolant.
  std::size_t k = 12;
  std::size_t double_angle = 3;  ///< r
  std::size_t degree = 31;       ///< Chebyshev degree of the cosine interpolant (depth 5)
  /// I is a sum of this many independent terms uniform on [-1/2, 1/2]: h + 1 for a secret of
  /// Hamming weight h (the bootstrapper sets it from its key). The approximation's mean error
  /// at the integers under that distribution is subtracted from the output (0: it is not).
  std::size_t i_terms = 33;
};

class Mod1Evaluator {
 public:
  Mod1Evaluator(const ckks::Context& ctx, const ckks::Evaluator& ev, const rlwe::RelinKey& rlk,
                Mod1Parameters params);

  /// Input slots hold t = x / (K + 1) in [-1, 1] (the caller folds 1/(K+1) into the linear
  /// transform before); output slots hold sin(2 pi x) ~ 2 pi e (the caller folds 1/(2 pi) into
  /// the linear transform after). Consumes depth() levels. The output lands exactly on
  /// output_scale (0: whatever the double angles make of the input's scale): the cosine's
  /// target scale is solved backwards through the double angles, S_i = sqrt(S_{i+1} q_i).
  ckks::Ciphertext evaluate(const ckks::Ciphertext& t, double output_scale = 0) const;
  std::size_t depth() const;
  const Polynomial& cosine() const { return cos_; }
  /// The approximation of sin(2 pi x) in plain (interpolant and double angles), and its mean
  /// at x = I under I's distribution: the constant evaluate() subtracts.
  double approximation(double x) const;
  double bias() const { return bias_; }

 private:
  const ckks::Context& ctx_;
  const ckks::Evaluator& ev_;
  const rlwe::RelinKey& rlk_;
  Mod1Parameters p_;
  Polynomial cos_;
  double bias_ = 0;
  PolynomialEvaluator pe_;
};

}  // namespace hetal::circuits
