#include "hetal/softmax/nsq_encrypted.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

namespace hetal::softmax {

namespace {
using circuits::PolynomialEvaluator;

bool same_scale(double a, double b) { return std::abs(a / b - 1) < 1e-9; }

// Scales of the values: a product b P carries the relative noise of both factors, and each
// factor's absolute noise is fixed by its scale. b = a^2 can be small (a row's largest
// e^(z - z_hi) is >= e^-3.6 at c = 10, and a normalised row's largest a is >= 1/c) while P is
// >= 1, so b gets the higher scale and P the lower one (their product lands on the default
// scale either way): measured at N = 2^16, this cut the per-slot error of the first round's
// values from 5e-6 to below 1e-6 relative (docs/benchmarks.md).
constexpr double kExpScale = 8;    // v = e^(z - z_hi) at 2^3 times the default scale
constexpr double kValueScale = 4;  // a_t at 2^2 times the default scale
}  // namespace

NsqSoftmax::NsqSoftmax(const ckks::Context& ctx, const ckks::Encoder& enc,
                       const ckks::Evaluator& ev, const rlwe::RelinKey& rlk, std::size_t classes,
                       matrix::BlockShape block, const NsqParams& params)
    : ctx_(ctx),
      enc_(enc),
      ev_(ev),
      rlk_(rlk),
      pe_(ctx, ev, rlk),
      c_(classes),
      c_pad_(padded(classes)),
      block_(block),
      polys_(nsq_polynomials(classes, params)) {
  EncryptedSoftmax::check_block(ctx, block, classes);
}

std::vector<long long> NsqSoftmax::rotations() const {
  return EncryptedSoftmax::rotations_for(c_, block_);
}

std::size_t NsqSoftmax::depth() const {
  // shift, exp, square + row sum, each round (inverse, its square, times the fourth powers),
  // the last inverse, N and D, Goldschmidt.
  std::size_t d = 1 + PolynomialEvaluator::depth(polys_.exp) + 2;
  for (const auto& r : polys_.rounds) d += PolynomialEvaluator::depth(r.inv) + 2;
  return d + PolynomialEvaluator::depth(polys_.last.inv) + 1 +
         static_cast<std::size_t>(polys_.goldschmidt_steps);
}

double NsqSoftmax::q(std::size_t level) const {
  return static_cast<double>(ctx_.params().q_primes[level]);
}

ckks::Ciphertext NsqSoftmax::square(const ckks::Ciphertext& a) const {
  if (a.level() < 1) throw std::invalid_argument("softmax: a square needs a level");
  ckks::Ciphertext r = ev_.square(a);
  ev_.relinearize_inplace(r, rlk_);
  ev_.rescale_inplace(r);
  return r;
}

ckks::Ciphertext NsqSoftmax::multiply(const ckks::Ciphertext& a, const ckks::Ciphertext& b) const {
  ckks::Ciphertext r = a, s = b;
  ev_.align_levels_inplace(r, s);
  if (r.level() < 1) throw std::invalid_argument("softmax: a product needs a level");
  ev_.multiply_relin_inplace(r, s, rlk_);
  ev_.rescale_inplace(r);
  return r;
}

ckks::Ciphertext NsqSoftmax::row_total(const ckks::Ciphertext& u, double factor,
                                       double target_scale, const rlwe::GaloisKeys& gk) const {
  // Sum over c_pad consecutive slots: right at each block row's first slot, which is copied.
  ckks::Ciphertext z = u;
  for (std::size_t k = 1; k < c_pad_; k <<= 1)
    ev_.add_inplace(z, ev_.rotate(z, static_cast<long long>(k), gk));
  return row_copy(z, factor, target_scale, gk);
}

ckks::Ciphertext NsqSoftmax::row_copy(const ckks::Ciphertext& z, double factor, double target_scale,
                                      const rlwe::GaloisKeys& gk) const {
  return copy_first_slot(ctx_, enc_, ev_, block_, z, factor, target_scale, gk);
}

void NsqSoftmax::refresh_pair_values(ckks::Ciphertext& a, ckks::Ciphertext& y,
                                     SoftmaxStats& st) const {
  // Both come back on the default scale, which the polynomials need for y (their powers keep
  // a scale near q only if the input's is); the values are then read at kValueScale times it
  // after an exact integer multiplication (their bootstrapping noise is what it is, but every
  // later rescale adds relatively less).
  refresh_pair(a, y, st);
  ev_.multiply_integer_inplace(a, static_cast<std::int64_t>(kValueScale));
  a.scale *= kValueScale;
}

void NsqSoftmax::refresh_pair(ckks::Ciphertext& a, ckks::Ciphertext& b, SoftmaxStats& st,
                              double output_scale) const {
  if (!boot_ || !boot_keys_) {
    throw std::invalid_argument("softmax: out of levels (" + std::to_string(a.level()) + ", " +
                                std::to_string(b.level()) + "); set a bootstrapper");
  }
  if (!same_scale(a.scale, b.scale)) {
    if (b.level() >= 1)
      ev_.match_scale_inplace(b, a.scale);
    else if (a.level() >= 1)
      ev_.match_scale_inplace(a, b.scale);
    else
      throw std::logic_error("softmax: a bootstrap pair at level 0 with two scales");
  }
  auto [x, y] = boot_->bootstrap_real_pair(a, b, *boot_keys_, output_scale);
  ++st.bootstraps;
  a = std::move(x);
  b = std::move(y);
}

ckks::Ciphertext NsqSoftmax::shifted_input(const ckks::Ciphertext& x_in,
                                           const rlwe::GaloisKeys& gk) const {
  // y = g (x' - mean) + h on exp's [-1, 1], where x' gives the padded classes the logit
  // pad_value (below every real one) and the mean is over the real classes:
  //   y = g x' - (g / c) W + (g / c) (c_pad - c) pad_value + h,  W = sum of x' over c_pad slots.
  if (x_in.slots != block_.slots()) throw std::invalid_argument("softmax: slot count mismatch");
  if (x_in.level() < 1) throw std::invalid_argument("softmax: the logits need a level");
  const double delta = ctx_.default_scale();
  const auto& p = polys_;
  const double g = 2 / (p.shift * (p.z_hi - p.z_lo)), h = -(p.z_lo + p.z_hi) / (p.z_hi - p.z_lo);
  const double cd = static_cast<double>(c_), np = static_cast<double>(c_pad_ - c_);
  std::vector<double> pad(block_.slots());
  for (std::size_t j = 0; j < pad.size(); ++j)
    pad[j] = (j % block_.s1) % c_pad_ < c_ ? 0.0 : p.pad_value;
  ckks::Ciphertext x =
      ev_.add_plain(x_in, enc_.encode(std::span<const double>(pad), x_in.level(), x_in.scale));
  const ckks::Ciphertext mean = row_total(x, -g / cd, delta, gk);
  ev_.multiply_const_inplace(x, g, delta * q(x.level()) / x.scale);
  ev_.rescale_inplace(x);
  x.scale = delta;
  ev_.add_inplace(x, mean);
  ev_.add_const_inplace(x, g / cd * np * p.pad_value + h);
  return x;
}

ckks::Ciphertext NsqSoftmax::apply(const ckks::Ciphertext& x, const rlwe::GaloisKeys& gk,
                                   SoftmaxStats* stats) const {
  SoftmaxStats st;
  const double delta = ctx_.default_scale();
  const std::size_t de = PolynomialEvaluator::depth(polys_.exp);
  ckks::Ciphertext y = shifted_input(x, gk);
  // exp, then a square and two row sums (round 0's S and its fourth powers) before a refresh.
  if (y.level() < de + 3 && boot_ && boot_keys_) {
    ckks::Ciphertext twin = y;
    refresh_pair(y, twin, st);  // real part (exp would amplify an imaginary error)
  }
  ckks::Ciphertext a = pe_.evaluate(y, polys_.exp, delta * kExpScale);
  {
    const ckks::Ciphertext b = square(a);
    y = row_total(b, polys_.rounds.front().alpha, delta, gk);
    ev_.add_const_inplace(y, polys_.rounds.front().beta);
  }
  for (std::size_t t = 0; t < polys_.rounds.size(); ++t) {
    const NsqDivision& d = polys_.rounds[t];
    const NsqDivision& next = t + 1 < polys_.rounds.size() ? polys_.rounds[t + 1] : polys_.last;
    const std::size_t dp = PolynomialEvaluator::depth(d.inv);
    // a_0 = e^z and a_1 are not bootstrapped (their row maximum can be small, and every later
    // squaring doubles a relative error): their row sums are refreshed while they wait.
    const bool safe = t >= 2;
    std::optional<ckks::Ciphertext> b, fourth;
    if (y.level() < dp + 2 || a.level() < 4) {
      if (!safe && a.level() >= 3 && boot_) {
        b = square(a);
        fourth = row_total(square(*b), next.alpha, y.scale, gk);
        refresh_pair(y, *fourth, st);
        // Round 0's and 1's divisors decide most of the output's error: one noise per row.
        y = row_copy(y, 1.0, y.scale, gk);
        *fourth = row_copy(*fourth, 1.0, fourth->scale, gk);
      } else {
        refresh_pair_values(a, y, st);
        // One noise per row for the divisor: always in the first rounds, and in the last one,
        // whose wide range makes P most sensitive to y (2e-4 per slot without, measured).
        if (!safe || t + 1 == polys_.rounds.size()) y = row_copy(y, 1.0, y.scale, gk);
      }
    }
    if (!b) b = square(a);
    // P_t lands where b P_t is on kValueScale times delta.
    if (y.level() < dp + 1) throw std::invalid_argument("softmax: out of levels for a division");
    const std::size_t lp = y.level() - dp;
    const ckks::Ciphertext inv =
        pe_.evaluate(y, d.inv, delta * kValueScale * q(std::min(b->level(), lp)) / b->scale);
    const ckks::Ciphertext inv2 = square(inv);
    // S_{t+1} = P_t^2 sum a^4, mapped onto the next division's [-1, 1], on delta.
    if (!fourth) {
      const std::size_t lf = b->level() - 2;
      fourth =
          row_total(square(*b), next.alpha, delta * q(std::min(inv2.level(), lf)) / inv2.scale, gk);
    } else {
      const std::size_t lf = std::min(inv2.level(), fourth->level() - 1);
      ev_.match_scale_inplace(*fourth, delta * q(lf) / inv2.scale);
    }
    a = multiply(*b, inv);
    y = multiply(inv2, *fourth);
    ev_.add_const_inplace(y, next.beta);
  }

  // The last division, refined by Goldschmidt: N = a^2 P_f, D = S P_f, then F = 2 - D,
  // N <- N F, D <- D F; every step maps the scale s to s^2 / q, so the steps start at the
  // scale that ends exactly on delta.
  const NsqDivision& f = polys_.last;
  const std::size_t dp = PolynomialEvaluator::depth(f.inv);
  if (y.level() < dp + 1 || a.level() < 2) refresh_pair_values(a, y, st);
  ckks::Ciphertext b = square(a);
  ckks::Ciphertext s = ev_.add_const(y, -f.beta);
  ev_.multiply_const_inplace(s, 1 / f.alpha, b.scale * q(s.level()) / s.scale);
  ev_.rescale_inplace(s);
  s.scale = b.scale;
  const std::size_t l = std::min({b.level(), s.level(), y.level() - dp});
  ev_.drop_to_level_inplace(b, l);
  ev_.drop_to_level_inplace(s, l);
  const ckks::Ciphertext inv = pe_.evaluate(y, f.inv, delta * q(l) / b.scale);
  ckks::Ciphertext n = multiply(b, inv), den = multiply(s, inv);
  const int steps = polys_.goldschmidt_steps;
  const auto start_scale = [&](std::size_t level) {
    return goldschmidt_start_scale(ctx_, level, steps);
  };
  const auto need = static_cast<std::size_t>(steps) + 1 + min_output_level_;
  if (n.level() >= need || !boot_ || !boot_keys_) {
    if (n.level() < static_cast<std::size_t>(steps) + 1)
      throw std::invalid_argument("softmax: out of levels for the last division");
    const double s0 = start_scale(n.level() - 1);
    for (auto* c : {&n, &den}) {
      ev_.multiply_const_inplace(*c, 1.0, s0 * q(c->level()) / c->scale);
      ev_.rescale_inplace(*c);
      c->scale = s0;
    }
  } else {
    const std::size_t top = boot_->output_level();
    if (top < static_cast<std::size_t>(steps) + min_output_level_)
      throw std::invalid_argument("softmax: bootstrapping gives too few levels for the output");
    refresh_pair(n, den, st, start_scale(top));
  }
  for (int i = 0; i < steps; ++i) {
    ckks::Ciphertext fc = ev_.negate(den);
    ev_.add_const_inplace(fc, 2.0);
    ev_.multiply_relin_inplace(n, fc, rlk_);
    ev_.rescale_inplace(n);
    if (i + 1 < steps) {
      ev_.multiply_relin_inplace(den, fc, rlk_);
      ev_.rescale_inplace(den);
    }
  }
  if (same_scale(n.scale, delta)) n.scale = delta;
  if (stats) *stats = st;
  return n;
}

}  // namespace hetal::softmax
