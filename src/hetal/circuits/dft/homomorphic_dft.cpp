#include "hetal/circuits/dft/homomorphic_dft.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace hetal::circuits {

namespace {
// One butterfly stage of Encoder::fft_special_inv (coeffs_to_slots) or fft_special
// (slots_to_coeffs) with half-length h, as diagonals: y[p] = sum_k d_k[p] x[p + k mod n].
Diagonals butterfly_stage(const ckks::Context& ctx, std::size_t n, std::size_t len, DftKind kind) {
  const std::size_t h = len / 2, lenq = len * 4, m = 2 * ctx.n(), step = m / lenq;
  const auto& roots = ctx.roots();
  const auto& rot = ctx.rot_group();
  Diagonals d;
  auto& d0 = d[0];
  auto& up = d[static_cast<long long>(h)];
  auto& down = d[static_cast<long long>(n - h)];
  d0.assign(n, 0);
  up.assign(n, 0);
  down.assign(n, 0);
  for (std::size_t i = 0; i < n; i += len) {
    for (std::size_t j = 0; j < h; ++j) {
      const std::size_t p = i + j, p2 = p + h;
      if (kind == DftKind::coeffs_to_slots) {
        // x[p], x[p2] -> x[p] + x[p2], (x[p] - x[p2]) w
        const Complex w = roots[(lenq - rot[j] % lenq) * step];
        d0[p] = 1;
        up[p] = 1;
        d0[p2] = -w;
        down[p2] = w;
      } else {
        // x[p], x[p2] -> x[p] + w x[p2], x[p] - w x[p2]
        const Complex w = roots[(rot[j] % lenq) * step];
        d0[p] = 1;
        up[p] = w;
        down[p2] = 1;
        d0[p2] = -w;
      }
    }
  }
  // For len == n the offsets h and n - h coincide: `up` and `down` are then the same diagonal,
  // written at disjoint positions (first and second half of the block).
  return d;
}
}  // namespace

Diagonals multiply_diagonals(const Diagonals& a, const Diagonals& b, std::size_t n) {
  // (sum_a alpha_a rot_a)(sum_b beta_b rot_b) = sum_{a,b} alpha_a . rot_a(beta_b) rot_{a+b}
  Diagonals out;
  const long long nn = static_cast<long long>(n);
  for (const auto& [ka, da] : a) {
    for (const auto& [kb, db] : b) {
      auto& o = out[(ka + kb) % nn];
      if (o.empty()) o.assign(n, 0);
      for (std::size_t p = 0; p < n; ++p)
        o[p] += da[p] * db[(p + static_cast<std::size_t>(ka)) % n];
    }
  }
  for (auto it = out.begin(); it != out.end();) {
    bool zero = true;
    for (const auto& v : it->second) zero &= std::abs(v) < 1e-300;
    it = zero ? out.erase(it) : std::next(it);
  }
  return out;
}

std::vector<Diagonals> factor_special_fft(const ckks::Context& ctx, std::size_t n, DftKind kind,
                                          std::size_t levels, Complex factor) {
  if (n < 2 || (n & (n - 1)) || n > ctx.max_slots()) {
    throw std::invalid_argument("homomorphic DFT: slots must be a power of two in [2, N/2]");
  }
  const std::size_t log_n = std::bit_width(n) - 1;
  if (levels == 0 || levels > log_n) {
    throw std::invalid_argument("homomorphic DFT: levels must be in 1.." + std::to_string(log_n));
  }
  // Stages in application order: the inverse FFT runs len = n .. 2, the forward len = 2 .. n.
  std::vector<std::size_t> lens;
  for (std::size_t len = 2; len <= n; len <<= 1) lens.push_back(len);
  if (kind == DftKind::coeffs_to_slots) std::reverse(lens.begin(), lens.end());
  if (kind == DftKind::coeffs_to_slots) factor /= static_cast<double>(n);
  std::vector<Diagonals> groups;
  std::size_t next = 0;
  for (std::size_t g = 0; g < levels; ++g) {
    // Spread the stages evenly: the first groups take the remainder.
    const std::size_t count = log_n / levels + (g < log_n % levels ? 1 : 0);
    Diagonals acc = butterfly_stage(ctx, n, lens[next++], kind);
    for (std::size_t s = 1; s < count; ++s) {
      acc = multiply_diagonals(butterfly_stage(ctx, n, lens[next++], kind), acc, n);
    }
    groups.push_back(std::move(acc));
  }
  // Spread the factor evenly over the groups: the encoding error of a diagonal is absolute
  // (~sqrt(N) / scale), so entries of size 1/(n (K+1)) in a single group would lose ~15 bits.
  const Complex per_group = std::pow(factor, 1.0 / static_cast<double>(levels));
  for (auto& g : groups) {
    for (auto& [k, d] : g) {
      for (auto& v : d) v *= per_group;
    }
  }
  return groups;
}

HomomorphicDft::HomomorphicDft(const ckks::Context& ctx, const ckks::Encoder& enc,
                               std::size_t slots, DftKind kind, std::size_t levels,
                               std::size_t level, Complex factor, double scale_ratio, bool compact,
                               bool double_hoist) {
  if (level < levels) {
    throw std::invalid_argument("homomorphic DFT: " + std::to_string(levels) +
                                " levels needed, input level is " + std::to_string(level));
  }
  const auto groups = factor_special_fft(ctx, slots, kind, levels, factor);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    // Spread evenly: each stage's diagonals are encoded at q_level * ratio, and a small
    // encoding scale would cost precision.
    const double ratio = std::pow(scale_ratio, 1.0 / static_cast<double>(groups.size()));
    stages_.push_back(std::make_unique<LinearTransform>(ctx, enc, groups[g], slots, level - g, 0,
                                                        ratio, compact, double_hoist));
  }
}

std::map<long long, std::size_t> HomomorphicDft::rotation_levels() const {
  std::map<long long, std::size_t> r;
  for (const auto& s : stages_) {
    for (long long k : s->rotations()) r[k] = std::max(r[k], s->level());
  }
  return r;
}

std::size_t HomomorphicDft::bytes() const {
  std::size_t total = 0;
  for (const auto& s : stages_) total += s->bytes();
  return total;
}

std::vector<long long> HomomorphicDft::rotations() const {
  std::vector<long long> r;
  for (const auto& [k, level] : rotation_levels()) r.push_back(k);
  return r;
}

ckks::Ciphertext HomomorphicDft::apply(const ckks::Evaluator& ev, const ckks::Ciphertext& x,
                                       const rlwe::GaloisKeys& gk) const {
  ckks::Ciphertext c = stages_.front()->apply(ev, x, gk);
  for (std::size_t g = 1; g < stages_.size(); ++g) c = stages_[g]->apply(ev, c, gk);
  return c;
}

}  // namespace hetal::circuits
