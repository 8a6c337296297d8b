#include "hetal/circuits/lintrans/linear_transform.h"

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace hetal::circuits {

LinearTransform::LinearTransform(const ckks::Context& ctx, const ckks::Encoder& enc,
                                 const std::map<long long, std::vector<Complex>>& diagonals,
                                 std::size_t slots, std::size_t level, std::size_t n1,
                                 double scale_ratio, bool compact, bool double_hoist)
    : enc_(enc),
      slots_(slots),
      level_(level),
      scale_ratio_(scale_ratio),
      double_hoist_(double_hoist) {
  if (!(scale_ratio > 0) || !std::isfinite(scale_ratio)) {
    throw std::invalid_argument("linear transform: bad scale ratio");
  }
  if (slots == 0 || (slots & (slots - 1)) || slots > ctx.max_slots()) {
    throw std::invalid_argument("linear transform: slots must be a power of two <= N/2");
  }
  if (level == 0 || level > ctx.max_level()) {
    throw std::invalid_argument("linear transform: needs an input level >= 1 (one is consumed)");
  }
  if (diagonals.empty()) throw std::invalid_argument("linear transform: no diagonals");
  const long long n = static_cast<long long>(slots);
  std::set<long long> ks;
  for (const auto& [k, d] : diagonals) {
    if (k < 0 || k >= n)
      throw std::invalid_argument("diagonal index " + std::to_string(k) + " out of range");
    if (d.size() != slots)
      throw std::invalid_argument("diagonal " + std::to_string(k) + " has the wrong length");
    ks.insert(k);
  }
  // Diagonal k is read as the centered offset in (-n/2, n/2]: the DFT factors have diagonals
  // clustered around 0 modulo n (k and n - k), which splits into far fewer rotations that way.
  const auto centered = [n](long long k) { return k > n / 2 ? k - n : k; };
  const auto split = [&](long long k, long long m) {  // (giant shift, baby index)
    const long long c = centered(k);
    const long long j = (c >= 0 ? c : c - m + 1) / m;  // floor division
    return std::pair{j * m, c - j * m};
  };
  if (n1 == 0) {
    // Fewest key switches: a baby rotation (hoisted) costs about 0.6 of a giant one, and fewer
    // distinct rotations also mean fewer Galois keys.
    double best = 0;
    for (std::size_t m = 1; m <= slots; m <<= 1) {
      std::set<long long> babies, giants;
      for (long long k : ks) {
        const auto [g, b] = split(k, static_cast<long long>(m));
        if (b) babies.insert(b);
        if (g) giants.insert(g);
      }
      const double cost =
          0.6 * static_cast<double>(babies.size()) + static_cast<double>(giants.size());
      if (m == 1 || cost < best) {
        best = cost;
        n1 = m;
      }
    }
  }
  n1_ = std::min<std::size_t>(n1, slots);
  // Encoded at the scale of the prime the output rescale divides by: the scale is preserved.
  const double scale = static_cast<double>(ctx.params().q_primes[level]) * scale_ratio;
  for (const auto& [k, d] : diagonals) {
    const auto [shift, i] = split(k, static_cast<long long>(n1_));
    std::vector<Complex> rotated(slots);
    for (long long t = 0; t < n; ++t) rotated[t] = d[((t - shift) % n + n) % n];
    layout_[shift].push_back(i);
    if (compact) {
      compact_[shift][i] = enc.encode_compact(rotated, level, scale);
    } else if (double_hoist) {
      enc.expand(enc.encode_compact(rotated, level, scale), plain_[shift][i], true);
    } else {
      plain_[shift][i] = enc.encode(rotated, level, scale);
    }
  }
}

std::map<long long, std::vector<Complex>> LinearTransform::diagonals_of(
    const std::vector<Complex>& m, std::size_t slots) {
  if (m.size() != slots * slots) throw std::invalid_argument("matrix must be slots x slots");
  std::map<long long, std::vector<Complex>> out;
  for (std::size_t k = 0; k < slots; ++k) {
    std::vector<Complex> d(slots);
    bool nonzero = false;
    for (std::size_t i = 0; i < slots; ++i) {
      d[i] = m[i * slots + (i + k) % slots];
      nonzero |= d[i] != Complex(0);
    }
    if (nonzero) out.emplace(static_cast<long long>(k), std::move(d));
  }
  return out;
}

std::size_t LinearTransform::bytes() const {
  std::size_t bytes = 0;
  for (const auto& [shift, babies] : plain_) {
    for (const auto& [i, pt] : babies) bytes += pt.poly.size() * sizeof(std::uint64_t);
  }
  for (const auto& [shift, babies] : compact_) {
    for (const auto& [i, pt] : babies) bytes += pt.bytes();
  }
  return bytes;
}

std::vector<long long> LinearTransform::rotations() const {
  std::set<long long> r;
  for (const auto& [shift, babies] : layout_) {
    if (shift) r.insert(shift);
    for (long long i : babies) {
      if (i) r.insert(i);
    }
  }
  return {r.begin(), r.end()};
}

std::vector<long long> LinearTransform::baby_indices() const {
  std::set<long long> baby_set;
  for (const auto& [shift, babies] : layout_) baby_set.insert(babies.begin(), babies.end());
  baby_set.erase(0);
  return {baby_set.begin(), baby_set.end()};
}

const ckks::Plaintext& LinearTransform::diagonal(long long shift, long long i,
                                                 ckks::Plaintext& scratch) const {
  if (compact_.empty()) return plain_.at(shift).at(i);
  enc_.expand(compact_.at(shift).at(i), scratch, double_hoist_);
  return scratch;
}

ckks::Ciphertext LinearTransform::apply(const ckks::Evaluator& ev, const ckks::Ciphertext& x,
                                        const rlwe::GaloisKeys& gk) const {
  if (x.slots != slots_) throw std::invalid_argument("linear transform: slot count mismatch");
  if (x.level() < level_) {
    throw std::invalid_argument("linear transform built for level " + std::to_string(level_) +
                                ", input is at level " + std::to_string(x.level()));
  }
  const ckks::Ciphertext in = x.level() == level_ ? x : ev.drop_to_level(x, level_);
  ckks::Ciphertext acc = double_hoist_ ? apply_double(ev, in, gk) : apply_single(ev, in, gk);
  ev.rescale_inplace(acc);
  acc.scale = in.scale * scale_ratio_;  // exact up to the floating-point rounding of the ratio
  return acc;
}

// Rotations (and below, giant steps) are independent: with several threads each runs whole on
// one thread, which scales better than splitting every operation over limbs.

template <class Ct, class MulSum, class Rotate>
std::vector<Ct> LinearTransform::giant_steps(const std::map<long long, const Ct*>& baby,
                                             MulSum&& mul_sum, Rotate&& rotate) const {
  const std::vector<std::pair<long long, std::vector<long long>>> giants(layout_.begin(),
                                                                         layout_.end());
  std::vector<Ct> partial(giants.size());
#pragma omp parallel for schedule(dynamic) if (giants.size() > 1)
  for (std::size_t g = 0; g < giants.size(); ++g) {
    const auto& [shift, babies] = giants[g];
    std::vector<const Ct*> xs;
    std::vector<const ckks::Plaintext*> ps;
    std::vector<ckks::Plaintext> scratch(babies.size());
    for (std::size_t t = 0; t < babies.size(); ++t) {
      xs.push_back(baby.at(babies[t]));
      ps.push_back(&diagonal(shift, babies[t], scratch[t]));
    }
    partial[g] = mul_sum(xs, ps);
    scratch.clear();
    if (shift) rotate(partial[g], shift);
  }
  return partial;
}

ckks::Ciphertext LinearTransform::apply_single(const ckks::Evaluator& ev,
                                               const ckks::Ciphertext& in,
                                               const rlwe::GaloisKeys& gk) const {
  // Baby steps: all rotations of the input from one decomposition.
  const std::vector<long long> baby_idx = baby_indices();
  const rlwe::Decomposition dec = ev.hoist(in);
  std::vector<ckks::Ciphertext> rotated(baby_idx.size());
#pragma omp parallel for schedule(dynamic) if (baby_idx.size() > 1)
  for (std::size_t t = 0; t < baby_idx.size(); ++t)
    rotated[t] = ev.rotate_hoisted(in, dec, baby_idx[t], gk);
  std::map<long long, const ckks::Ciphertext*> baby{{0, &in}};
  for (std::size_t t = 0; t < baby_idx.size(); ++t) baby[baby_idx[t]] = &rotated[t];

  auto partial = giant_steps(
      baby, [&](const auto& xs, const auto& ps) { return ev.multiply_plain_sum(xs, ps); },
      [&](ckks::Ciphertext& c, long long shift) { ev.rotate_inplace(c, shift, gk); });
  rotated.clear();
  ckks::Ciphertext acc = std::move(partial[0]);
  for (std::size_t g = 1; g < partial.size(); ++g) ev.add_inplace(acc, partial[g]);
  return acc;
}

ckks::Ciphertext LinearTransform::apply_double(const ckks::Evaluator& ev,
                                               const ckks::Ciphertext& in,
                                               const rlwe::GaloisKeys& gk) const {
  // Baby steps stay over Q_l P, multiplied by P: inner products only, no ModDown.
  const std::vector<long long> baby_idx = baby_indices();
  const rlwe::Decomposition dec = ev.hoist(in);
  std::vector<ckks::CiphertextQP> rotated(baby_idx.size() + 1);
#pragma omp parallel for schedule(dynamic) if (baby_idx.size() > 0)
  for (std::size_t t = 0; t <= baby_idx.size(); ++t) {
    rotated[t] =
        t == baby_idx.size() ? ev.lift_qp(in) : ev.rotate_hoisted_qp(in, dec, baby_idx[t], gk);
  }
  std::map<long long, const ckks::CiphertextQP*> baby{{0, &rotated.back()}};
  for (std::size_t t = 0; t < baby_idx.size(); ++t) baby[baby_idx[t]] = &rotated[t];

  // Giant steps: each inner sum over Q_l P; its c1 alone is divided by P for the key switch,
  // whose result stays over Q_l P too. One ModDown of the whole sum at the end.
  auto partial = giant_steps(
      baby, [&](const auto& xs, const auto& ps) { return ev.multiply_plain_sum_qp(xs, ps); },
      [&](ckks::CiphertextQP& c, long long shift) { ev.rotate_qp_inplace(c, shift, gk); });
  rotated.clear();
  ckks::CiphertextQP acc = std::move(partial[0]);
  for (std::size_t g = 1; g < partial.size(); ++g) ev.add_qp_inplace(acc, partial[g]);
  return ev.mod_down(std::move(acc));
}

}  // namespace hetal::circuits
