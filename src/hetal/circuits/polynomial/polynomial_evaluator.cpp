#include "hetal/circuits/polynomial/polynomial_evaluator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hetal::circuits {

namespace {
std::size_t ceil_log2(std::size_t x) { return x <= 1 ? 0 : std::bit_width(x - 1); }
std::size_t degree_of(const std::vector<double>& c) {
  std::size_t d = c.size() - 1;
  while (d > 0 && c[d] == 0) --d;
  return d;
}
bool needs_change_of_variable(const Polynomial& p) {
  return p.basis() == Basis::chebyshev && (p.a() != -1 || p.b() != 1);
}
}  // namespace

struct PolynomialEvaluator::State {
  Basis basis;
  std::size_t top;         // level of T_1
  std::size_t baby_limit;  // leaves have degree < baby_limit
  std::map<std::size_t, ckks::Ciphertext> pow;
  std::size_t mults = 0;
  /// Level T_i will have (T_i is built from T_a T_b with a the largest power of two < i).
  std::size_t level_of(std::size_t i) const { return top - ceil_log2(i); }
};

PolynomialEvaluator::PolynomialEvaluator(const ckks::Context& ctx, const ckks::Evaluator& ev,
                                         const rlwe::RelinKey& rlk)
    : ctx_(ctx), ev_(ev), rlk_(rlk) {}

std::size_t PolynomialEvaluator::depth(const Polynomial& p) {
  return std::max<std::size_t>(1, ceil_log2(p.degree() + 1)) +
         (needs_change_of_variable(p) ? 1 : 0);
}

ckks::Ciphertext PolynomialEvaluator::power(State& s, std::size_t i) const {
  auto it = s.pow.find(i);
  if (it != s.pow.end()) return it->second;
  ckks::Ciphertext r;
  if ((i & (i - 1)) == 0) {
    // T_{2h} = 2 T_h^2 - 1, or x^{2h} = (x^h)^2.
    r = ev_.square(power(s, i / 2));
    ++s.mults;
    ev_.relinearize_inplace(r, rlk_);
    if (s.basis == Basis::chebyshev) {
      ev_.multiply_integer_inplace(r, 2);
      ev_.add_const_inplace(r, -1.0);
    }
  } else {
    const std::size_t a = std::bit_floor(i), b = i - a;
    ckks::Ciphertext ta = power(s, a), tb = power(s, b);
    ev_.align_levels_inplace(ta, tb);
    r = ev_.multiply_relin(ta, tb, rlk_);
    ++s.mults;
    if (s.basis == Basis::chebyshev) {
      // T_{a+b} = 2 T_a T_b - T_{a-b}; T_{a-b} is brought to the product's scale by a constant
      // multiplication before the shared rescale, so no level is spent on it.
      ev_.multiply_integer_inplace(r, 2);
      ckks::Ciphertext d = ev_.drop_to_level(power(s, a - b), r.level());
      ev_.multiply_const_inplace(d, 1.0, r.scale / d.scale);
      d.scale = r.scale;  // equal up to the rounding of the constant (relative 2^-40)
      ev_.sub_inplace(r, d);
    }
  }
  ev_.rescale_inplace(r);
  if (r.level() != s.level_of(i))
    throw std::logic_error("polynomial: power basis level plan broken");
  return s.pow.emplace(i, std::move(r)).first->second;
}

ckks::Ciphertext PolynomialEvaluator::leaf(State& s, const std::vector<double>& c,
                                           std::size_t level, double scale) const {
  // sum_i c_i T_i at level + 1 with constants scaled so that one rescale lands on `scale`.
  const double q = static_cast<double>(ctx_.params().q_primes[level + 1]);
  const double pre = scale * q;
  ckks::Ciphertext acc;
  bool have = false;
  for (std::size_t i = 1; i < c.size(); ++i) {
    if (c[i] == 0) continue;
    ckks::Ciphertext t = ev_.drop_to_level(power(s, i), level + 1);
    const double cs = pre / t.scale;
    ev_.multiply_const_inplace(t, c[i], cs);
    t.scale = pre;
    if (!have) {
      acc = std::move(t);
      have = true;
    } else {
      ev_.add_inplace(acc, t);
    }
  }
  if (!have) {  // constant polynomial: an encryption of c_0 from T_1 * 0
    acc = ev_.drop_to_level(power(s, 1), level + 1);
    ev_.multiply_const_inplace(acc, 0.0, pre / acc.scale);
    acc.scale = pre;
  }
  if (c[0] != 0) ev_.add_const_inplace(acc, c[0]);
  ev_.rescale_inplace(acc);
  acc.scale = scale;  // exact up to floating-point rounding of the planned constants
  return acc;
}

