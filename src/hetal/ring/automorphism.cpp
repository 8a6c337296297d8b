#include "hetal/ring/automorphism.h"

#include <stdexcept>

#include "hetal/ring/ntt.h"

namespace hetal::ring {

std::vector<std::uint32_t> automorphism_ntt_map(int log_n, std::uint64_t galois) {
  const std::uint64_t n = std::uint64_t{1} << log_n, m = 2 * n;
  if ((galois & 1) == 0 || galois >= m) throw std::invalid_argument("bad Galois element");
  std::vector<std::uint32_t> map(n);
  for (std::uint64_t k = 0; k < n; ++k) {
    const std::uint64_t e = 2 * bit_reverse(static_cast<std::uint32_t>(k), log_n) + 1;
    const std::uint64_t ge = (galois * e) & (m - 1);
    map[k] = bit_reverse(static_cast<std::uint32_t>((ge - 1) >> 1), log_n);
  }
  return map;
}

void apply_ntt_map(const std::uint64_t* in, const std::uint32_t* map, std::size_t n,
                   std::uint64_t* out) {
  for (std::size_t k = 0; k < n; ++k) out[k] = in[map[k]];
}

void automorphism_coeff(const std::uint64_t* in, std::size_t n, std::uint64_t galois,
                        std::uint64_t q, std::uint64_t* out) {
  const std::uint64_t mask = 2 * n - 1;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t j = (galois * i) & mask;
    const std::uint64_t v = in[i];
    if (j < n) {
      out[j] = v;
    } else {
      out[j - n] = v == 0 ? 0 : q - v;
    }
  }
}

std::uint64_t galois_element_for_rotation(int log_n, long long k) {
  const std::uint64_t n = std::uint64_t{1} << log_n, m = 2 * n;
  const long long slots = static_cast<long long>(n / 2);
  long long e = k % slots;
  if (e < 0) e += slots;
  std::uint64_t g = 1, b = 5;
  for (auto x = static_cast<std::uint64_t>(e); x; x >>= 1) {
    if (x & 1) g = (g * b) & (m - 1);
    b = (b * b) & (m - 1);
  }
  return g;
}

}  // namespace hetal::ring
