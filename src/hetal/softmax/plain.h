// Plain (double precision) softmax approximations, piece by piece, with the very polynomials
// the encrypted path evaluates, so the two can be compared number for number (hetal.md 5).
//
// HETAL's pipeline (its benchmark script softmax.py): normalise by 2R, row max by a tournament
// of composite-sign comparisons (Cheon-Kim-Kim, ASIACRYPT 2020), subtract, domain extension
// (Cheon-Kim-Park) to [-8, 0], exp as p(x/8)^8, Goldschmidt inverse of the row sum.
//
// Ours: the same tournament, but its value at the row's first position is used only as a shift
// (softmax(x) = softmax(x - m) for any m, so the max's approximation error costs nothing as
// long as x - m stays in range); then exp by one Chebyshev interpolant on the whole interval
// [-2R - 1, margin] (its coefficients are bounded by ~e^-R I_n(R), so evaluation is stable;
// degree 63 gives 2e-8) instead of domain extension, and the division by the row sum by
// Goldschmidt with its range fitted to what the shift guarantees: the tournament never
// overestimates the max and underestimates it by < margin.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "hetal/circuits/polynomial/polynomial.h"

namespace hetal::softmax {

using circuits::Polynomial;

/// The encrypted pipelines: normalize-and-square (softmax/nsq.h, the default: ~half the
/// bootstraps) and the tournament max with one exp and Goldschmidt ("ours" below).
enum class Pipeline { nsq, tournament };

/// Exact softmax of one row (numerically stable).
std::vector<double> exact(std::span<const double> x);

/// Cheon-Kim-Kim composite sign on [-1, 1]: f^df(g^dg(x)) (HETAL's f and g, degree 7).
const Polynomial& sign_f();
const Polynomial& sign_g();
double sign(double x, int dg, int df);

/// Tournament row max over c_pad cyclic positions (values padded with `pad`):
/// m <- max(m, rot(m, 2^i)), max(a, b) = (a + b)/2 + (a - b) sign(a - b) / 2.
/// Input and output are normalised values in [-1/2, 1/2]; every position gets the max.
std::vector<double> tournament_max(std::vector<double> v, int dg, int df);

/// Smallest power of two >= c (at least 2).
std::size_t padded(std::size_t c);

struct HetalParams {
  double r_max = 128;  ///< input range [-R, R]
  double de_r = 8, de_l = 2;
  int de_steps = 5;    ///< R = (r/2) L^n
  int dg = 2, df = 1;  ///< comparison iterations (the benchmark CLI's)
  int inv_iters = 16;
  double inv_r = 100;
  bool precise = false;  ///< HETAL's "precise" x^3 / x^5 correction after the extension
};

/// HETAL's softmax of one row of c values (hetal.md 5.1, step by step).
std::vector<double> hetal(std::span<const double> x, const HetalParams& p = {});

/// HETAL's degree-8 exp polynomial (constant term first): e^x ~ p(x/8)^8 on [-8, 0].
const Polynomial& hetal_exp_poly();

/// HETAL's domain extension (Cheon-Kim-Park) step by step, as polynomials in u = x / scale
/// (original units x): step i maps u -> u - (4/27) u^3 scale^2 / (r L^i)^2, i = n-1 .. 0; the
/// precise variant appends u -> u + (C/r^2) scale^2 u^3 - (C/r^4) scale^4 u^5.
std::vector<Polynomial> hetal_domain_extension(const HetalParams& p, double scale);
/// HETAL's exp in normalised form: v = x / 8 in [-1, 0] -> p(v)^8 = e^x.
double hetal_exp(double v);

struct OursParams {
  double r_max = 128;
  /// Comparison iterations of the shift: only its range matters, and f twice (df = 2) keeps
  /// max - shift below 1.44 (df = 1: 4.6), which keeps exp's values large enough to bootstrap.
  int dg = 2, df = 2;
  double margin = 2;            ///< bound on max - shift, original units
  std::size_t exp_degree = 63;  ///< Chebyshev degree of exp on [-2R - 1, margin] (error 2e-8)
  double inv_precision = 1e-7;  ///< Goldschmidt's relative error at the smallest row sum
};

/// The polynomials and constants of our pipeline for c classes.
struct OursPolynomials {
  /// e^(t - margin) on [-2R - 1, margin]: the row's largest value lies in [e^-margin, 1], so
  /// bootstrapping it keeps its relative precision.
  Polynomial exp;
  double inv_r = 0;   ///< Goldschmidt on (0, 2 inv_r) covering the row sums [e^-margin, c]
  int inv_iters = 0;  ///< enough for inv_precision at the smallest row sum
};

/// Goldschmidt division n / z for z in (0, 2R): N = n/R, D = z/R, then `iters` times
/// F = 2 - D, N <- N F, D <- D F (every intermediate stays in [0, 2): bootstrap-safe).
double goldschmidt_divide(double n, double z, double r, int iters);
OursPolynomials ours_polynomials(std::size_t c, const OursParams& p = {});

/// Our softmax of one row of c values.
std::vector<double> ours(std::span<const double> x, const OursPolynomials& polys,
                         const OursParams& p = {});

}  // namespace hetal::softmax
