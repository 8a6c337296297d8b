// Precision of decoded values against the expected ones, in bits (Lattigo's convention:
// -log2 of the mean and of the maximum absolute error over the slots).
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <span>

namespace hetal::ckks {

struct Precision {
  double mean = 0, worst = 0;  // bits; 100 stands for an exact match
};

inline Precision precision(std::span<const std::complex<double>> got,
                           std::span<const std::complex<double>> want) {
  double m = 0, w = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double e = std::abs(got[i] - want[i]);
    m += e;
    w = std::max(w, e);
  }
  if (!want.empty()) m /= static_cast<double>(want.size());
  return {m == 0 ? 100 : -std::log2(m), w == 0 ? 100 : -std::log2(w)};
}

}  // namespace hetal::ckks
