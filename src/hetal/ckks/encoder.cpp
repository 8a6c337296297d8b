#include "hetal/ckks/encoder.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hetal::ckks {

using core::u64;

namespace {
void bit_reverse_permute(std::vector<Complex>& v) {
  const std::size_t n = v.size();
  for (std::size_t i = 1, j = 0; i < n; ++i) {
    std::size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(v[i], v[j]);
  }
}

std::size_t slot_count_for(std::size_t values, std::size_t min_slots, std::size_t max_slots) {
  std::size_t n = std::bit_ceil(std::max<std::size_t>({values, min_slots, std::size_t{1}}));
  if (n > max_slots) {
    throw std::invalid_argument("cannot pack " + std::to_string(std::max(values, min_slots)) +
                                " values: at most N/2 = " + std::to_string(max_slots) + " slots");
  }
  return n;
}
}  // namespace

Encoder::Encoder(const Context& ctx) : ctx_(ctx) {
  const auto& rns = ctx.rns();
  const std::size_t L = rns.q_count();
  garner_inv_.resize(L);
  for (std::size_t i = 1; i < L; ++i) {
    const core::Modulus& mi = rns.q_ntt(i).modulus();
    for (std::size_t j = 0; j < i; ++j) {
      garner_inv_[i].emplace_back(mi.inv(mi.reduce(rns.q_primes()[j])), mi.value);
    }
  }
}

void Encoder::fft_special(std::vector<Complex>& v) const {
  const std::size_t n = v.size(), m = 2 * ctx_.n();
  const auto& roots = ctx_.roots();
  const auto& rot = ctx_.rot_group();
  bit_reverse_permute(v);
  for (std::size_t len = 2; len <= n; len <<= 1) {
    const std::size_t lenh = len >> 1, lenq = len << 2, step = m / lenq;
    for (std::size_t i = 0; i < n; i += len) {
      for (std::size_t j = 0; j < lenh; ++j) {
        const std::size_t idx = (rot[j] % lenq) * step;
        const Complex u = v[i + j], t = v[i + j + lenh] * roots[idx];
        v[i + j] = u + t;
        v[i + j + lenh] = u - t;
      }
    }
  }
}

void Encoder::fft_special_inv(std::vector<Complex>& v) const {
  const std::size_t n = v.size(), m = 2 * ctx_.n();
  const auto& roots = ctx_.roots();
  const auto& rot = ctx_.rot_group();
  for (std::size_t len = n; len >= 2; len >>= 1) {
    const std::size_t lenh = len >> 1, lenq = len << 2, step = m / lenq;
    for (std::size_t i = 0; i < n; i += len) {
      for (std::size_t j = 0; j < lenh; ++j) {
        const std::size_t idx = (lenq - (rot[j] % lenq)) * step;
        const Complex u = v[i + j] + v[i + j + lenh];
        const Complex t = (v[i + j] - v[i + j + lenh]) * roots[idx];
        v[i + j] = u;
        v[i + j + lenh] = t;
      }
    }
  }
  bit_reverse_permute(v);
  const double inv = 1.0 / static_cast<double>(n);
  for (auto& x : v) x *= inv;
}

std::vector<u64> round_to_residues(const Context& ctx, double x, std::size_t nq) {
  if (!std::isfinite(x)) throw std::invalid_argument("cannot encode a non-finite value");
  const auto& rns = ctx.rns();
  std::vector<u64> out(nq);
  const double r = std::nearbyint(x);
  if (std::abs(r) < 0x1p62) {
    const auto v = static_cast<std::int64_t>(r);
    for (std::size_t i = 0; i < nq; ++i) out[i] = rns.q_ntt(i).modulus().from_signed(v);
    return out;
  }
  int e = 0;
  const double frac = std::frexp(r, &e);  // r = frac * 2^e, |frac| in [0.5, 1)
  const auto mant = static_cast<std::int64_t>(std::ldexp(frac, 53));
  for (std::size_t i = 0; i < nq; ++i) {
    const core::Modulus& m = rns.q_ntt(i).modulus();
    out[i] = m.mul(m.from_signed(mant), m.pow(2, static_cast<u64>(e - 53)));
  }
  return out;
}

