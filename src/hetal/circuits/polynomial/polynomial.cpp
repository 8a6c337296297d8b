#include "hetal/circuits/polynomial/polynomial.h"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace hetal::circuits {

Polynomial::Polynomial(std::vector<double> coeffs, Basis basis, double a, double b)
    : coeffs_(std::move(coeffs)), basis_(basis), a_(a), b_(b) {
  if (coeffs_.empty()) throw std::invalid_argument("polynomial: no coefficients");
  for (double c : coeffs_) {
    if (!std::isfinite(c)) throw std::invalid_argument("polynomial: non-finite coefficient");
  }
  if (basis_ == Basis::chebyshev && !(b_ > a_)) {
    throw std::invalid_argument("polynomial: interval [a, b] needs a < b");
  }
}

Polynomial Polynomial::interpolate(const std::function<double(double)>& f, double a, double b,
                                   std::size_t degree) {
  if (!(b > a)) throw std::invalid_argument("interpolate: interval [a, b] needs a < b");
  const std::size_t n = degree + 1;
  std::vector<double> fy(n);
  for (std::size_t k = 0; k < n; ++k) {
    const double y = std::cos(std::numbers::pi * (k + 0.5) / n);
    fy[k] = f(0.5 * (b - a) * y + 0.5 * (a + b));
  }
  // Discrete Chebyshev transform: c_j = (2/n) sum_k f(y_k) T_j(y_k), c_0 halved.
  std::vector<double> c(n);
  for (std::size_t j = 0; j < n; ++j) {
    double s = 0;
    for (std::size_t k = 0; k < n; ++k) s += fy[k] * std::cos(std::numbers::pi * j * (k + 0.5) / n);
    c[j] = (j == 0 ? 1.0 : 2.0) * s / static_cast<double>(n);
  }
  return Polynomial(std::move(c), Basis::chebyshev, a, b);
}

double Polynomial::operator()(double x) const {
  if (basis_ == Basis::monomial) {
    double r = 0;
    for (std::size_t i = coeffs_.size(); i-- > 0;) r = r * x + coeffs_[i];
    return r;
  }
  const double y = (2 * x - a_ - b_) / (b_ - a_);
  double b1 = 0, b2 = 0;  // Clenshaw recurrence
  for (std::size_t i = coeffs_.size(); i-- > 1;) {
    const double t = 2 * y * b1 - b2 + coeffs_[i];
    b2 = b1;
    b1 = t;
  }
  return y * b1 - b2 + coeffs_[0];
}

std::size_t Polynomial::degree() const {
  std::size_t d = coeffs_.size() - 1;
  while (d > 0 && coeffs_[d] == 0) --d;
  return d;
}

bool Polynomial::is_odd() const {
  for (std::size_t i = 0; i < coeffs_.size(); i += 2) {
    if (coeffs_[i] != 0) return false;
  }
  return true;
}

bool Polynomial::is_even() const {
  for (std::size_t i = 1; i < coeffs_.size(); i += 2) {
    if (coeffs_[i] != 0) return false;
  }
  return true;
}

}  // namespace hetal::circuits
