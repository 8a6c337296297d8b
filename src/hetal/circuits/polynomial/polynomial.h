// Plain polynomials for homomorphic evaluation: coefficients in the Chebyshev basis on an
// interval [a, b] (the default: well conditioned, what interpolation at Chebyshev nodes
// produces) or in the power (monomial) basis.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

namespace hetal::circuits {

enum class Basis { chebyshev, monomial };

class Polynomial {
 public:
  Polynomial() = default;
  /// Chebyshev basis: p(x) = sum_i c_i T_i(y), y = (2x - a - b) / (b - a); monomial basis:
  /// p(x) = sum_i c_i x^i (a, b unused).
  Polynomial(std::vector<double> coeffs, Basis basis = Basis::chebyshev, double a = -1,
             double b = 1);

  /// Interpolation at the degree + 1 Chebyshev nodes of [a, b] (Chebyshev basis).
  static Polynomial interpolate(const std::function<double(double)>& f, double a, double b,
                                std::size_t degree);

  /// Plain evaluation (Clenshaw for the Chebyshev basis, Horner for the monomial basis).
  double operator()(double x) const;

  std::size_t degree() const;  ///< index of the last nonzero coefficient
  bool is_odd() const;         ///< only odd-index coefficients are nonzero
  bool is_even() const;        ///< only even-index coefficients are nonzero
  const std::vector<double>& coeffs() const { return coeffs_; }
  Basis basis() const { return basis_; }
  double a() const { return a_; }
  double b() const { return b_; }

 private:
  std::vector<double> coeffs_;
  Basis basis_ = Basis::chebyshev;
  double a_ = -1, b_ = 1;
};

}  // namespace hetal::circuits
