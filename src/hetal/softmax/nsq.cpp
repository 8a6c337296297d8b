#include "hetal/softmax/nsq.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "hetal/softmax/plain.h"

namespace hetal::softmax {

namespace {
/// P ~ 1/S on [lo, hi] widened by the margin, as a polynomial in y = alpha S + beta.
NsqDivision fit_division(double lo, double hi, std::size_t degree, double margin) {
  NsqDivision d;
  d.lo = lo / margin;
  d.hi = hi * margin;
  d.alpha = 2 / (d.hi - d.lo);
  d.beta = -(d.hi + d.lo) / (d.hi - d.lo);
  const double a = d.alpha, b = d.beta;
  d.inv =
      circuits::Polynomial::interpolate([a, b](double y) { return a / (y - b); }, -1, 1, degree);
  // Relative error on a geometric grid (it peaks where S is largest; the grid covers both ends).
  constexpr int kGrid = 4000;
  for (int i = 0; i <= kGrid; ++i) {
    const double s = d.lo * std::pow(d.hi / d.lo, i / static_cast<double>(kGrid));
    d.error = std::max(d.error, std::abs(s * d.inv(d.alpha * s + d.beta) - 1));
  }
  return d;
}
}  // namespace

NsqPolynomials nsq_polynomials(std::size_t c, const NsqParams& p) {
  if (c < 2) throw std::invalid_argument("softmax: needs at least 2 classes");
  const bool automatic = p.round_degrees.empty();
  std::vector<std::size_t> degrees = p.round_degrees;
  if (automatic) {
    degrees.assign(static_cast<std::size_t>(std::max(p.squarings - 1, 0)), 3);
    for (std::size_t t = 0; t < degrees.size() && t < 3; ++t) degrees[t] = t == 0 ? 15 : 7;
  }
  if (p.squarings < 2 || degrees.size() != static_cast<std::size_t>(p.squarings - 1))
    throw std::invalid_argument("softmax: normalize-and-square needs one degree per round (" +
                                std::to_string(p.squarings - 1) + ")");
  NsqPolynomials out;
  out.classes = c;
  out.padded = padded(c);
  out.squarings = p.squarings;
  out.shift = std::ldexp(1.0, p.squarings);
  out.pad_value = -p.r_max - p.pad_gap;
  const double cd = static_cast<double>(c), np = static_cast<double>(out.padded - c);
  const double r = p.r_max;
  // z = (x - mean) / 2^k: the largest is 2R (c - 1) / c / 2^k (one class at R, the others at
  // -R); the padded classes lie at most (2R + gap) / 2^k below the mean.
  out.z_hi = 2 * r * (cd - 1) / cd / out.shift;
  out.z_lo = (-2 * r - p.pad_gap) / out.shift;
  const double zl = out.z_lo, zh = out.z_hi;
  out.exp = circuits::Polynomial::interpolate(
      [zl, zh](double y) { return std::exp((y * (zh - zl) + zl + zh) / 2 - zh); }, -1, 1,
      p.exp_degree);

  // Round 0: S_0 = sum v^2 >= c e^(-2 z_hi) (Jensen: the real z's average 0); the largest
  // sum is at a vertex of [-R, R]^c (the sum is convex in x): j classes at R, c - j at -R.
  double lo = cd * std::exp(-2 * zh), hi = 0;
  for (std::size_t j = 0; j <= c; ++j) {
    const double jd = static_cast<double>(j);
    const double mu = (jd * r - (cd - jd) * r) / cd;
    const auto sq = [&](double x) { return std::exp(2 * ((x - mu) / out.shift - zh)); };
    hi = std::max(hi, jd * sq(r) + (cd - jd) * sq(-r) + np * sq(out.pad_value));
  }
  for (std::size_t t = 0; t + 1 < static_cast<std::size_t>(p.squarings); ++t) {
    out.rounds.push_back(fit_division(lo, hi, degrees[t], p.range_margin));
    if (automatic && degrees[t] < 7 && out.rounds.back().error > 0.4)
      out.rounds.back() = fit_division(lo, hi, 7, p.range_margin);
    // After the division the row sums are 1 +- error; S = sum a^2 >= (sum a)^2 / c_eff, with
    // the padded classes at most e^(-gap 2^(t+1) / 2^k) of the smallest real class.
    const double e = out.rounds.back().error;
    if (e >= 0.5)
      throw std::invalid_argument("softmax: round " + std::to_string(t) +
                                  " of normalize-and-square diverges (relative error " +
                                  std::to_string(e) + "); raise its degree");
    const double ratio =
        std::exp(-p.pad_gap * std::ldexp(1.0, static_cast<int>(t) + 1) / out.shift);
    const double c_eff = (cd + np * ratio) * (cd + np * ratio) / (cd + np * ratio * ratio);
    lo = (1 - e) * (1 - e) / c_eff;
    hi = (1 + e) * (1 + e);
  }
  out.last = fit_division(lo, hi, p.final_degree, p.range_margin);
  if (out.last.error >= 0.5) throw std::invalid_argument("softmax: the last division diverges");
  out.goldschmidt_steps = 1;
  while (std::pow(out.last.error, std::ldexp(1.0, out.goldschmidt_steps)) > p.precision)
    ++out.goldschmidt_steps;
  return out;
}

std::vector<double> nsq(std::span<const double> x, const NsqPolynomials& polys) {
  if (x.size() != polys.classes) throw std::invalid_argument("softmax: class count mismatch");
  const std::size_t n = polys.padded, c = polys.classes;
  double mu = 0;
  for (const double v : x) mu += v;
  mu /= static_cast<double>(c);
  std::vector<double> a(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double z = ((i < c ? x[i] : polys.pad_value) - mu) / polys.shift;
    a[i] = polys.exp((2 * z - polys.z_lo - polys.z_hi) / (polys.z_hi - polys.z_lo));
  }
  double s = 0;
  for (const double v : a) s += v * v;
  for (const auto& d : polys.rounds) {
    const double inv = d.inv(d.alpha * s + d.beta);
    double fourth = 0;
    for (auto& v : a) {
      v *= v;
      fourth += v * v;
      v *= inv;
    }
    s = inv * inv * fourth;
  }
  const auto& d = polys.last;
  const double y = d.alpha * s + d.beta;
  const double inv = d.inv(y);
  double den = (y - d.beta) / d.alpha * inv;
  std::vector<double> out(c);
  for (std::size_t i = 0; i < c; ++i) out[i] = a[i] * a[i] * inv;
  for (int g = 0; g < polys.goldschmidt_steps; ++g) {
    const double f = 2 - den;
    for (auto& v : out) v *= f;
    den *= f;
  }
  return out;
}

}  // namespace hetal::softmax
