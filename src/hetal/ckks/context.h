// Immutable CKKS context: validated parameters, the RNS chain with all precomputed tables, and
// the roots of unity of the canonical embedding. Shared (by const reference) by every object.
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include "hetal/ckks/parameters.h"
#include "hetal/rns/rns_context.h"

namespace hetal::ckks {

enum class SecurityPolicy {
  require_128,     ///< refuse parameters below 128-bit security (the default)
  allow_insecure,  ///< explicit opt-in for test-only parameter sets
};

class Context {
 public:
  explicit Context(Parameters params, SecurityPolicy policy = SecurityPolicy::require_128);

  const Parameters& params() const { return params_; }
  const rns::RnsContext& rns() const { return *rns_; }
  const SecurityReport& security() const { return security_; }
  int log_n() const { return params_.log_n; }
  std::size_t n() const { return params_.n(); }
  std::size_t max_slots() const { return params_.n() / 2; }
  std::size_t max_level() const { return params_.max_level(); }
  std::size_t user_top_level() const { return params_.user_top_level(); }
  double default_scale() const { return params_.default_scale(); }
  /// Hash of everything that makes objects of two contexts incompatible (N, primes, digit
  /// size, secret distribution); stored in every serialized object.
  std::uint64_t fingerprint() const { return fingerprint_; }

  /// e^(2 pi i k / 2N), k in [0, 2N).
  const std::vector<std::complex<double>>& roots() const { return roots_; }
  /// 5^j mod 2N for j in [0, N/2).
  const std::vector<std::uint64_t>& rot_group() const { return rot_group_; }

 private:
  Parameters params_;
  SecurityReport security_;
  std::unique_ptr<rns::RnsContext> rns_;
  std::uint64_t fingerprint_ = 0;
  std::vector<std::complex<double>> roots_;
  std::vector<std::uint64_t> rot_group_;
};

}  // namespace hetal::ckks
