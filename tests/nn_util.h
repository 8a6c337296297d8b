// A random lower network (CryptoTL's shape) shared by the CryptoTL and protocol tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

#include "hetal/nn/lower_network.h"

namespace hetal::test {

/// Weights uniform in +-1 scaled to keep the activations O(1) for inputs O(1).
inline nn::LowerNetwork random_network(std::size_t d, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  auto fill = [&](std::vector<double>& v, std::size_t n, double s) {
    v.resize(n);
    for (auto& x : v) x = s * u(g);
  };
  nn::LowerNetwork net;
  net.dim = d;
  fill(net.conv_w, nn::kConvKernel, 0.3);
  net.conv_b = 0.1 * u(g);
  fill(net.w1, d * d, 1.0 / std::sqrt(double(d)));
  fill(net.b1, d, 0.1);
  fill(net.w2, (d - 2) * (d - 2), 1.0 / std::sqrt(double(d)));
  fill(net.b2, d - 2, 0.1);
  net.source = "random";
  return net;
}

}  // namespace hetal::test
