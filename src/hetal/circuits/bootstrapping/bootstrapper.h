// CKKS bootstrapping, ModRaise first (Cheon-Han-Kim-Kim-Song EUROCRYPT 2018; Chen-Chillotti-
// Song EUROCRYPT 2019; Bossuat et al. EUROCRYPT 2021 layout):
//   scale by an integer so that q0 / scale = message ratio
//   ModRaise      level 0 -> top: decrypts to scale * m + q0 * I
//   SubSum        (sparse slots) project on the slot subring
//   CoeffsToSlots homomorphic decoding, `cts_levels` levels (56-bit primes in B16)
//   real / imaginary split by one conjugation
//   EvalMod       x = I + e -> sin(2 pi x) ~ 2 pi e, `mod1.depth()` levels (60-bit primes)
//   SlotsToCoeffs homomorphic encoding, `stc_levels` levels (39-bit primes)
// The output holds the input's values at level top - cts - evalmod - stc.
//
// Not yet: sparse-secret encapsulation (the ephemeral h = 32 key and its dense-to-sparse and
// sparse-to-dense switching keys), packing the real and imaginary halves of sparse inputs into
// one EvalMod, double hoisting in the linear transforms, landing the output on the default
// scale (it currently carries the EvalMod scale, close to the EvalMod primes), and the N = 2^16
// benchmark. Secrets must be sparse enough that |I| <= K.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "hetal/circuits/dft/homomorphic_dft.h"
#include "hetal/circuits/mod1/mod1.h"
#include "hetal/ckks/encoder.h"

namespace hetal::circuits {

struct BootstrapParameters {
  std::size_t slots = 0;  ///< 0: N/2
  std::size_t cts_levels = 4;
  std::size_t stc_levels = 3;
  Mod1Parameters mod1{};
  /// log2(q0 / (scale |m|)): a larger ratio shrinks the sine's cubic error (2 pi)^2 e^3 / 6 but
  /// multiplies every EvalMod error by ratio / (2 pi); 2^10 is the best measured trade-off.
  double log_message_ratio = 10;
};

class Bootstrapper {
 public:
  Bootstrapper(const ckks::Context& ctx, const ckks::Encoder& enc, const ckks::Evaluator& ev,
               const rlwe::RelinKey& rlk, BootstrapParameters params);

  /// Galois steps the bootstrapping keys must cover (plus conjugation).
  std::vector<long long> rotations() const;
  /// Levels consumed from the top of the chain.
  std::size_t depth() const;
  /// Output level: max_level - depth().
  std::size_t output_level() const;

  /// Refreshes a ciphertext (any level; it is dropped to level 0 first).
  ckks::Ciphertext bootstrap(const ckks::Ciphertext& ct, const rlwe::GaloisKeys& gk) const;

  /// Level 0 -> top: the coefficients are lifted centered from q0 to every prime.
  ckks::Ciphertext mod_raise(const ckks::Ciphertext& ct) const;

 private:
  const ckks::Context& ctx_;
  const ckks::Encoder& enc_;
  const ckks::Evaluator& ev_;
  BootstrapParameters p_;
  std::size_t slots_;
  std::unique_ptr<HomomorphicDft> cts_, stc_;
  std::unique_ptr<Mod1Evaluator> mod1_;
};

}  // namespace hetal::circuits
