// Synthetic training data shared by the training tests.
#pragma once

#include <cmath>
#include <cstdint>

#include "hetal/core/prng.h"
#include "hetal/train/plain_trainer.h"

namespace hetal::test {

/// c overlapping Gaussian clusters in d dimensions (a ~90 % accuracy problem at d = 16, c = 5).
inline train::Dataset clusters(std::size_t n, std::size_t d, std::size_t c, std::uint8_t seed) {
  core::Prng p(core::Seed{seed});
  const auto unit = [&] { return (p.next_u64() >> 11) * 0x1p-53; };
  std::vector<double> centres(c * d);
  for (auto& v : centres) v = 2 * unit() - 1;
  train::Dataset out;
  out.classes = c;
  out.x = matrix::Matrix(n, d);
  out.y.resize(n);
  for (std::size_t r = 0; r < n; ++r) {
    out.y[r] = r % c;
    for (std::size_t k = 0; k < d; ++k) {
      const double g = std::sqrt(-2 * std::log(unit() + 1e-300)) * std::cos(6.283185 * unit());
      out.x(r, k) = 0.5 * centres[out.y[r] * d + k] + 0.5 * g;
    }
  }
  return out;
}

}  // namespace hetal::test
