#include "hetal/core/sampler.h"

#include <cmath>
#include <stdexcept>

namespace hetal::core {

std::vector<std::int64_t> sample_ternary(Prng& prng, std::size_t n) {
  std::vector<std::int64_t> out(n);
  for (auto& x : out) x = static_cast<std::int64_t>(prng.uniform(3)) - 1;
  return out;
}

std::vector<std::int64_t> sample_sparse_ternary(Prng& prng, std::size_t n, std::size_t h) {
  if (h > n) throw std::invalid_argument("Hamming weight exceeds the ring dimension");
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  std::vector<std::int64_t> out(n, 0);
  // Partial Fisher-Yates: the first h entries are a uniform h-subset.
  for (std::size_t i = 0; i < h; ++i) {
    const std::size_t j = i + prng.uniform(n - i);
    std::swap(idx[i], idx[j]);
    out[idx[i]] = (prng.next_u32() & 1) ? 1 : -1;
  }
  return out;
}

GaussianSampler::GaussianSampler(double sigma) {
  if (!(sigma > 0) || sigma > 100) throw std::invalid_argument("Gaussian sigma out of range");
  bound_ = static_cast<int>(std::ceil(6 * sigma));
  std::vector<long double> w(bound_ + 1);
  long double total = 0;
  for (int k = 0; k <= bound_; ++k) {
    w[k] = std::exp(-static_cast<long double>(k) * k / (2.0L * sigma * sigma)) * (k ? 2 : 1);
    total += w[k];
  }
  cdf_.resize(bound_ + 1);
  long double acc = 0;
  for (int k = 0; k <= bound_; ++k) {
    acc += w[k] / total;
    cdf_[k] = static_cast<std::uint64_t>(std::min(acc, 1.0L) * 9223372036854775808.0L);
  }
  cdf_[bound_] = ~0ull;  // the last bucket catches everything
}

std::int64_t GaussianSampler::sample(Prng& prng) const {
  const std::uint64_t r = prng.next_u64();
  const std::uint64_t u = r >> 1;
  std::int64_t mag = 0;
  for (std::size_t k = 0; k < cdf_.size(); ++k) mag += (u >= cdf_[k]) ? 1 : 0;
  const std::int64_t sign = (r & 1) ? -1 : 1;
  return sign * mag;
}

std::vector<std::int64_t> GaussianSampler::sample(Prng& prng, std::size_t n) const {
  std::vector<std::int64_t> out(n);
  for (auto& x : out) x = sample(prng);
  return out;
}

}  // namespace hetal::core
