#include "hetal/cryptotl/encrypted_network.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

#include "hetal/circuits/lintrans/linear_transform.h"
#include "hetal/circuits/polynomial/polynomial.h"
#include "hetal/circuits/polynomial/polynomial_evaluator.h"
#include "hetal/ring/automorphism.h"

namespace hetal::cryptotl {

namespace {

using circuits::Complex;
using circuits::LinearTransform;
using Diagonals = std::map<long long, std::vector<Complex>>;

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

std::size_t pow2_at_least(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// The generalized diagonals of the block-diagonal matrix that applies the rows x cols matrix m
// (row-major; rows, cols <= block) to every block: d_k[b B + i] = m[i][i + k] where both indices
// are in range, for every k in (-rows, cols), zero-valued ones included so that the rotation set
// depends on the shape only (m empty: all ones, for required_rotations).
Diagonals block_diagonals(const std::vector<double>& m, std::size_t rows, std::size_t cols,
                          std::size_t block, std::size_t slots, std::size_t samples = 0) {
  const std::size_t end = samples ? samples * block : slots;  // blocks past it stay zero
  Diagonals out;
  for (long long k = -static_cast<long long>(rows) + 1; k < static_cast<long long>(cols); ++k) {
    std::vector<Complex> d(slots, 0.0);
    for (std::size_t i = 0; i < rows; ++i) {
      const long long j = static_cast<long long>(i) + k;
      if (j < 0 || j >= static_cast<long long>(cols)) continue;
      const double v = m.empty() ? 1.0 : m[i * cols + j];
      for (std::size_t b = 0; b < end; b += block) d[b + i] = v;
    }
    // With one sample per ciphertext (block == slots) a negative k and a positive one can be the
    // same rotation; their entries never overlap (i + k < 0 for one, >= 0 for the other), so
    // they add up into one diagonal.
    const long long key = k < 0 ? static_cast<long long>(slots) + k : k;
    if (auto it = out.find(key); it != out.end())
      for (std::size_t i = 0; i < slots; ++i) it->second[i] += d[i];
    else
      out.emplace(key, std::move(d));
  }
  return out;
}

// `bias` in every block below `end` (a slot count), zeros past it.
ckks::Plaintext block_bias(const ckks::Encoder& enc, const std::vector<double>& bias,
                           std::size_t block, std::size_t slots, std::size_t end, std::size_t level,
                           double scale) {
  std::vector<double> v(slots, 0.0);
  for (std::size_t b = 0; b < end; b += block) std::copy(bias.begin(), bias.end(), v.begin() + b);
  return enc.encode(std::span<const double>(v), level, scale);
}

void check_level(const ckks::Context& ctx, std::size_t level) {
  if (level < kDepth)
    bad("lower network: inputs at level " + std::to_string(level) + ", it needs " +
        std::to_string(kDepth));
  if (level > ctx.user_top_level())
    bad("lower network: level " + std::to_string(level) + " above the parameters' top level " +
        std::to_string(ctx.user_top_level()));
}

}  // namespace

ckks::Parameters default_parameters() {
  ckks::Parameters p;
  p.name = "C14";
  p.log_n = 14;
  p.q_bits = {60, 40, 40, 40, 40};
  p.p_bits = {60, 60};
  p.log_scale = 40;
  p.materialize();
  return p;
}

Packing::Packing(std::size_t d, std::size_t slots)
    : dim(d), out_dim(d >= 3 ? d - 2 : 0), block(pow2_at_least(d)) {
  if (d < nn::kConvKernel) bad("lower network: dimension " + std::to_string(d) + " below 9");
  if (block > slots)
    bad("lower network: a sample of dimension " + std::to_string(d) + " needs " +
        std::to_string(block) + " slots, the parameters have " + std::to_string(slots));
  per_ciphertext = slots / block;
}

std::vector<double> Packing::pack(std::span<const float> x, std::size_t first, std::size_t count,
                                  std::size_t slots) const {
  if (count > per_ciphertext || (first + count) * dim > x.size())
    bad("lower network: cannot pack rows " + std::to_string(first) + " + " + std::to_string(count));
  std::vector<double> v(slots, 0.0);
  for (std::size_t r = 0; r < count; ++r)
    for (std::size_t i = 0; i < dim; ++i) v[r * block + i] = x[(first + r) * dim + i];
  return v;
}

void Packing::unpack(std::span<const double> slots, std::size_t count,
                     std::vector<float>& out) const {
  if (count > per_ciphertext || count * block > slots.size())
    bad("lower network: cannot unpack " + std::to_string(count) + " samples");
  for (std::size_t r = 0; r < count; ++r)
    for (std::size_t i = 0; i < out_dim; ++i)
      out.push_back(static_cast<float>(slots[r * block + i]));
}

std::vector<long long> required_rotations(const ckks::Context& ctx, const ckks::Encoder& enc,
                                          std::size_t dim) {
  const std::size_t slots = ctx.max_slots(), level = kDepth;  // as the server builds it
  check_level(ctx, level);
  const Packing pk(dim, slots);
  std::set<long long> steps;
  for (auto [rows, lvl] : {std::pair{dim, level}, std::pair{pk.out_dim, level - 3}}) {
    const LinearTransform lt(ctx, enc, block_diagonals({}, rows, dim, pk.block, slots), slots, lvl);
    for (long long r : lt.rotations()) steps.insert(r);
  }
  return {steps.begin(), steps.end()};
}

EncryptedLowerNetwork::EncryptedLowerNetwork(const ckks::Context& ctx, const ckks::Encoder& enc,
                                             const nn::LowerNetwork& net, std::size_t level,
                                             NetworkOptions options)
    : ctx_(ctx),
      enc_(enc),
      packing_(net.dim, ctx.max_slots()),
      level_(level),
      options_(options),
      fused_(nn::fuse(net)) {
  check_level(ctx, level);
  const std::size_t slots = ctx.max_slots();
  first_ = std::make_unique<LinearTransform>(
      ctx, enc, block_diagonals(fused_.a_mat, fused_.dim, fused_.dim, packing_.block, slots), slots,
      level, 0, 1.0, options_.compact);
  first_bias_ =
      block_bias(enc, fused_.a_bias, packing_.block, slots, slots, level - 1, ctx.default_scale());
  second(packing_.per_ciphertext);
}

EncryptedLowerNetwork::~EncryptedLowerNetwork() = default;

std::shared_ptr<const EncryptedLowerNetwork::Second> EncryptedLowerNetwork::second(
    std::size_t samples) const {
  const std::lock_guard<std::mutex> lock(second_mutex_);
  if (auto it = second_.find(samples); it != second_.end()) {
    it->second->last_use = ++uses_;
    return it->second;
  }
  const std::size_t slots = ctx_.max_slots(), block = packing_.block, end = samples * block;
  auto s = std::make_shared<Second>();
  s->lt = std::make_unique<LinearTransform>(
      ctx_, enc_, block_diagonals(fused_.b_mat, fused_.out_dim, fused_.dim, block, slots, samples),
      slots, level_ - 3, 0, 1.0, options_.compact);
  std::vector<double> bias = fused_.b_bias;
  if (options_.bias_column) bias.push_back(1.0);  // slot out_dim < block (block >= dim)
  s->bias = block_bias(enc_, bias, block, slots, end, level_ - kDepth, ctx_.default_scale());
  // Partial counts come from the last batch of each split and from inference requests: the
  // least recently used goes, so a request of many distinct sizes cannot grow the cache.
  constexpr std::size_t kKept = 4;
  if (second_.size() >= kKept) {
    auto lru = second_.end();
    for (auto it = second_.begin(); it != second_.end(); ++it)
      if (it->first != packing_.per_ciphertext &&
          (lru == second_.end() || it->second->last_use < lru->second->last_use))
        lru = it;
    if (lru != second_.end()) second_.erase(lru);
  }
  s->last_use = ++uses_;
  second_.emplace(samples, s);
  return s;
}

std::vector<long long> EncryptedLowerNetwork::rotations() const {
  std::set<long long> steps;
  const auto full = second(packing_.per_ciphertext);
  for (const auto* lt : {first_.get(), full->lt.get()})
    for (long long r : lt->rotations()) steps.insert(r);
  return {steps.begin(), steps.end()};
}

void EncryptedLowerNetwork::check_keys(const rlwe::GaloisKeys& gk) const {
  const int log_n = ctx_.params().log_n;
  for (long long r : rotations())
    if (!gk.has(ring::galois_element_for_rotation(log_n, r)))
      bad("the Galois keys lack rotation " + std::to_string(r) +
          " that the lower network needs (keys made for another dimension or parameters?)");
}

ckks::Ciphertext EncryptedLowerNetwork::forward(const ckks::Evaluator& ev,
                                                const ckks::Ciphertext& x,
                                                const rlwe::RelinKey& rlk,
                                                const rlwe::GaloisKeys& gk,
                                                std::size_t samples) const {
  if (samples > packing_.per_ciphertext)
    bad("lower network: " + std::to_string(samples) + " samples in a ciphertext of " +
        std::to_string(packing_.per_ciphertext));
  if (x.level() < level_)
    bad("lower network: input at level " + std::to_string(x.level()) + ", it needs " +
        std::to_string(level_));
  if (x.slots != ctx_.max_slots()) bad("lower network: input is not a full-slot ciphertext");
  if (std::abs(x.scale / ctx_.default_scale() - 1) > 1e-9)
    bad("lower network: input is not at the default scale");
  ckks::Ciphertext h = first_->apply(ev, x.level() > level_ ? ev.drop_to_level(x, level_) : x, gk);
  ev.add_plain_inplace(h, first_bias_);
  const circuits::Polynomial act(
      std::vector<double>(nn::kApproxRelu.begin(), nn::kApproxRelu.end()),
      circuits::Basis::monomial);
  const circuits::PolynomialEvaluator pe(ctx_, ev, rlk);
  h = pe.evaluate(h, act);
  const auto s = second(samples ? samples : packing_.per_ciphertext);
  ckks::Ciphertext y = s->lt->apply(ev, h, gk);
  ev.add_plain_inplace(y, s->bias);
  return y;
}

std::vector<ckks::Ciphertext> EncryptedLowerNetwork::forward_all(
    const ckks::Evaluator& ev, const std::vector<ckks::Ciphertext>& xs, const rlwe::RelinKey& rlk,
    const rlwe::GaloisKeys& gk) const {
  std::vector<ckks::Ciphertext> out(xs.size());
  std::string error;
  // Across ciphertexts when there are enough of them; else each transform's own parallel loops.
  const bool outer = xs.size() >= static_cast<std::size_t>(omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) if (outer)
  for (std::size_t i = 0; i < xs.size(); ++i) {
    try {
      out[i] = forward(ev, xs[i], rlk, gk);
    } catch (const std::exception& e) {
#pragma omp critical(cryptotl_forward_error)
      if (error.empty()) error = "ciphertext " + std::to_string(i) + ": " + e.what();
    }
  }
  if (!error.empty()) bad(error);
  return out;
}

double gaussian_sigma(double epsilon, double delta, double sensitivity) {
  if (!(epsilon > 0 && epsilon <= 100)) bad("differential privacy: epsilon must be in (0, 100]");
  if (!(delta > 0 && delta < 1)) bad("differential privacy: delta must be in (0, 1)");
  if (!(sensitivity > 0) || !std::isfinite(sensitivity))
    bad("differential privacy: the sensitivity must be positive and finite");
  auto phi = [](double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); };
  // delta(sigma), decreasing in sigma (Balle & Wang, Theorem 8).
  auto delta_of = [&](double s) {
    const double a = sensitivity / (2 * s), b = epsilon * s / sensitivity;
    return phi(a - b) - std::exp(epsilon) * phi(-a - b);
  };
  double lo = 1e-12 * sensitivity, hi = sensitivity;
  while (delta_of(hi) > delta) hi *= 2;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    (delta_of(mid) > delta ? lo : hi) = mid;
  }
  return hi;
}

