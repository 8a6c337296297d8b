#include "hetal/circuits/bootstrapping/bootstrapper.h"

#include <omp.h>

#include <cmath>
#include <map>
#include <numbers>
#include <stdexcept>
#include <string>

#include "hetal/ckks/serialization.h"
#include "hetal/ring/automorphism.h"
#include "hetal/rlwe/keyswitch.h"

namespace hetal::circuits {

std::size_t BootstrapKeys::bytes() const {
  std::size_t total = 0;
  for (const auto& [g, k] : galois.keys) total += k.bytes();
  if (dense_to_sparse) total += dense_to_sparse->bytes();
  if (sparse_to_dense) total += sparse_to_dense->bytes();
  return total;
}

Bootstrapper::Bootstrapper(const ckks::Context& ctx, const ckks::Encoder& enc,
                           const ckks::Evaluator& ev, const rlwe::RelinKey& rlk,
                           BootstrapParameters params)
    : ctx_(ctx), enc_(enc), ev_(ev), p_(params) {
  slots_ = p_.slots ? p_.slots : ctx.max_slots();
  if ((slots_ & (slots_ - 1)) || slots_ < 2 || slots_ > ctx.max_slots()) {
    throw std::invalid_argument("bootstrapping: slots must be a power of two in [2, N/2]");
  }
  if (p_.mod1.i_terms != 0) {
    // I sums h + 1 uniform terms for the key ModRaise decrypts under (uniform ternary: ~2N/3).
    const auto& sec = ctx.params().secret;
    const std::size_t h = encapsulated() ? p_.ephemeral_hamming_weight
                          : sec.kind == rlwe::SecretDistribution::Kind::sparse_ternary
                              ? sec.hamming_weight
                              : 2 * ctx.n() / 3;
    p_.mod1.i_terms = h + 1;
  }
  mod1_ = std::make_unique<Mod1Evaluator>(ctx, ev, rlk, p_.mod1);
  if (ctx.max_level() < depth()) {
    throw std::invalid_argument("bootstrapping needs " + std::to_string(depth()) +
                                " levels above level 0; the chain has " +
                                std::to_string(ctx.max_level()));
  }
  if (encapsulated()) {
    if (ctx.params().p_primes.empty())
      throw std::invalid_argument("bootstrapping: encapsulation needs a special prime");
    ctx0_ = std::make_unique<rns::RnsContext>(ctx.log_n(),
                                              std::vector<core::u64>{ctx.params().q_primes[0]},
                                              std::vector<core::u64>{ctx.params().p_primes[0]}, 1);
  }
  const std::size_t top = ctx.max_level();
  const double gap = static_cast<double>(ctx.max_slots() / slots_);  // SubSum multiplies by it
  // CoeffsToSlots divides by the SubSum factor, by K + 1 (EvalMod's interval) and by 2 (the
  // real/imaginary split adds a conjugate).
  const double cts_factor = 1.0 / (gap * static_cast<double>(p_.mod1.k + 1) * 2.0);
  cts_ = std::make_unique<HomomorphicDft>(ctx, enc, slots_, DftKind::coeffs_to_slots, p_.cts_levels,
                                          top, cts_factor, 1.0, p_.compact_diagonals,
                                          p_.double_hoisting);
  // SlotsToCoeffs undoes the 2 pi of the sine and the message ratio, and brings the scale from
  // EvalMod's output scale down to the output scale.
  out_scale_ = p_.output_scale > 0 ? p_.output_scale : ctx.default_scale();
  stc_ratio_ = out_scale_ / std::exp2(p_.log_mod1_output_scale);
  const double stc_factor = std::exp2(p_.log_message_ratio) / (2 * std::numbers::pi);
  stc_ = std::make_unique<HomomorphicDft>(ctx, enc, slots_, DftKind::slots_to_coeffs, p_.stc_levels,
                                          top - p_.cts_levels - mod1_->depth(), stc_factor,
                                          stc_ratio_, p_.compact_diagonals, p_.double_hoisting);
}

std::size_t Bootstrapper::depth() const { return p_.cts_levels + mod1_->depth() + p_.stc_levels; }
std::size_t Bootstrapper::output_level() const { return ctx_.max_level() - depth(); }

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

BootstrapKeys Bootstrapper::generate_keys(ckks::KeyGenerator& kg, const rlwe::SecretKey& sk) const {
  BootstrapKeys keys;
  const std::size_t top = ctx_.max_level();
  // Each Galois key covers only the levels it is used at: the SlotsToCoeffs keys are about a
  // third of the size of the CoeffsToSlots keys.
  std::map<std::uint64_t, std::size_t> need;
  const auto want = [&](std::uint64_t g, std::size_t level) {
    auto [it, fresh] = need.emplace(g, level);
    if (!fresh) it->second = std::max(it->second, level);
  };
  const int log_n = ctx_.log_n();
  for (const auto* dft : {cts_.get(), stc_.get()}) {
    for (const auto& [step, level] : dft->rotation_levels())
      want(ring::galois_element_for_rotation(log_n, step), level);
  }
  for (std::size_t s = slots_; s < ctx_.max_slots(); s <<= 1)
    want(ring::galois_element_for_rotation(log_n, static_cast<long long>(s)), top);
  want(ring::galois_element_conjugate(log_n), top - p_.cts_levels);
  for (const auto& [g, level] : need) {
    kg.add_galois_key(sk, g, keys.galois, level);
    if (p_.seeded_keys) keys.galois.keys.at(g).drop_uniform();
  }
  if (encapsulated()) {
    const rlwe::SecretKey eph = kg.sparse_secret_key(p_.ephemeral_hamming_weight);
    keys.sparse_to_dense = kg.switching_key(sk, eph, top);
    const rlwe::KeyGenerator kg0(
        *ctx0_, {rlwe::SecretDistribution::Kind::sparse_ternary, p_.ephemeral_hamming_weight},
        ctx_.params().sigma);
    const rlwe::SecretKey sk0 = kg0.secret_key_from(sk.coeffs);
    const rlwe::SecretKey eph0 = kg0.secret_key_from(eph.coeffs);
    core::Prng prng(kg.fresh_seed());
    keys.dense_to_sparse = kg0.switching_key(eph0, sk0.ntt, 1, prng);
  }
  return keys;
}

void Bootstrapper::save_keys(const BootstrapKeys& keys, std::ostream& out) const {
  if (encapsulated() && (!keys.dense_to_sparse || !keys.sparse_to_dense))
    throw ckks::SerializationError("cannot save bootstrapping keys: encapsulation keys missing");
  ckks::save(ctx_, keys.galois, out);
  if (encapsulated()) {
    ckks::save_switching_key(ctx_, ctx_.rns(), *keys.sparse_to_dense, out);
    ckks::save_switching_key(ctx_, *ctx0_, *keys.dense_to_sparse, out);
  }
}

BootstrapKeys Bootstrapper::load_keys(std::istream& in) const {
  BootstrapKeys keys;
  keys.galois = ckks::load_galois_keys(ctx_, in, !p_.seeded_keys);
  if (encapsulated()) {
    keys.sparse_to_dense = ckks::load_switching_key(ctx_, ctx_.rns(), in);
    keys.dense_to_sparse = ckks::load_switching_key(ctx_, *ctx0_, in);
  }
  return keys;
}

ckks::Ciphertext Bootstrapper::raise(const ckks::Ciphertext& in, const BootstrapKeys& keys,
                                     double& content_scale) const {
  if (in.slots != slots_) {
    throw std::invalid_argument("bootstrapper built for " + std::to_string(slots_) +
                                " slots, ciphertext has " + std::to_string(in.slots));
  }
  if (encapsulated() && (!keys.dense_to_sparse || !keys.sparse_to_dense)) {
    throw std::invalid_argument("bootstrapping: the encapsulation keys are missing");
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
  content_scale = ct.scale;
  const auto& rns = ctx_.rns();
  if (encapsulated()) {
    // Level 0, user key -> ephemeral key, with the key switch over q0 * p0.
    ring::RnsPoly o0, o1;
    rlwe::key_switch(*ctx0_, ct.parts[1], *keys.dense_to_sparse, o0, o1);
    rns.add_inplace(ct.parts[0], o0);
    ct.parts[1] = std::move(o1);
  }
  ct = mod_raise(ct);
  if (encapsulated()) {
    ring::RnsPoly o0, o1;
    rlwe::key_switch(rns, ct.parts[1], *keys.sparse_to_dense, o0, o1);
    rns.add_inplace(ct.parts[0], o0);
    ct.parts[1] = std::move(o1);
  }
  // Read the raised ciphertext at scale q0: slot values are I + scale m / q0.
  ct.scale = q0;
  if (slots_ < ctx_.max_slots()) {
    ct.slots = ctx_.max_slots();
    ev_.rotate_sum_inplace(ct, ctx_.max_slots() / slots_, static_cast<long long>(slots_),
                           keys.galois);
    ct.slots = slots_;
  }
  return ct;
}

ckks::Ciphertext Bootstrapper::coeffs_to_slots(const ckks::Ciphertext& ct,
                                               const BootstrapKeys& keys) const {
  return cts_->apply(ev_, ct, keys.galois);
}

ckks::Ciphertext Bootstrapper::eval_mod(const ckks::Ciphertext& w, const BootstrapKeys& keys,
                                        double content_scale, double output_scale) const {
  const double out = output_scale > 0 ? output_scale : out_scale_;
  // The scale that SlotsToCoeffs and the final bookkeeping (times content_scale * ratio / q0,
  // which carries the integer rounding of the input scaling) turn into exactly out_scale_.
  const double q0 = static_cast<double>(ctx_.params().q_primes[0]);
  const double target = out * q0 / (stc_ratio_ * content_scale * std::exp2(p_.log_message_ratio));
  // Real and imaginary halves by one conjugation: w + conj(w), (w - conj(w)) / i.
  const ckks::Ciphertext wc = ev_.conjugate(w, keys.galois);
  ckks::Ciphertext re = ev_.add(w, wc);
  ckks::Ciphertext im = ev_.sub(w, wc);
  ev_.multiply_by_i_inplace(im);
  ev_.negate_inplace(im);
  // The two halves are independent: on two or more threads each runs on its own thread (with
  // the operations inside serial), which scales better than splitting every operation.
#pragma omp parallel sections num_threads(2) if (omp_get_max_threads() >= 2)
  {
#pragma omp section
    re = mod1_->evaluate(re, target);
#pragma omp section
    im = mod1_->evaluate(im, target);
  }
  ev_.multiply_by_i_inplace(im);
  ev_.add_inplace(re, im);
  return re;
}

ckks::Ciphertext Bootstrapper::slots_to_coeffs(const ckks::Ciphertext& ct,
                                               const BootstrapKeys& keys, double content_scale,
                                               double output_scale) const {
  ckks::Ciphertext out = stc_->apply(ev_, ct, keys.galois);
  // The values are the input's, times (scale * ratio / q0) undone by the SlotsToCoeffs factor
  // up to the integer rounding of the scaling: correct that exactly in the bookkeeping.
  const double q0 = static_cast<double>(ctx_.params().q_primes[0]);
  out.scale *= content_scale * std::exp2(p_.log_message_ratio) / q0;
  // Equal to out_scale_ up to floating-point rounding: make it exact so that sums with fresh
  // ciphertexts at that scale need no matching.
  const double want = output_scale > 0 ? output_scale : out_scale_;
  if (std::abs(out.scale / want - 1) < 1e-9) out.scale = want;
  return out;
}

ckks::Ciphertext Bootstrapper::bootstrap(const ckks::Ciphertext& in, const BootstrapKeys& keys,
                                         double output_scale) const {
  double content_scale = 0;
  ckks::Ciphertext ct = raise(in, keys, content_scale);
  ct = coeffs_to_slots(ct, keys);
  ct = eval_mod(ct, keys, content_scale, output_scale);
  return slots_to_coeffs(ct, keys, content_scale, output_scale);
}

std::pair<ckks::Ciphertext, ckks::Ciphertext> Bootstrapper::bootstrap_real_pair(
    const ckks::Ciphertext& a, const ckks::Ciphertext& b, const BootstrapKeys& keys,
    double output_scale) const {
  const double out = output_scale > 0 ? output_scale : out_scale_;
  if (std::abs(a.scale / b.scale - 1) > 1e-9)
    throw std::invalid_argument("bootstrap_real_pair: the two scales differ");
  if (!keys.galois.has(ring::galois_element_conjugate(ctx_.log_n())))
    throw std::invalid_argument("bootstrap_real_pair: the conjugation key is missing");
  // Real parts first (2 Re a = a + conj(a), the halving in the scale): an imaginary error in
  // one input would otherwise land in the other output. Key switches at the inputs' (low)
  // level cost little.
  ckks::Ciphertext x = a, y = b;
  ev_.align_levels_inplace(x, y);
  for (auto* c : {&x, &y}) {
    ev_.add_inplace(*c, ev_.conjugate(*c, keys.galois));
    c->scale *= 2;
  }
  ev_.multiply_by_i_inplace(y);
  ev_.add_inplace(x, y);
  const ckks::Ciphertext c = bootstrap(x, keys, out / 2);
  const ckks::Ciphertext cc = ev_.conjugate(c, keys.galois);
  ckks::Ciphertext re = ev_.add(c, cc);  // 2a
  ckks::Ciphertext im = ev_.sub(c, cc);  // 2 i b
  ev_.multiply_by_i_inplace(im);
  ev_.negate_inplace(im);  // 2b
  re.scale = out;          // 2a at out / 2 is a at out, exactly
  im.scale = out;
  return {std::move(re), std::move(im)};
}

}  // namespace hetal::circuits
