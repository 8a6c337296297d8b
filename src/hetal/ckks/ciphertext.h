// CKKS plaintexts and ciphertexts: NTT-form RNS polynomials plus level, scale and slot count.
#pragma once

#include <cstddef>
#include <vector>

#include "hetal/core/prng.h"
#include "hetal/ring/poly.h"

namespace hetal::ckks {

using ring::RnsPoly;

class Plaintext {
 public:
  RnsPoly poly;           ///< NTT form, level + 1 limbs
  double scale = 1.0;     ///< encoding factor Delta
  std::size_t slots = 0;  ///< packed complex slots (power of two, <= N/2)
  std::size_t level() const { return poly.nq() - 1; }
};

class Ciphertext {
 public:
  std::vector<RnsPoly> parts;  ///< (c0, c1) decrypting to c0 + c1 s; (c0, c1, c2) after a tensor
  double scale = 1.0;
  std::size_t slots = 0;
  std::size_t level() const { return parts.at(0).nq() - 1; }
  std::size_t size() const { return parts.size(); }
};

/// P times a ciphertext, over Q_l P (nq + K limbs per part, NTT form): a key switch's result
/// before its ModDown. Double hoisting (Bossuat et al., EUROCRYPT 2021, section 3.3) sums such
/// values and divides by P once.
class CiphertextQP {
 public:
  RnsPoly c0, c1;
  double scale = 1.0;  ///< of the ciphertext it stands for (P not counted)
  std::size_t slots = 0;
  std::size_t level() const { return c0.nq() - 1; }
};

/// A symmetric-key ciphertext whose c1 is regenerated from a 32-byte seed: half the size on the
/// wire (HETAL's client upload).
class SeededCiphertext {
 public:
  RnsPoly c0;
  core::Seed seed{};
  double scale = 1.0;
  std::size_t slots = 0;
  std::size_t level() const { return c0.nq() - 1; }
};

}  // namespace hetal::ckks