namespace {
// An upper bound on the spectral norm of a rows x cols matrix (row-major, row stride `stride`).
double norm2_bound(const std::vector<double>& m, std::size_t rows, std::size_t cols) {
  double fro = 0, n1 = 0, ninf = 0;
  std::vector<double> colsum(cols, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    double rs = 0;
    for (std::size_t c = 0; c < cols; ++c) {
      const double v = std::abs(m[r * cols + c]);
      fro += v * v;
      rs += v;
      colsum[c] += v;
    }
    ninf = std::max(ninf, rs);
  }
  for (double c : colsum) n1 = std::max(n1, c);
  return std::min(std::sqrt(fro), std::sqrt(n1 * ninf));
}

double cubic_slope_bound(double a, double b) {  // max |act'(z)| on [a, b]
  const auto& c = nn::kApproxRelu;
  auto slope = [&](double z) { return std::abs(c[1] + z * (2 * c[2] + z * 3 * c[3])); };
  double m = std::max(slope(a), slope(b));
  const double v = -c[2] / (3 * c[3]);  // the vertex of the parabola act'
  if (v > a && v < b) m = std::max(m, slope(v));
  return m;
}
}  // namespace

namespace {
struct Bounds {
  double interval_sensitivity = 0, lipschitz_sensitivity = 0, max_abs_output = 0;
};

// Interval arithmetic through y = B act(A x + a) + b over the domain, and the Lipschitz bound.
Bounds bounds_of(const nn::FusedNetwork& f, const InputDomain& dom) {
  const bool ball = dom.radius > 0;
  if (!ball && (!(dom.lo <= dom.hi) || !std::isfinite(dom.lo) || !std::isfinite(dom.hi)))
    bad("differential privacy: the input range must be finite with lo <= hi");
  if (ball && !std::isfinite(dom.radius)) bad("differential privacy: bad input radius");
  const std::size_t d = f.dim, m = f.out_dim;
  std::vector<double> al(d), ah(d);  // act's range per coordinate
  double zmin = INFINITY, zmax = -INFINITY;
  for (std::size_t r = 0; r < d; ++r) {
    // z_r = A_r x + a_r over the box, or a_r +- radius ||A_r||_2 over the ball
    double a = f.a_bias[r], b = f.a_bias[r], row2 = 0;
    for (std::size_t i = 0; i < d; ++i) {
      const double w = f.a_mat[r * d + i];
      a += std::min(w * dom.lo, w * dom.hi);
      b += std::max(w * dom.lo, w * dom.hi);
      row2 += w * w;
    }
    if (ball) {
      a = f.a_bias[r] - dom.radius * std::sqrt(row2);
      b = f.a_bias[r] + dom.radius * std::sqrt(row2);
    }
    zmin = std::min(zmin, a);
    zmax = std::max(zmax, b);
    // the cubic's range on [a, b]: its ends and its stationary points inside
    const auto& c = nn::kApproxRelu;
    double mn = std::min(nn::approx_relu(a), nn::approx_relu(b)),
           mx = std::max(nn::approx_relu(a), nn::approx_relu(b));
    const double qa = 3 * c[3], qb = 2 * c[2], qc = c[1], disc = qb * qb - 4 * qa * qc;
    if (disc >= 0)
      for (double st : {(-qb - std::sqrt(disc)) / (2 * qa), (-qb + std::sqrt(disc)) / (2 * qa)})
        if (st > a && st < b) {
          mn = std::min(mn, nn::approx_relu(st));
          mx = std::max(mx, nn::approx_relu(st));
        }
    al[r] = mn;
    ah[r] = mx;
  }
  Bounds out;
  double sq = 0;
  for (std::size_t r = 0; r < m; ++r) {
    double lo = f.b_bias[r], hi = f.b_bias[r];
    for (std::size_t i = 0; i < d; ++i) {
      const double w = f.b_mat[r * d + i];
      lo += std::min(w * al[i], w * ah[i]);
      hi += std::max(w * al[i], w * ah[i]);
    }
    sq += (hi - lo) * (hi - lo);
    out.max_abs_output = std::max({out.max_abs_output, std::abs(lo), std::abs(hi)});
  }
  out.interval_sensitivity = std::sqrt(sq);
  const double diameter = ball ? 2 * dom.radius : (dom.hi - dom.lo) * std::sqrt(double(d));
  out.lipschitz_sensitivity = norm2_bound(f.b_mat, m, d) * cubic_slope_bound(zmin, zmax) *
                              norm2_bound(f.a_mat, d, d) * diameter;
  return out;
}
}  // namespace

