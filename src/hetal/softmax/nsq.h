// Softmax by normalize-and-square, without a row max (Cho, Hanrot, Kim, Park, Stehle, "Fast and
// Accurate Homomorphic Softmax Evaluation", CCS 2024): softmax(x) is the row-normalised
// (e^z)^(2^k) with z = (x - mean) / 2^k, and each of the k squarings is followed by a division
// by the row's sum so that the values stay in [0, 1]:
//
//   v   = e^(z - z_hi)                      one Chebyshev polynomial (z in [z_lo, z_hi])
//   a_0 = v,  S_0 = sum v^2
//   a_{t+1} = a_t^2 P_t(S_t),  S_{t+1} = P_t^2 sum a_t^4        t = 0 .. k-2
//   p   = a^2 P_f(S) refined by Goldschmidt steps (N = a^2 P_f, D = S P_f, F = 2 - D)
//
// P_t ~ 1/S on a range fitted to what the previous step guarantees. The intermediate divisions
// need not be accurate: a common factor of a row cancels in the next normalisation, so they
// only keep the sums near 1; the last one is made exact by Goldschmidt. S_{t+1} is computed
// from S_t's inverse and the sum of fourth powers, in parallel with the values, so a round
// costs deg(P_t)'s depth + 2 levels. Subtracting the row mean (a rotation sum, no level of its
// own) bounds the first sum by Jensen (sum e^(2z) >= c), which keeps its range narrow enough
// for one degree-15 inverse. Padded classes are placed just below the range's lowest logit,
// so they vanish like e^(-gap) per class and unit of x.
//
// This file: the polynomials and the plain (double) reference that the encrypted path
// (softmax/nsq_encrypted.h) follows operation by operation.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "hetal/circuits/polynomial/polynomial.h"

namespace hetal::softmax {

struct NsqParams {
  double r_max = 128;  ///< input range [-R, R]
  int squarings = 6;   ///< k: z = (x - mean) / 2^k
  std::size_t exp_degree = 15;
  /// Degrees of P_0 .. P_{k-2}: the first covers the widest range (Jensen to the worst row).
  /// Empty: 15, 7, 7, 3, 3 (the degree-3 rounds fit a training step's level schedule,
  /// docs/benchmarks.md), a degree-3 round raised to 7 where its error would exceed 0.4
  /// (more classes: c = 16).
  std::vector<std::size_t> round_degrees;
  /// Degree of the last division (refined by Goldschmidt steps: 4 at c = 10).
  std::size_t final_degree = 7;
  double pad_gap = 32;         ///< padded classes sit this far below -R (original units)
  double range_margin = 1.03;  ///< every fitted range is widened by this factor both ways
  double precision = 1e-10;    ///< Goldschmidt steps until the last inverse is this exact
};

/// One division: P ~ 1/S on [lo, hi], evaluated on y = alpha S + beta in [-1, 1].
struct NsqDivision {
  circuits::Polynomial inv;  ///< on [-1, 1] in y
  double lo = 0, hi = 0, alpha = 0, beta = 0;
  double error = 0;  ///< max |S P(S) - 1| on [lo, hi]
};

struct NsqPolynomials {
  std::size_t classes = 0, padded = 0;
  int squarings = 0;
  double shift = 0;      ///< 2^k
  double pad_value = 0;  ///< logit given to the padded classes: -R - gap
  double z_lo = 0, z_hi = 0;
  circuits::Polynomial exp;  ///< e^(z - z_hi) on [-1, 1] in y = (2z - z_lo - z_hi)/(z_hi - z_lo)
  std::vector<NsqDivision> rounds;  ///< P_0 .. P_{k-2}
  NsqDivision last;                 ///< P_f
  int goldschmidt_steps = 0;
};

NsqPolynomials nsq_polynomials(std::size_t classes, const NsqParams& p = {});

/// The plain reference: c logits in [-R, R] -> probabilities.
std::vector<double> nsq(std::span<const double> x, const NsqPolynomials& polys);

}  // namespace hetal::softmax
