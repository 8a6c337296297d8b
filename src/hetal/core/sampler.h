// Samplers for RLWE secrets and errors (HE standard, Albrecht et al. 2018, section 2).
#pragma once

#include <cstdint>
#include <vector>

#include "hetal/core/prng.h"

namespace hetal::core {

/// Uniform ternary: each coefficient -1, 0, 1 with probability 1/3.
std::vector<std::int64_t> sample_ternary(Prng& prng, std::size_t n);

/// Ternary with exactly h nonzero coefficients at uniformly random positions, random signs.
std::vector<std::int64_t> sample_sparse_ternary(Prng& prng, std::size_t n, std::size_t h);

/// Rounded Gaussian of standard deviation sigma, truncated at 6 sigma, by inversion of a
/// cumulative table (scanned in full, so the running time does not depend on the output).
class GaussianSampler {
 public:
  explicit GaussianSampler(double sigma);
  std::int64_t sample(Prng& prng) const;
  std::vector<std::int64_t> sample(Prng& prng, std::size_t n) const;
  int bound() const { return bound_; }

 private:
  int bound_;
  std::vector<std::uint64_t> cdf_;  // cdf_[k] = P(|X| <= k) * 2^63
};

}  // namespace hetal::core