double output_sensitivity(const nn::FusedNetwork& f, const InputDomain& dom) {
  const Bounds b = bounds_of(f, dom);
  return std::min(b.interval_sensitivity, b.lipschitz_sensitivity);
}

double output_bound(const nn::FusedNetwork& f, const InputDomain& dom) {
  return bounds_of(f, dom).max_abs_output;
}

void add_gaussian_noise(const ckks::Evaluator& ev, const ckks::Encoder& enc, const Packing& pk,
                        ckks::Ciphertext& ct, double sigma, core::Prng& prng) {
  if (!(sigma >= 0) || !std::isfinite(sigma)) bad("differential privacy: bad sigma");
  auto uniform = [&] {  // in (0, 1), 53 bits
    return (static_cast<double>(prng.next_u64() >> 11) + 0.5) * 0x1.0p-53;
  };
  // Every output slot of every block, padding samples included (the server cannot tell which
  // blocks the client filled), and the imaginary parts as well as the real ones: a client could
  // otherwise probe the weights through the imaginary part of its inputs.
  std::vector<Complex> noise(ct.slots, 0.0);
  for (std::size_t b = 0; b + pk.block <= ct.slots; b += pk.block)
    for (std::size_t i = 0; i < pk.out_dim; ++i) {  // Box-Muller: two independent normals
      const double r = sigma * std::sqrt(-2 * std::log(uniform())), t = 2 * M_PI * uniform();
      noise[b + i] = Complex(r * std::cos(t), r * std::sin(t));
    }
  ev.add_plain_inplace(ct, enc.encode(std::span<const Complex>(noise), ct.level(), ct.scale));
}

}  // namespace hetal::cryptotl
