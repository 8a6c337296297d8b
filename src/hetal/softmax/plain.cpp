#include "hetal/softmax/plain.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace hetal::softmax {

using circuits::Basis;

std::vector<double> exact(std::span<const double> x) {
  const double m = *std::max_element(x.begin(), x.end());
  std::vector<double> e(x.size());
  double sum = 0;
  for (std::size_t i = 0; i < x.size(); ++i) sum += e[i] = std::exp(x[i] - m);
  for (auto& v : e) v /= sum;
  return e;
}

const Polynomial& sign_f() {
  // (35x - 35x^3 + 21x^5 - 5x^7) / 16
  static const Polynomial f({0, 35.0 / 16, 0, -35.0 / 16, 0, 21.0 / 16, 0, -5.0 / 16},
                            Basis::monomial);
  return f;
}

const Polynomial& sign_g() {
  // (4589x - 16577x^3 + 25614x^5 - 12860x^7) / 1024
  static const Polynomial g(
      {0, 4589.0 / 1024, 0, -16577.0 / 1024, 0, 25614.0 / 1024, 0, -12860.0 / 1024},
      Basis::monomial);
  return g;
}

double sign(double x, int dg, int df) {
  for (int i = 0; i < dg; ++i) x = sign_g()(x);
  for (int i = 0; i < df; ++i) x = sign_f()(x);
  return x;
}

std::size_t padded(std::size_t c) {
  std::size_t p = 2;
  while (p < c) p <<= 1;
  return p;
}

std::vector<double> tournament_max(std::vector<double> v, int dg, int df) {
  const std::size_t n = v.size();
  for (std::size_t k = 1; k < n; k <<= 1) {
    std::vector<double> next(n);
    for (std::size_t j = 0; j < n; ++j) {
      const double a = v[j], b = v[(j + k) % n], d = a - b;
      next[j] = (a + b) / 2 + d * sign(d, dg, df) / 2;
    }
    v = std::move(next);
  }
  return v;
}

const Polynomial& hetal_exp_poly() {
  static const Polynomial p({1.000000001945585, 0.9999999388932228, 0.499999859398392,
                             0.16666798775227673, 0.04166711228500117, 0.008328336039797088,
                             0.0013881473292497602, 0.00020492629147503022, 2.551385701569812e-05},
                            Basis::monomial);
  return p;
}

namespace {
/// Normalised, padded row and its tournament max in original units (shared by both pipelines).
double shift_of(std::span<const double> x, double r_max, int dg, int df) {
  std::vector<double> u(padded(x.size()), -0.5);
  for (std::size_t i = 0; i < x.size(); ++i) u[i] = x[i] / (2 * r_max);
  return tournament_max(std::move(u), dg, df)[0] * 2 * r_max;
}

/// Goldschmidt iteration for 1/z on (0, 2R): y = 2 - z/R, t = 1 - z/R; t <- t^2, y <- y(1+t).
double goldschmidt(double z, double r, int iters) {
  double y = 2 - z / r, t = 1 - z / r;
  for (int i = 0; i < iters; ++i) {
    t *= t;
    y *= 1 + t;
  }
  return y / r;
}
}  // namespace

double goldschmidt_divide(double n, double z, double r, int iters) {
  n /= r;
  double d = z / r;
  // One step more than goldschmidt(): its y starts at 2 - z/R, i.e. after the first F.
  for (int i = 0; i <= iters; ++i) {
    const double f = 2 - d;
    n *= f;
    d *= f;
  }
  return n;
}

std::vector<Polynomial> hetal_domain_extension(const HetalParams& p, double scale) {
  std::vector<Polynomial> steps;
  const double s2 = scale * scale;
  for (int i = p.de_steps - 1; i >= 0; --i) {
    const double r = p.de_r * std::pow(p.de_l, i);
    steps.emplace_back(std::vector<double>{0, 1, 0, -4.0 / 27.0 * s2 / (r * r)}, Basis::monomial);
  }
  if (p.precise) {
    const double l2 = p.de_l * p.de_l, l2n = std::pow(l2, p.de_steps);
    const double c = 4.0 / 27.0 * (l2n - 1) / (l2n / l2 * (l2 - 1));
    const double r2 = p.de_r * p.de_r;
    steps.emplace_back(std::vector<double>{0, 1, 0, c / r2 * s2, 0, -c / (r2 * r2) * s2 * s2},
                       Basis::monomial);
  }
  return steps;
}

double hetal_exp(double v) {
  double y = hetal_exp_poly()(v);
  for (int k = 0; k < 3; ++k) y *= y;
  return y;
}

std::vector<double> hetal(std::span<const double> x, const HetalParams& p) {
  const double m = shift_of(x, p.r_max, p.dg, p.df);
  const auto de = hetal_domain_extension(p, 1.0);
  std::vector<double> e(x.size());
  double sum = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    double v = x[i] - m;
    for (const auto& step : de) v = step(v);
    sum += e[i] = hetal_exp(v / 8);
  }
  const double inv = goldschmidt(sum, p.inv_r, p.inv_iters);
  for (auto& v : e) v *= inv;
  return e;
}

OursPolynomials ours_polynomials(std::size_t c, const OursParams& p) {
  if (c < 2) throw std::invalid_argument("softmax: needs at least 2 classes");
  OursPolynomials out;
  out.exp = Polynomial::interpolate([m = p.margin](double t) { return std::exp(t - m); },
                                    -2 * p.r_max - 1, p.margin, p.exp_degree);
  // z in [e^-margin, c] must lie in (0, 2R); the error at z is (1 - z/R)^(2^(n+1)).
  out.inv_r = static_cast<double>(c) / 1.9;
  const double t0 = 1 - std::exp(-p.margin) / out.inv_r;
  out.inv_iters =
      static_cast<int>(std::ceil(std::log2(std::log(p.inv_precision) / std::log(t0)) - 1));
  return out;
}

std::vector<double> ours(std::span<const double> x, const OursPolynomials& polys,
                         const OursParams& p) {
  const double m = shift_of(x, p.r_max, p.dg, p.df);
  std::vector<double> e(x.size());
  double sum = 0;
  for (std::size_t i = 0; i < x.size(); ++i) sum += e[i] = polys.exp(x[i] - m);
  for (auto& v : e) v = goldschmidt_divide(v, sum, polys.inv_r, polys.inv_iters);
  return e;
}

}  // namespace hetal::softmax
