// Key generation and RLWE encryption of zero.
#pragma once

#include <cstddef>
#include <vector>

#include "hetal/core/prng.h"
#include "hetal/core/sampler.h"
#include "hetal/rlwe/keys.h"
#include "hetal/rns/rns_context.h"

namespace hetal::rlwe {

/// Stream tags of the seeded uniform polynomials (part of the serialized format: never change).
inline constexpr std::uint64_t kTagPublicKey = 0;
inline constexpr std::uint64_t kTagCiphertext = 1;
inline constexpr std::uint64_t kTagSwitchingKey = 16;  ///< + digit index

/// Samples the uniform polynomial of `seed` on limbs [0, nq) of Q and, if with_p, on all of P,
/// directly in the NTT domain. Limb j of Q always comes from stream (tag, j) and limb j of P
/// from (tag, L + j), so a lower-level key regenerates a prefix of the same polynomial.
void sample_uniform_seeded(const rns::RnsContext& ctx, const core::Seed& seed, std::uint64_t tag,
                           RnsPoly& out, std::size_t nq, bool with_p);
/// The ChaCha stream of limb `global` of a uniform polynomial with this tag.
inline std::uint64_t uniform_stream(std::uint64_t tag, std::size_t global) {
  return (tag << 16) | global;
}
/// One limb of it: stream (tag, global), uniform below q, n words.
void sample_uniform_limb(const core::Seed& seed, std::uint64_t tag, std::size_t global,
                         std::uint64_t q, std::uint64_t* out, std::size_t n);

/// Small polynomial (signed coefficients) into NTT form on nq Q limbs (+ P limbs if with_p).
RnsPoly small_to_ntt(const rns::RnsContext& ctx, const std::vector<std::int64_t>& coeffs,
                     std::size_t nq, bool with_p);

class KeyGenerator {
 public:
  KeyGenerator(const rns::RnsContext& ctx, SecretDistribution dist, double sigma);

  SecretKey secret_key(core::Prng& prng) const;
  /// Secret key from given ternary coefficients (tests, the ephemeral key of bootstrapping).
  SecretKey secret_key_from(std::vector<std::int8_t> coeffs) const;
  PublicKey public_key(const SecretKey& sk, core::Prng& prng) const;
  /// Switching key from `from_ntt` (NTT form on all Q and P limbs) to sk, covering nq Q limbs.
  SwitchingKey switching_key(const SecretKey& sk, const RnsPoly& from_ntt, std::size_t nq,
                             core::Prng& prng) const;
  RelinKey relin_key(const SecretKey& sk, std::size_t nq, core::Prng& prng) const;
  SwitchingKey galois_key(const SecretKey& sk, std::uint64_t galois, std::size_t nq,
                          core::Prng& prng) const;

  const core::GaussianSampler& gaussian() const { return gauss_; }
  const rns::RnsContext& rns() const { return ctx_; }

 private:
  const rns::RnsContext& ctx_;
  SecretDistribution dist_;
  core::GaussianSampler gauss_;
};

/// Fresh encryption of zero at nq limbs under the public key: (v b + e0, v a + e1).
void encrypt_zero_public(const rns::RnsContext& ctx, const PublicKey& pk,
                         const core::GaussianSampler& gauss, std::size_t nq, core::Prng& prng,
                         RnsPoly& c0, RnsPoly& c1);
/// Fresh encryption of zero under the secret key with c1 = a regenerated from `seed`:
/// c0 = -a s + e.
void encrypt_zero_symmetric(const rns::RnsContext& ctx, const SecretKey& sk,
                            const core::GaussianSampler& gauss, std::size_t nq,
                            const core::Seed& seed, core::Prng& prng, RnsPoly& c0, RnsPoly& c1);

}  // namespace hetal::rlwe
