#include "hetal/softmax/encrypted.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace hetal::softmax {

EncryptedSoftmax::EncryptedSoftmax(const ckks::Context& ctx, const ckks::Encoder& enc,
                                   const ckks::Evaluator& ev, const rlwe::RelinKey& rlk,
                                   std::size_t classes, matrix::BlockShape block, OursParams params)
    : ctx_(ctx),
      enc_(enc),
      ev_(ev),
      rlk_(rlk),
      pe_(ctx, ev, rlk),
      c_(classes),
      c_pad_(padded(classes)),
      block_(block),
      p_(params),
      polys_(ours_polynomials(classes, params)),
      exp_unit_(polys_.exp.coeffs(), circuits::Basis::chebyshev, -1, 1) {
  check_block(ctx, block, classes);
  const double two_r = 2 * p_.r_max;
  if (two_r != std::round(two_r) || two_r < 1)
    throw std::invalid_argument("softmax: 2R must be a positive integer");
  real_mask_.resize(block.slots());
  for (std::size_t j = 0; j < block.slots(); ++j)
    real_mask_[j] = (j % block.s1) % c_pad_ < c_ ? 1.0 : 0.0;
}

void EncryptedSoftmax::check_block(const ckks::Context& ctx, matrix::BlockShape block,
                                   std::size_t classes) {
  if (block.slots() == 0 || block.slots() > ctx.max_slots() ||
      (block.slots() & (block.slots() - 1))) {
    throw std::invalid_argument("softmax: the block must fill a power-of-two slot count");
  }
  if (block.s1 % padded(classes) != 0) {
    throw std::invalid_argument("softmax: block rows of " + std::to_string(block.s1) +
                                " slots do not hold whole copies of the " +
                                std::to_string(padded(classes)) + " padded classes");
  }
}

std::vector<long long> EncryptedSoftmax::rotations() const { return rotations_for(c_, block_); }

std::vector<long long> EncryptedSoftmax::rotations_for(std::size_t classes,
                                                       matrix::BlockShape block) {
  std::vector<long long> r;
  for (std::size_t k = 1; k < padded(classes); k <<= 1) r.push_back(static_cast<long long>(k));
  for (std::size_t s = 1; s < block.s1; s <<= 1) r.push_back(-static_cast<long long>(s));
  return r;
}

std::size_t EncryptedSoftmax::depth() const {
  std::size_t rounds = 0;
  for (std::size_t k = 1; k < c_pad_; k <<= 1) ++rounds;
  const std::size_t round = 3 * static_cast<std::size_t>(p_.dg + p_.df) + 1;
  // normalize, rounds, broadcast, affine + exp, re-tile, 1/R, Goldschmidt steps
  return 1 + rounds * round + 1 + 1 + circuits::PolynomialEvaluator::depth(exp_unit_) + 1 + 1 +
         static_cast<std::size_t>(polys_.inv_iters) + 1;
}

ckks::Plaintext EncryptedSoftmax::plain(const std::vector<double>& v, std::size_t level,
                                        double scale) const {
  return enc_.encode(std::span<const double>(v), level, scale);
}

ckks::Ciphertext EncryptedSoftmax::refresh(const ckks::Ciphertext& c, std::size_t need,
                                           SoftmaxStats& st) const {
  if (c.level() >= need) return c;
  if (!boot_ || !boot_keys_) {
    throw std::invalid_argument("softmax: a step needs " + std::to_string(need) +
                                " levels, the ciphertext has " + std::to_string(c.level()) +
                                "; set a bootstrapper");
  }
  ckks::Ciphertext out = boot_->bootstrap(c, *boot_keys_);
  ++st.bootstraps;
  if (out.level() < need)
    throw std::invalid_argument("softmax: a step needs more levels than bootstrapping gives");
  return out;
}

ckks::Ciphertext EncryptedSoftmax::normalize(const ckks::Ciphertext& x) const {
  if (x.slots != block_.slots()) throw std::invalid_argument("softmax: slot count mismatch");
  if (x.level() < 1) throw std::invalid_argument("softmax: the logits need a level");
  const double delta = ctx_.default_scale();
  const double q = static_cast<double>(ctx_.params().q_primes[x.level()]);
  std::vector<double> scale_v(real_mask_.size()), pad(real_mask_.size());
  for (std::size_t j = 0; j < real_mask_.size(); ++j) {
    scale_v[j] = real_mask_[j] / (2 * p_.r_max);
    pad[j] = real_mask_[j] ? 0.0 : -0.5;
  }
  ckks::Ciphertext u = ev_.multiply_plain(x, plain(scale_v, x.level(), delta * q / x.scale));
  ev_.rescale_inplace(u);
  u.scale = delta;  // x.scale * (delta q / x.scale) / q, up to floating-point rounding
  ev_.add_plain_inplace(u, plain(pad, u.level(), delta));
  return u;
}

