// Fast (approximate) RNS base conversion, Bajard-Eynard-Hasan-Zucca (SAC 2016):
//   y = sum_j [x_j * (Q/q_j)^-1]_{q_j} * (Q/q_j)  mod t,
// with the bracket taken as the centered representative, so y = x + e*Q with e a small integer
// of zero mean (|e| <= source primes / 2). In hybrid key switching the e*Q term vanishes modulo
// Q (ModUp) or becomes a tiny zero-mean error after division by P (ModDown). A non-centered
// bracket would leave a constant bias that the canonical embedding amplifies ~N-fold in the
// slots next to the root 1.
#pragma once

#include <cstddef>
#include <vector>

#include "hetal/core/modarith.h"

namespace hetal::rns {

using core::u64;

class BaseConverter {
 public:
  BaseConverter(std::vector<core::Modulus> from, std::vector<core::Modulus> to);

  /// in[j]: source limb j (coefficients in [0, q_j)); out[k]: destination limb for the target
  /// prime targets[k] (an index into `to`), written in [0, t).
  void convert(const u64* const* in, std::size_t n, const std::size_t* targets,
               std::size_t target_count, u64* const* out) const;

  std::size_t from_size() const { return from_.size(); }
  std::size_t to_size() const { return to_.size(); }

 private:
  std::vector<core::Modulus> from_, to_;
  std::vector<core::ShoupConst> qhat_inv_;  // (Q/q_j)^-1 mod q_j
  std::vector<u64> qhat_mod_;               // [t * from + j] = (Q/q_j) mod to_t
  std::vector<u64> q_neg_mod_;              // [t * (from + 1) + c] = -c Q mod to_t
};

}  // namespace hetal::rns