void Encoder::encode(std::span<const Complex> values, std::size_t level, double scale,
                     Plaintext& out, std::size_t min_slots) const {
  if (level > ctx_.max_level()) throw std::invalid_argument("encode: level above the chain");
  if (!(scale > 0) || !std::isfinite(scale)) throw std::invalid_argument("encode: bad scale");
  const std::size_t N = ctx_.n(), n = slot_count_for(values.size(), min_slots, N / 2);
  const std::size_t gap = N / (2 * n), nq = level + 1;
  std::vector<Complex> v(n);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i].real()) || !std::isfinite(values[i].imag())) {
      throw std::invalid_argument("encode: value " + std::to_string(i) + " is not finite");
    }
    v[i] = values[i];
  }
  fft_special_inv(v);
  std::vector<double> coeff(2 * n);
  double max_abs = 0;
  for (std::size_t k = 0; k < n; ++k) {
    coeff[k] = v[k].real() * scale;
    coeff[k + n] = v[k].imag() * scale;
    max_abs = std::max({max_abs, std::abs(coeff[k]), std::abs(coeff[k + n])});
  }
  double log_q = 0;
  for (std::size_t i = 0; i < nq; ++i)
    log_q += std::log2(static_cast<double>(ctx_.rns().q_primes()[i]));
  if (max_abs > 0 && std::log2(max_abs) >= log_q - 1) {
    throw std::invalid_argument("encode: values times scale (2^" +
                                std::to_string(std::log2(max_abs)) +
                                ") overflow the modulus at level " + std::to_string(level));
  }
  if (max_abs < 0x1p62) {
    CompactPlaintext c;
    c.coeffs.resize(2 * n);
    for (std::size_t k = 0; k < 2 * n; ++k)
      c.coeffs[k] = static_cast<std::int64_t>(std::nearbyint(coeff[k]));
    c.level = level;
    c.scale = scale;
    c.slots = n;
    expand(c, out);
    return;
  }
  out.poly.reshape(N, nq, 0);
  std::fill(out.poly.data(), out.poly.data() + out.poly.size(), 0);
  for (std::size_t k = 0; k < 2 * n; ++k) {
    const auto r = round_to_residues(coeff[k], nq);
    for (std::size_t i = 0; i < nq; ++i) out.poly.limb(i)[k * gap] = r[i];
  }
  ctx_.rns().ntt(out.poly);
  out.scale = scale;
  out.slots = n;
}

CompactPlaintext Encoder::encode_compact(std::span<const Complex> values, std::size_t level,
                                         double scale) const {
  Plaintext tmp;
  encode(values, level, scale, tmp);  // validates and rounds; cheap next to what it saves
  CompactPlaintext c;
  c.level = level;
  c.scale = scale;
  c.slots = tmp.slots;
  // Recover the rounded coefficients from the first limb (centered): exact while they stay
  // below q0 / 2, which encode_compact requires.
  const std::size_t N = ctx_.n(), n = tmp.slots, gap = N / (2 * n);
  const auto& rns = ctx_.rns();
  core::WordVector x(tmp.poly.limb(0), tmp.poly.limb(0) + N);
  rns.q_ntt(0).inverse(x.data());
  const core::Modulus& m0 = rns.q_ntt(0).modulus();
  c.coeffs.resize(2 * n);
  for (std::size_t k = 0; k < 2 * n; ++k) c.coeffs[k] = m0.to_centered(x[k * gap]);
  if (tmp.poly.nq() > 1) {  // larger coefficients would disagree with the second prime
    core::WordVector y(tmp.poly.limb(1), tmp.poly.limb(1) + N);
    rns.q_ntt(1).inverse(y.data());
    const core::Modulus& m1 = rns.q_ntt(1).modulus();
    for (std::size_t k = 0; k < 2 * n; ++k) {
      if (m1.from_signed(c.coeffs[k]) != y[k * gap])
        throw std::invalid_argument("encode_compact: coefficients exceed q0 / 2");
    }
  }
  return c;
}

void Encoder::expand(const CompactPlaintext& c, Plaintext& out, bool with_p) const {
  const std::size_t N = ctx_.n(), n = c.slots, nq = c.level + 1;
  if (n == 0 || n > N / 2 || (n & (n - 1)) || c.coeffs.size() != 2 * n || nq > ctx_.max_level() + 1)
    throw std::invalid_argument("expand: malformed compact plaintext");
  const std::size_t gap = N / (2 * n);
  const auto& rns = ctx_.rns();
  const std::size_t np = with_p ? rns.p_count() : 0;
  out.poly = ring::RnsPoly::uninitialized(N, nq, np);
#pragma omp parallel for schedule(static) if (nq + np > 1 && N >= 4096)
  for (std::size_t i = 0; i < nq + np; ++i) {
    const ring::NttTables& t = rns.ntt_of(nq, i);
    const core::Modulus& m = t.modulus();
    u64* x = out.poly.limb(i);
    if (gap > 1) std::fill(x, x + N, 0);
    for (std::size_t k = 0; k < 2 * n; ++k) x[k * gap] = m.from_signed(c.coeffs[k]);
    t.forward(x);
  }
  out.scale = c.scale;
  out.slots = n;
}