ckks::Ciphertext EncryptedSoftmax::broadcast(const ckks::Ciphertext& in, const rlwe::GaloisKeys& gk,
                                             SoftmaxStats& st, double factor) const {
  const ckks::Ciphertext c = refresh(in, 1, st);
  return copy_first_slot(ctx_, enc_, ev_, block_, c, factor, c.scale, gk);
}

ckks::Ciphertext copy_first_slot(const ckks::Context& ctx, const ckks::Encoder& enc,
                                 const ckks::Evaluator& ev, matrix::BlockShape block,
                                 const ckks::Ciphertext& z, double factor, double target_scale,
                                 const rlwe::GaloisKeys& gk) {
  if (z.level() < 1) throw std::invalid_argument("softmax: a row broadcast needs a level");
  const double q = static_cast<double>(ctx.params().q_primes[z.level()]);
  std::vector<double> mask(block.slots(), 0.0);
  for (std::size_t j = 0; j < mask.size(); j += block.s1) mask[j] = factor;
  ckks::Ciphertext r = ev.multiply_plain(
      z, enc.encode(std::span<const double>(mask), z.level(), target_scale * q / z.scale));
  ev.rescale_inplace(r);
  r.scale = target_scale;
  ev.rotate_sum_inplace(r, block.s1, -1, gk);
  return r;
}

double goldschmidt_start_scale(const ckks::Context& ctx, std::size_t level, int steps) {
  const auto& q = ctx.params().q_primes;
  double sc = ctx.default_scale();
  for (int i = steps - 1; i >= 0; --i)
    sc = std::sqrt(sc * static_cast<double>(q[level - static_cast<std::size_t>(i)]));
  return sc;
}

ckks::Ciphertext EncryptedSoftmax::max_round(const ckks::Ciphertext& m_in, long long step,
                                             const rlwe::GaloisKeys& gk, SoftmaxStats& st) const {
  // max(a, b) = (a + b)/2 + (a - b) sign(a - b) / 2 with sign = f^df(g^dg(.)) (hetal.md 5.1).
  const double delta = ctx_.default_scale();
  ckks::Ciphertext m = refresh(m_in, 1, st);
  ckks::Ciphertext b = ev_.rotate(m, step, gk);
  ckks::Ciphertext d = ev_.sub(m, b);
  std::vector<const circuits::Polynomial*> chain;
  for (int i = 0; i < p_.dg; ++i) chain.push_back(&sign_g());
  for (int i = 0; i < p_.df; ++i) chain.push_back(&sign_f());
  // The last polynomial is halved: the product below is then (a - b) sign(a - b) / 2.
  std::vector<double> half = chain.back()->coeffs();
  for (auto& v : half) v /= 2;
  const circuits::Polynomial last_half(half, chain.back()->basis(), chain.back()->a(),
                                       chain.back()->b());
  chain.back() = &last_half;
  ckks::Ciphertext s = d;
  std::size_t p = 0;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const std::size_t dep = circuits::PolynomialEvaluator::depth(*chain[i]);
    const bool last = i + 1 == chain.size();
    s = refresh(s, last ? dep + 1 : dep, st);
    double target = delta;
    if (last) {
      // The last sign polynomial lands at q_p so that d * sign rescales back onto delta.
      p = std::min(d.level(), s.level() - dep);
      target = static_cast<double>(ctx_.params().q_primes[p]);
    }
    s = pe_.evaluate(s, *chain[i], target);
  }
  for (auto* c : {&m, &b, &d, &s}) ev_.drop_to_level_inplace(*c, p);
  ckks::Ciphertext out = ev_.multiply_relin(d, s, rlk_);
  ckks::Ciphertext mean = ev_.add(m, b);
  ev_.multiply_const_inplace(mean, 0.5, static_cast<double>(ctx_.params().q_primes[p]));
  mean.scale = out.scale;  // both delta * q_p
  ev_.add_inplace(out, mean);
  ev_.rescale_inplace(out);
  out.scale = delta;
  return out;
}

ckks::Ciphertext EncryptedSoftmax::row_max(const ckks::Ciphertext& u, const rlwe::GaloisKeys& gk,
                                           SoftmaxStats& st) const {
  ckks::Ciphertext m = u;
  for (std::size_t k = 1; k < c_pad_; k <<= 1) m = max_round(m, static_cast<long long>(k), gk, st);
  return m;
}

