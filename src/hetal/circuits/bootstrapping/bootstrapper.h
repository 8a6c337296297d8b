// CKKS bootstrapping, ModRaise first (Cheon-Han-Kim-Kim-Song EUROCRYPT 2018; Chen-Chillotti-
// Song EUROCRYPT 2019; Bossuat et al. EUROCRYPT 2021 layout):
//   scale by an integer so that q0 / scale = message ratio
//   ModRaise      level 0 -> top: decrypts to scale * m + q0 * I
//   SubSum        (sparse slots) project on the slot subring
//   CoeffsToSlots homomorphic decoding, `cts_levels` levels (56-bit primes in B16)
//   real / imaginary split by one conjugation
//   EvalMod       x = I + e -> sin(2 pi x) ~ 2 pi e, `mod1.depth()` levels (60-bit primes),
//                 less the approximation's mean error at the integers (circuits/mod1)
//   SlotsToCoeffs homomorphic encoding, `stc_levels` levels (39-bit primes)
// The output holds the input's values at level top - cts - evalmod - stc.
//
// Sparse-secret encapsulation (Bossuat et al., CT-RSA 2022 / Lattigo 6.1.1): before ModRaise
// the level-0 ciphertext is switched from the user's key to an ephemeral h = 32 key, so |I|
// stays within K whatever the user's key; the dense-to-sparse key lives only over q0 * p0 (121
// bits at N = 2^16, where an h = 32 secret is still 128-bit secure), and right after ModRaise a
// sparse-to-dense key over the whole chain returns to the user's key.
//
// The output lands exactly on the default scale: EvalMod's cosine is evaluated at the scale
// that the double angles, SlotsToCoeffs' scale ratio and the input scaling turn into it.
//
// Not yet: packing the real and imaginary halves of sparse inputs into one EvalMod, double
// hoisting in the linear transforms, the arcsine correction.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "hetal/circuits/dft/homomorphic_dft.h"
#include "hetal/circuits/mod1/mod1.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/keygen.h"

namespace hetal::circuits {

struct BootstrapParameters {
  std::size_t slots = 0;  ///< 0: N/2
  std::size_t cts_levels = 4;
  std::size_t stc_levels = 3;
  Mod1Parameters mod1{};
  /// log2(q0 / (scale |m|)): a larger ratio shrinks the sine's cubic error (2 pi)^2 e^3 / 6 but
  /// multiplies every EvalMod error by ratio / (2 pi); 2^10 is the best measured trade-off.
  double log_message_ratio = 10;
  /// Hamming weight of the ephemeral secret (0: no encapsulation; the user's key must then be
  /// sparse enough that |I| <= K).
  std::size_t ephemeral_hamming_weight = 32;
  /// Keep the CoeffsToSlots / SlotsToCoeffs diagonals as integer coefficients and run their
  /// NTTs at each bootstrap: 2.16 GB -> 0.13 GB at N = 2^16 (full slots) for ~1 s more.
  bool compact_diagonals = true;
  /// CoeffsToSlots / SlotsToCoeffs with double hoisting (rotations summed over Q_l P, one
  /// ModDown per giant step); false: single hoisting, the reference it is measured against.
  bool double_hoisting = true;
  /// Keep the Galois keys seeded (rlwe::SwitchingKey::seeded): their uniform halves are
  /// regenerated from the seeds at each key switch (ChaCha20, AVX-512) instead of resident:
  /// 5.94 -> 3.05 GB at N = 2^16 for ~0.5-1 s more per bootstrap on 2 threads.
  bool seeded_keys = true;
  /// Scale of the refreshed ciphertext (0: the context's default scale, 2^40 in B16).
  double output_scale = 0;
  /// EvalMod lands at about 2^this; SlotsToCoeffs then lowers the scale to the output scale.
  /// Higher keeps EvalMod's small outputs far above the rescaling noise; lower keeps the
  /// SlotsToCoeffs diagonals' encoding scale (q_l * ratio^(1/stc_levels)) high.
  double log_mod1_output_scale = 50;
};

/// Evaluation keys of bootstrapping (all public; made by the secret key's owner).
struct BootstrapKeys {
  /// Rotations and conjugation, each generated at the highest level it is used at.
  rlwe::GaloisKeys galois;
  /// Encapsulation: user key -> ephemeral key over q0 * p0, ephemeral -> user over the chain.
  std::optional<rlwe::SwitchingKey> dense_to_sparse, sparse_to_dense;
  /// Resident size in bytes (b, and a unless seeded).
  std::size_t bytes() const;
};

class Bootstrapper {
 public:
  Bootstrapper(const ckks::Context& ctx, const ckks::Encoder& enc, const ckks::Evaluator& ev,
               const rlwe::RelinKey& rlk, BootstrapParameters params);

