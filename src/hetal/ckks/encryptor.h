// Encryption (public key, or secret key with a seeded uniform part) and decryption.
#pragma once

#include <optional>

#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"
#include "hetal/core/sampler.h"
#include "hetal/rlwe/keys.h"

namespace hetal::ckks {

class Encryptor {
 public:
  Encryptor(const Context& ctx, const rlwe::PublicKey& pk,
            std::optional<core::Seed> seed = std::nullopt);
  Encryptor(const Context& ctx, const rlwe::SecretKey& sk,
            std::optional<core::Seed> seed = std::nullopt);
  // The encryptor keeps references: temporaries would dangle.
  Encryptor(const Context&, rlwe::PublicKey&&, std::optional<core::Seed> = std::nullopt) = delete;
  Encryptor(const Context&, rlwe::SecretKey&&, std::optional<core::Seed> = std::nullopt) = delete;
  Encryptor(Context&&, const rlwe::PublicKey&, std::optional<core::Seed> = std::nullopt) = delete;
  Encryptor(Context&&, const rlwe::SecretKey&, std::optional<core::Seed> = std::nullopt) = delete;

  Ciphertext encrypt(const Plaintext& pt);
  /// Secret-key mode only: c1 is carried as a 32-byte seed (half the upload).
  SeededCiphertext encrypt_seeded(const Plaintext& pt);
  /// An encryption of zero at `level`.
  Ciphertext encrypt_zero(std::size_t level, double scale, std::size_t slots);

 private:
  const Context& ctx_;
  const rlwe::PublicKey* pk_ = nullptr;
  const rlwe::SecretKey* sk_ = nullptr;
  core::GaussianSampler gauss_;
  core::Prng prng_;
};

/// Regenerates c1 of a seeded ciphertext.
Ciphertext expand(const Context& ctx, const SeededCiphertext& sct);

class Decryptor {
 public:
  Decryptor(const Context& ctx, const rlwe::SecretKey& sk);
  Decryptor(const Context&, rlwe::SecretKey&&) = delete;  // keeps a reference
  Decryptor(Context&&, const rlwe::SecretKey&) = delete;
  Plaintext decrypt(const Ciphertext& ct) const;

 private:
  const Context& ctx_;
  const rlwe::SecretKey& sk_;
};

}  // namespace hetal::ckks