ckks::Ciphertext EncryptedSoftmax::exp_shifted(const ckks::Ciphertext& x_in,
                                               const ckks::Ciphertext& m_in,
                                               const rlwe::GaloisKeys& gk, SoftmaxStats& st) const {
  const double delta = ctx_.default_scale();
  const std::size_t need = 1 + circuits::PolynomialEvaluator::depth(exp_unit_);
  const auto two_r = static_cast<std::int64_t>(2 * p_.r_max);
  ckks::Ciphertext m = refresh(m_in, need + 1, st);
  double half = 1.0;
  if (m.level() > m_in.level() && boot_keys_) {
    // Bootstrapping leaves an imaginary error that exp (slope up to ~130 in y) would amplify
    // into e's imaginary parts: keep the real part, 2 Re m = m + conj(m), halved in the mask.
    ev_.add_inplace(m, ev_.conjugate(m, boot_keys_->galois));
    half = 0.5;
  }
  m = broadcast(m, gk, st, half);
  ckks::Ciphertext x = x_in;
  if (std::abs(x.scale / delta - 1) > 1e-9) ev_.match_scale_inplace(x, delta);
  if (x.level() < need) {
    // The logits arrive too low: bootstrap them normalised (their error, times 2R, then shows
    // in the output; logits at level >= need avoid this).
    ev_.multiply_const_inplace(x, 1.0 / static_cast<double>(two_r));
    ev_.rescale_inplace(x);
    x.scale = delta;
    x = refresh(x, need, st);
    ev_.multiply_integer_inplace(x, two_r);
  }
  ev_.multiply_integer_inplace(m, two_r);  // back to original units: exact, no level
  ev_.align_levels_inplace(x, m);
  ckks::Ciphertext d = ev_.sub(x, m);
  // The change of variable onto [-1, 1], with the padded classes sent to -1 (exp ~ 0 there).
  const double a = -2 * p_.r_max - 1, b = p_.margin;
  std::vector<double> mul(real_mask_.size()), add(real_mask_.size());
  for (std::size_t j = 0; j < real_mask_.size(); ++j) {
    mul[j] = real_mask_[j] * 2 / (b - a);
    add[j] = real_mask_[j] ? -(a + b) / (b - a) : -1.0;
  }
  const double q = static_cast<double>(ctx_.params().q_primes[d.level()]);
  ckks::Ciphertext y = ev_.multiply_plain(d, plain(mul, d.level(), q));
  ev_.rescale_inplace(y);
  y.scale = delta;
  ev_.add_plain_inplace(y, plain(add, y.level(), delta));
  return pe_.evaluate(y, exp_unit_, delta);
}

ckks::Ciphertext EncryptedSoftmax::row_sum(const ckks::Ciphertext& e, const rlwe::GaloisKeys& gk,
                                           SoftmaxStats& st) const {
  ckks::Ciphertext z = e;
  for (std::size_t k = 1; k < c_pad_; k <<= 1)
    ev_.add_inplace(z, ev_.rotate(z, static_cast<long long>(k), gk));
  // The first slot's sum, divided by c_pad on the way (free with the mask): row sums below
  // c / c_pad bootstrap well.
  return broadcast(z, gk, st, 1.0 / static_cast<double>(c_pad_));
}

