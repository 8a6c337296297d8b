#include "hetal/circuits/lintrans/linear_transform.h"

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace hetal::circuits {

LinearTransform::LinearTransform(const ckks::Context& ctx, const ckks::Encoder& enc,
                                 const std::map<long long, std::vector<Complex>>& diagonals,
                                 std::size_t slots, std::size_t level, std::size_t n1,
                                 double scale_ratio, bool compact)
    : enc_(enc), slots_(slots), level_(level), scale_ratio_(scale_ratio) {
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

ckks::Ciphertext LinearTransform::apply(const ckks::Evaluator& ev, const ckks::Ciphertext& x,
                                        const rlwe::GaloisKeys& gk) const {
  if (x.slots != slots_) throw std::invalid_argument("linear transform: slot count mismatch");
  if (x.level() < level_) {
    throw std::invalid_argument("linear transform built for level " + std::to_string(level_) +
                                ", input is at level " + std::to_string(x.level()));
  }
  const ckks::Ciphertext in = x.level() == level_ ? x : ev.drop_to_level(x, level_);
  // Baby steps: all rotations of the input from one decomposition. Rotations (and below, giant
  // steps) are independent: with several threads each runs whole on one thread, which scales
  // better than splitting every operation over limbs.
  std::set<long long> baby_set;
  for (const auto& [shift, babies] : layout_) baby_set.insert(babies.begin(), babies.end());
  baby_set.erase(0);
  const std::vector<long long> baby_idx(baby_set.begin(), baby_set.end());
  const rlwe::Decomposition dec = ev.hoist(in);
  std::vector<ckks::Ciphertext> rotated(baby_idx.size());
#pragma omp parallel for schedule(dynamic) if (baby_idx.size() > 1)
  for (std::size_t t = 0; t < baby_idx.size(); ++t)
    rotated[t] = ev.rotate_hoisted(in, dec, baby_idx[t], gk);
  std::map<long long, const ckks::Ciphertext*> baby{{0, &in}};
  for (std::size_t t = 0; t < baby_idx.size(); ++t) baby[baby_idx[t]] = &rotated[t];

  const std::vector<std::pair<long long, std::vector<long long>>> giants(layout_.begin(),
                                                                         layout_.end());
  std::vector<ckks::Ciphertext> partial(giants.size());
#pragma omp parallel for schedule(dynamic) if (giants.size() > 1)
  for (std::size_t g = 0; g < giants.size(); ++g) {
    const auto& [shift, babies] = giants[g];
    std::vector<const ckks::Ciphertext*> xs;
    std::vector<const ckks::Plaintext*> ps;
    std::vector<ckks::Plaintext> expanded(compact_.empty() ? 0 : babies.size());
    for (std::size_t t = 0; t < babies.size(); ++t) {
      const long long i = babies[t];
      xs.push_back(baby.at(i));
      if (compact_.empty()) {
        ps.push_back(&plain_.at(shift).at(i));
      } else {
        enc_.expand(compact_.at(shift).at(i), expanded[t]);
        ps.push_back(&expanded[t]);
      }
    }
    partial[g] = ev.multiply_plain_sum(xs, ps);
    expanded.clear();
    if (shift) ev.rotate_inplace(partial[g], shift, gk);
  }
  rotated.clear();
  ckks::Ciphertext acc = std::move(partial[0]);
  for (std::size_t g = 1; g < partial.size(); ++g) ev.add_inplace(acc, partial[g]);
  ev.rescale_inplace(acc);
  acc.scale = in.scale * scale_ratio_;  // exact up to the floating-point rounding of the ratio
  return acc;
}

}  // namespace hetal::circuits