void Encoder::encode(std::span<const double> values, std::size_t level, double scale,
                     Plaintext& out, std::size_t min_slots) const {
  std::vector<Complex> c(values.begin(), values.end());
  encode(std::span<const Complex>(c), level, scale, out, min_slots);
}

Plaintext Encoder::encode(std::span<const Complex> values, std::size_t level, double scale) const {
  Plaintext pt;
  encode(values, level, scale, pt);
  return pt;
}

Plaintext Encoder::encode(std::span<const double> values, std::size_t level, double scale) const {
  Plaintext pt;
  encode(values, level, scale, pt);
  return pt;
}

Plaintext Encoder::encode_constant(Complex c, std::size_t level, double scale,
                                   std::size_t slots) const {
  if (level > ctx_.max_level()) throw std::invalid_argument("encode: level above the chain");
  const std::size_t N = ctx_.n(), nq = level + 1;
  const auto re = round_to_residues(c.real() * scale, nq);
  const auto im = round_to_residues(c.imag() * scale, nq);
  Plaintext pt;
  pt.poly.reshape(N, nq, 0);
  const auto& rns = ctx_.rns();
  for (std::size_t i = 0; i < nq; ++i) {
    const ring::NttTables& t = rns.q_ntt(i);
    const core::Modulus& m = t.modulus();
    // X^(N/2) evaluates to iota = psi^(N/2) on the first half of the NTT slots and to -iota on
    // the second half (slot k is psi^(2 bitrev(k) + 1)).
    const u64 iota = m.pow(t.psi(), N / 2);
    const u64 lo = m.add(re[i], m.mul(im[i], iota)), hi = m.sub(re[i], m.mul(im[i], iota));
    u64* x = pt.poly.limb(i);
    std::fill(x, x + N / 2, lo);
    std::fill(x + N / 2, x + N, hi);
  }
  pt.scale = scale;
  pt.slots = slots ? slots : N / 2;
  return pt;
}

std::vector<Complex> Encoder::decode(const Plaintext& pt) const {
  const std::size_t N = ctx_.n(), n = pt.slots;
  if (n == 0 || n > N / 2 || (n & (n - 1))) throw std::invalid_argument("decode: bad slot count");
  if (pt.poly.nq() == 0 || pt.poly.n() != N) throw std::invalid_argument("decode: empty plaintext");
  const auto& rns = ctx_.rns();
  const std::size_t nq = pt.poly.nq(), gap = N / (2 * n);
  // Enough limbs to hold scale * 2^64 (room for any message magnitude that is meaningful).
  std::size_t k = 0;
  double bits = 0;
  const double need = std::log2(pt.scale) + 64;
  while (k < nq && bits < need) bits += std::log2(static_cast<double>(rns.q_primes()[k++]));
  std::vector<core::WordVector> limbs(k);
#pragma omp parallel for schedule(static) if (k > 1 && N >= 4096)
  for (std::size_t i = 0; i < k; ++i) {
    limbs[i].assign(pt.poly.limb(i), pt.poly.limb(i) + N);
    rns.q_ntt(i).inverse(limbs[i].data());
  }
  std::vector<double> coeff(2 * n);
  const double inv_scale = 1.0 / pt.scale;
  std::vector<u64> dig(k);
  for (std::size_t c = 0; c < 2 * n; ++c) {
    const std::size_t idx = c * gap;
    for (std::size_t i = 0; i < k; ++i) {
      const core::Modulus& mi = rns.q_ntt(i).modulus();
      u64 t = limbs[i][idx];
      for (std::size_t j = 0; j < i; ++j) {
        t = core::mul_shoup(mi.sub(t, mi.reduce(dig[j])), garner_inv_[i][j], mi.value);
      }
      dig[i] = t;
    }
    long double acc = static_cast<long double>(rns.q_ntt(k - 1).modulus().to_centered(dig[k - 1]));
    for (std::size_t j = k - 1; j-- > 0;) {
      acc = acc * static_cast<long double>(rns.q_primes()[j]) + static_cast<long double>(dig[j]);
    }
    coeff[c] = static_cast<double>(acc * inv_scale);
  }
  std::vector<Complex> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = {coeff[i], coeff[i + n]};
  fft_special(v);
  return v;
}

std::vector<double> Encoder::decode_real(const Plaintext& pt) const {
  const auto c = decode(pt);
  std::vector<double> out(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) out[i] = c[i].real();
  return out;
}

}  // namespace hetal::ckks
