#include "hetal/circuits/bootstrapping/bootstrapper.h"

#include <cmath>
#include <numbers>
#include <set>
#include <stdexcept>
#include <string>

namespace hetal::circuits {

Bootstrapper::Bootstrapper(const ckks::Context& ctx, const ckks::Encoder& enc,
                           const ckks::Evaluator& ev, const rlwe::RelinKey& rlk,
                           BootstrapParameters params)
    : ctx_(ctx), enc_(enc), ev_(ev), p_(params) {
  slots_ = p_.slots ? p_.slots : ctx.max_slots();
  if ((slots_ & (slots_ - 1)) || slots_ < 2 || slots_ > ctx.max_slots()) {
    throw std::invalid_argument("bootstrapping: slots must be a power of two in [2, N/2]");
  }
  mod1_ = std::make_unique<Mod1Evaluator>(ctx, ev, rlk, p_.mod1);
  if (ctx.max_level() < depth()) {
    throw std::invalid_argument("bootstrapping needs " + std::to_string(depth()) +
                                " levels above level 0; the chain has " +
                                std::to_string(ctx.max_level()));
  }
  const std::size_t top = ctx.max_level();
  const double gap = static_cast<double>(ctx.max_slots() / slots_);  // SubSum multiplies by it
  // CoeffsToSlots divides by the SubSum factor, by K + 1 (EvalMod's interval) and by 2 (the
  // real/imaginary split adds a conjugate).
  const double cts_factor = 1.0 / (gap * static_cast<double>(p_.mod1.k + 1) * 2.0);
  cts_ = std::make_unique<HomomorphicDft>(ctx, enc, slots_, DftKind::coeffs_to_slots, p_.cts_levels,
                                          top, cts_factor);
  // SlotsToCoeffs undoes the 2 pi of the sine and the message ratio.
  const double stc_factor = std::exp2(p_.log_message_ratio) / (2 * std::numbers::pi);
  stc_ = std::make_unique<HomomorphicDft>(ctx, enc, slots_, DftKind::slots_to_coeffs, p_.stc_levels,
                                          top - p_.cts_levels - mod1_->depth(), stc_factor);
}

std::size_t Bootstrapper::depth() const { return p_.cts_levels + mod1_->depth() + p_.stc_levels; }
std::size_t Bootstrapper::output_level() const { return ctx_.max_level() - depth(); }

std::vector<long long> Bootstrapper::rotations() const {
  std::set<long long> r;
  for (long long k : cts_->rotations()) r.insert(k);
  for (long long k : stc_->rotations()) r.insert(k);
  for (std::size_t s = slots_; s < ctx_.max_slots(); s <<= 1) r.insert(static_cast<long long>(s));
  return {r.begin(), r.end()};
}

ckks::Ciphertext Bootstrapper::mod_raise(const ckks::Ciphertext& ct) const {
  if (ct.level() != 0 || ct.size() != 2)
    throw std::invalid_argument("mod_raise: needs a level-0 ciphertext");
  const auto& rns = ctx_.rns();
  const std::size_t n = ctx_.n(), nq = ctx_.max_level() + 1;
  const core::Modulus& m0 = rns.q_ntt(0).modulus();
  ckks::Ciphertext out;
  out.parts.resize(2);
  out.slots = ct.slots;
  out.scale = ct.scale;
  for (std::size_t j = 0; j < 2; ++j) {
    core::WordVector c(ct.parts[j].limb(0), ct.parts[j].limb(0) + n);
    rns.q_ntt(0).inverse(c.data());
    ring::RnsPoly& o = out.parts[j];
    o = ring::RnsPoly::uninitialized(n, nq);
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < nq; ++i) {
      const core::Modulus& mi = rns.q_ntt(i).modulus();
      std::uint64_t* x = o.limb(i);
      for (std::size_t k = 0; k < n; ++k) x[k] = mi.from_signed(m0.to_centered(c[k]));
      rns.q_ntt(i).forward(x);
    }
  }
  return out;
}

ckks::Ciphertext Bootstrapper::bootstrap(const ckks::Ciphertext& in,
                                         const rlwe::GaloisKeys& gk) const {
  if (in.slots != slots_) {
    throw std::invalid_argument("bootstrapper built for " + std::to_string(slots_) +
                                " slots, ciphertext has " + std::to_string(in.slots));
  }
  ckks::Ciphertext ct = ev_.drop_to_level(in, 0);
  // Scale the message so that q0 / scale is the message ratio: an integer multiplication (free).
  const double q0 = static_cast<double>(ctx_.params().q_primes[0]);
  const double target = q0 / std::exp2(p_.log_message_ratio);
  const double mult = std::round(target / ct.scale);
  if (mult < 1) {
    throw std::invalid_argument("bootstrapping: the input scale 2^" +
                                std::to_string(std::log2(ct.scale)) +
                                " is too large for q0 and the message ratio");
  }
  ev_.multiply_integer_inplace(ct, static_cast<std::int64_t>(mult));
  ct.scale *= mult;
  const double content_scale = ct.scale;
  ct = mod_raise(ct);
  // Read the raised ciphertext at scale q0: slot values are I + scale m / q0.
  ct.scale = q0;
  if (slots_ < ctx_.max_slots()) {
    ct.slots = ctx_.max_slots();
    ev_.rotate_sum_inplace(ct, ctx_.max_slots() / slots_, static_cast<long long>(slots_), gk);
    ct.slots = slots_;
  }
  ckks::Ciphertext w = cts_->apply(ev_, ct, gk);
  const ckks::Ciphertext wc = ev_.conjugate(w, gk);
  ckks::Ciphertext re = ev_.add(w, wc);
  ckks::Ciphertext im = ev_.sub(w, wc);
  ev_.multiply_by_i_inplace(im);
  ev_.negate_inplace(im);
  re = mod1_->evaluate(re);
  im = mod1_->evaluate(im);
  ev_.multiply_by_i_inplace(im);
  ev_.add_inplace(re, im);
  ckks::Ciphertext out = stc_->apply(ev_, re, gk);
  // The values are the input's, times (scale * ratio / q0) undone by the SlotsToCoeffs factor
  // up to the integer rounding of `mult`: correct that exactly in the bookkeeping.
  out.scale *= content_scale * std::exp2(p_.log_message_ratio) / q0;
  return out;
}

}  // namespace hetal::circuits