ckks::Ciphertext PolynomialEvaluator::eval(State& s, const std::vector<double>& c,
                                           std::size_t level, double scale) const {
  const std::size_t d = degree_of(c);
  std::size_t deepest = 1;
  for (std::size_t i = 1; i <= d; ++i) {
    if (c[i] != 0) deepest = i;
  }
  if (d < s.baby_limit && s.level_of(deepest) >= level + 1) {
    return leaf(s, std::vector<double>(c.begin(), c.begin() + static_cast<long>(d) + 1), level,
                scale);
  }
  const std::size_t n = std::bit_floor(d);
  if (n < 1 || s.level_of(n) < level + 1) {
    throw std::logic_error("polynomial: level plan infeasible (degree " + std::to_string(d) + ")");
  }
  std::vector<double> q(d - n + 1), r(c.begin(), c.begin() + static_cast<long>(n));
  if (s.basis == Basis::chebyshev) {
    q[0] = c[n];
    for (std::size_t j = 1; j + n <= d; ++j) {
      q[j] = 2 * c[n + j];
      r[n - j] -= c[n + j];
    }
  } else {
    for (std::size_t j = 0; j + n <= d; ++j) q[j] = c[n + j];
  }
  // q * T_n at level + 1 lands on `scale` after one rescale: plan q's scale accordingly.
  ckks::Ciphertext tn = ev_.drop_to_level(power(s, n), level + 1);
  const double q_prime = static_cast<double>(ctx_.params().q_primes[level + 1]);
  const double q_scale = scale * q_prime / tn.scale;
  ckks::Ciphertext res;
  if (degree_of(q) == 0) {
    res = tn;
    ev_.multiply_const_inplace(res, q[0], q_scale);
  } else {
    const ckks::Ciphertext qc = eval(s, q, level + 1, q_scale);
    res = ev_.multiply_relin(qc, tn, rlk_);
    ++s.mults;
  }
  ev_.rescale_inplace(res);
  res.scale = scale;
  if (degree_of(r) == 0) {
    if (r[0] != 0) ev_.add_const_inplace(res, r[0]);
  } else {
    ckks::Ciphertext rc = eval(s, r, level, scale);
    ev_.add_inplace(res, rc);
  }
  return res;
}

ckks::Ciphertext PolynomialEvaluator::evaluate(const ckks::Ciphertext& x, const Polynomial& p,
                                               double target_scale) const {
  const std::size_t need = depth(p);
  if (x.level() < need) {
    throw std::invalid_argument("polynomial of degree " + std::to_string(p.degree()) + " needs " +
                                std::to_string(need) + " levels, the input has " +
                                std::to_string(x.level()));
  }
  const double out_scale = target_scale > 0 ? target_scale : x.scale;
  ckks::Ciphertext t1 = x;
  if (needs_change_of_variable(p)) {
    // y = (2x - a - b) / (b - a), one level.
    ev_.multiply_const_inplace(t1, 2.0 / (p.b() - p.a()));
    ev_.rescale_inplace(t1);
    t1.scale = x.scale;
    ev_.add_const_inplace(t1, -(p.a() + p.b()) / (p.b() - p.a()));
  }
  State s{p.basis(), t1.level(), 0, {}, 0};
  const std::size_t d = p.degree(), m = ceil_log2(d + 1);
  s.baby_limit = std::size_t{1} << std::max<std::size_t>(1, (m + 1) / 2);
  s.pow.emplace(1, t1);
  std::vector<double> c(p.coeffs().begin(), p.coeffs().begin() + static_cast<long>(d) + 1);
  if (c.size() < 2) c.resize(2, 0.0);
  ckks::Ciphertext out = eval(s, c, t1.level() - std::max<std::size_t>(m, 1), out_scale);
  mults_ = s.mults;
  return out;
}

}  // namespace hetal::circuits
