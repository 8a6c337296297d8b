// CKKS parameter sets: explicit prime bit-size chains, presets (ckks.md section 4.3) and
// validation against the 128-bit security table (HE standard; ckks.md section 4.4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hetal/rlwe/keys.h"

namespace hetal::ckks {

using rlwe::SecretDistribution;

enum class Preset {
  T13,            ///< N = 2^13, Q = 50,40,40 | P = 60: secure, 2 levels at 2^40, fast unit tests
  T14,            ///< N = 2^14, Q = 60,40x6 | P = 60,60: secure, 6 levels at 2^40, dnum 4
  B16_H192,       ///< production: N = 2^16, h = 192, Q = 60,40x9 | 39x3 | 60x8 | 56x4, P = 61x5
  TB13_INSECURE,  ///< N = 2^13 with the production chain's shape: INSECURE, tests only
};

class Parameters {
 public:
  std::string name = "custom";
  int log_n = 0;
  std::vector<int> q_bits;              ///< ciphertext primes, q_0 first
  std::vector<int> p_bits;              ///< special primes for key switching
  std::vector<std::uint64_t> q_primes;  ///< generated from q_bits if empty
  std::vector<std::uint64_t> p_primes;  ///< generated from p_bits if empty
  std::size_t dnum = 0;                 ///< key-switching digits at the top level (0: ceil(L/|P|))
  SecretDistribution secret{};
  double sigma = 3.2;
  int log_scale = 40;            ///< default scale 2^log_scale
  std::size_t user_q_count = 0;  ///< Q primes available to applications (0: all)

  static Parameters preset(Preset p);
  /// Generates the primes from the bit sizes where not given explicitly.
  void materialize();

  std::size_t n() const { return std::size_t{1} << log_n; }
  std::size_t slots() const { return n() / 2; }
  std::size_t alpha() const;  ///< primes per digit
  std::size_t max_level() const { return q_primes.size() - 1; }
  std::size_t user_top_level() const { return (user_q_count ? user_q_count : q_primes.size()) - 1; }
  double log_q() const;
  double log_p() const;
  double log_qp() const { return log_q() + log_p(); }
  double default_scale() const;
};

/// 128-bit verdict for a parameter set.
struct SecurityReport {
  bool secure = false;
  double log_qp = 0;
  double limit = 0;  ///< max log QP for 128-bit security at this N and secret (0: not covered)
  std::string reason;
};
SecurityReport security_report(const Parameters& p);

/// Max log2(QP) for 128-bit classical security (HE standard table; OpenFHE's N = 2^16/2^17 rows).
/// Returns 0 for combinations the table does not cover.
double max_log_qp_128(int log_n, const SecretDistribution& secret);

}  // namespace hetal::ckks