ckks::Ciphertext EncryptedSoftmax::divide(const ckks::Ciphertext& e, const ckks::Ciphertext& z,
                                          SoftmaxStats& st) const {
  // Goldschmidt division (softmax/plain.h): N = e/R, D = z/R; F = 2 - D, N <- N F, D <- D F.
  // z arrives divided by c_pad (row_sum). Every step maps the scale S to S^2 / q_level; the
  // last run of steps starts at the scale that makes it end exactly on the default scale, so
  // the probabilities subtract from fresh labels without a scale-matching level.
  const double delta = ctx_.default_scale();
  const auto& q = ctx_.params().q_primes;
  const int steps = polys_.inv_iters + 1;
  const auto start_scale = [&](std::size_t level, int k) {
    return goldschmidt_start_scale(ctx_, level, k);
  };
  ckks::Ciphertext n = e, d = z;
  if ((n.level() < 1 || d.level() < 1) && boot_ && boot_keys_ &&
      std::abs(n.scale / d.scale - 1) < 1e-9) {
    // e and the row sums are real and share their scale: one bootstrap refreshes both
    // (refreshing the row sums alone would be followed by a pair bootstrap at the first step).
    auto [nn, dd] = boot_->bootstrap_real_pair(n, d, *boot_keys_);
    ++st.bootstraps;
    n = std::move(nn);
    d = std::move(dd);
  }
  n = refresh(n, 1, st);
  d = refresh(d, 1, st);
  ev_.align_levels_inplace(n, d);
  const std::size_t l0 = n.level();
  const bool last = static_cast<int>(l0 - 1) >= steps;  // no bootstrap needed afterwards
  const double s0 = last ? start_scale(l0 - 1, steps) : delta;
  const double cs = s0 * static_cast<double>(q[l0]) / delta;
  const double factor[] = {1.0 / polys_.inv_r, static_cast<double>(c_pad_) / polys_.inv_r};
  ckks::Ciphertext* parts[] = {&n, &d};
  for (int i = 0; i < 2; ++i) {
    ev_.multiply_const_inplace(*parts[i], factor[i], cs);
    ev_.rescale_inplace(*parts[i]);
    parts[i]->scale = s0;
  }
  const std::size_t top_out = boot_ ? boot_->output_level() : 0;
  for (int i = 0; i < steps; ++i) {
    const auto left = static_cast<std::size_t>(steps - i);
    // Bootstrap when out of levels, or earlier when the remaining steps would end below the
    // level the caller asked for but fit into one fresh bootstrap.
    const bool early = min_output_level_ > 0 && boot_ && d.level() < left + min_output_level_ &&
                       left + min_output_level_ <= top_out;
    if (d.level() < 1 || early) {
      // N and D are real and share their scale: one bootstrap refreshes both (a + i b).
      if (!boot_ || !boot_keys_) refresh(d, 1, st);  // throws the usual message
      const std::size_t top = boot_->output_level();
      const int left = steps - i;
      const double out = static_cast<int>(top) >= left ? start_scale(top, left) : delta;
      auto [nn, dd] = boot_->bootstrap_real_pair(n, d, *boot_keys_, out);
      ++st.bootstraps;
      n = std::move(nn);
      d = std::move(dd);
    }
    ckks::Ciphertext f = ev_.negate(d);
    ev_.add_const_inplace(f, 2.0);
    ev_.multiply_relin_inplace(n, f, rlk_);
    ev_.multiply_relin_inplace(d, f, rlk_);
    ev_.rescale_inplace(n);
    ev_.rescale_inplace(d);
  }
  if (std::abs(n.scale / delta - 1) < 1e-9) n.scale = delta;
  return n;
}

ckks::Ciphertext EncryptedSoftmax::apply(const ckks::Ciphertext& x, const rlwe::GaloisKeys& gk,
                                         SoftmaxStats* stats) const {
  SoftmaxStats st;
  ckks::Ciphertext u = normalize(x);
  ckks::Ciphertext xe = x;
  if (x.level() < 1 + circuits::PolynomialEvaluator::depth(exp_unit_) && boot_ && boot_keys_) {
    // Logits too low for exp (e.g. straight from DiagABT in training): one bootstrap of the
    // normalised logits serves the max and, times 2R, exp (padded classes are masked there).
    // Its real part only: exp would amplify the imaginary error that bootstrapping leaves.
    u = boot_->bootstrap(u, *boot_keys_);
    ++st.bootstraps;
    xe = ev_.add(u, ev_.conjugate(u, boot_keys_->galois));  // 2 Re u
    ev_.multiply_integer_inplace(xe, static_cast<std::int64_t>(p_.r_max));
  }
  const ckks::Ciphertext m = row_max(u, gk, st);
  const ckks::Ciphertext e = exp_shifted(xe, m, gk, st);
  const ckks::Ciphertext z = row_sum(e, gk, st);
  ckks::Ciphertext out = divide(e, z, st);
  if (stats) *stats = st;
  return out;
}

ckks::Ciphertext hetal_domain_extension(const circuits::PolynomialEvaluator& pe,
                                        const ckks::Ciphertext& u, const HetalParams& p,
                                        double scale, const circuits::Bootstrapper* boot,
                                        const circuits::BootstrapKeys* keys, SoftmaxStats* stats) {
  ckks::Ciphertext c = u;
  for (const auto& step : hetal_domain_extension(p, scale)) {
    const std::size_t need = circuits::PolynomialEvaluator::depth(step);
    if (c.level() < need) {
      if (!boot || !keys)
        throw std::invalid_argument("domain extension: out of levels and no bootstrapper");
      c = boot->bootstrap(c, *keys);
      if (stats) ++stats->bootstraps;
    }
    c = pe.evaluate(c, step);
  }
  return c;
}

ckks::Ciphertext hetal_exp(const circuits::PolynomialEvaluator& pe, const ckks::Evaluator& ev,
                           const rlwe::RelinKey& rlk, const ckks::Ciphertext& v) {
  ckks::Ciphertext y = pe.evaluate(v, hetal_exp_poly());
  for (int k = 0; k < 3; ++k) {
    ev.square_inplace(y);
    ev.relinearize_inplace(y, rlk);
    ev.rescale_inplace(y);
  }
  return y;
}

}  // namespace hetal::softmax