  /// Levels consumed from the top of the chain.
  std::size_t depth() const;
  /// Output level: max_level - depth().
  std::size_t output_level() const;
  /// Bytes held by the precomputed CoeffsToSlots and SlotsToCoeffs diagonals.
  std::size_t precomputed_bytes() const { return cts_->bytes() + stc_->bytes(); }

  /// Client side: every key bootstrap() needs, for the secret key sk (samples the ephemeral
  /// key and wipes it afterwards).
  BootstrapKeys generate_keys(ckks::KeyGenerator& kg, const rlwe::SecretKey& sk) const;
  bool encapsulated() const { return p_.ephemeral_hamming_weight != 0; }
  /// The keys as a sequence of serialized objects (ckks/serialization.h): the Galois keys,
  /// then, when encapsulated, sparse-to-dense over the chain and dense-to-sparse over q0 * p0.
  void save_keys(const BootstrapKeys& keys, std::ostream& out) const;
  /// Throws ckks::SerializationError naming the problem (wrong context, missing keys, ...).
  BootstrapKeys load_keys(std::istream& in) const;

  /// Refreshes a ciphertext (any level; it is dropped to level 0 first).
  /// The output lands exactly on output_scale (0: the parameters' output scale).
  ckks::Ciphertext bootstrap(const ckks::Ciphertext& ct, const BootstrapKeys& keys,
                             double output_scale = 0) const;
  /// Refreshes two ciphertexts of real values (same scale) for the price of one: a + i b is
  /// bootstrapped onto half the output scale, then split by one conjugation (the sum with the
  /// conjugate doubles the values: bookkeeping makes that the output scale, no level).
  std::pair<ckks::Ciphertext, ckks::Ciphertext> bootstrap_real_pair(const ckks::Ciphertext& a,
                                                                    const ckks::Ciphertext& b,
                                                                    const BootstrapKeys& keys,
                                                                    double output_scale = 0) const;

  /// The stages of bootstrap(), exposed for benchmarks and tests.
  /// Level 0 -> top under the user's key (scaling, encapsulation, ModRaise, SubSum); the
  /// slots then hold (I + scale m / q0) in coefficient order.
  ckks::Ciphertext raise(const ckks::Ciphertext& ct, const BootstrapKeys& keys,
                         double& content_scale) const;
  ckks::Ciphertext coeffs_to_slots(const ckks::Ciphertext& ct, const BootstrapKeys& keys) const;
  /// EvalMod on the real and imaginary halves, recombined.
  ckks::Ciphertext eval_mod(const ckks::Ciphertext& ct, const BootstrapKeys& keys,
                            double content_scale, double output_scale = 0) const;
  ckks::Ciphertext slots_to_coeffs(const ckks::Ciphertext& ct, const BootstrapKeys& keys,
                                   double content_scale, double output_scale = 0) const;

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
  std::unique_ptr<rns::RnsContext> ctx0_;
  double out_scale_ = 0, stc_ratio_ = 1;  // q0 and p0 only: the dense-to-sparse key's base
};

}  // namespace hetal::circuits
