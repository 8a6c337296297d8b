#include "hetal/ckks/keygen.h"

#include <stdexcept>
#include <string>

#include "hetal/ring/automorphism.h"

namespace hetal::ckks {

KeyGenerator::KeyGenerator(const Context& ctx, std::optional<core::Seed> seed)
    : ctx_(ctx),
      kg_(ctx.rns(), ctx.params().secret, ctx.params().sigma),
      prng_(seed ? *seed : core::os_seed()) {}

std::size_t KeyGenerator::key_nq(std::optional<std::size_t> level) const {
  const std::size_t l = level.value_or(ctx_.max_level());
  if (l > ctx_.max_level()) {
    throw std::invalid_argument("key level " + std::to_string(l) + " is above the chain's top " +
                                std::to_string(ctx_.max_level()));
  }
  return l + 1;
}

SecretKey KeyGenerator::secret_key() { return kg_.secret_key(prng_); }

PublicKey KeyGenerator::public_key(const SecretKey& sk) { return kg_.public_key(sk, prng_); }

RelinKey KeyGenerator::relin_key(const SecretKey& sk, std::optional<std::size_t> level) {
  return kg_.relin_key(sk, key_nq(level), prng_);
}

SecretKey KeyGenerator::sparse_secret_key(std::size_t hamming_weight) {
  const rlwe::KeyGenerator kg(ctx_.rns(),
                              {rlwe::SecretDistribution::Kind::sparse_ternary, hamming_weight},
                              ctx_.params().sigma);
  return kg.secret_key(prng_);
}

rlwe::SwitchingKey KeyGenerator::switching_key(const SecretKey& to, const SecretKey& from,
                                               std::optional<std::size_t> level) {
  return kg_.switching_key(to, from.ntt, key_nq(level), prng_);
}

void KeyGenerator::add_galois_key(const SecretKey& sk, std::uint64_t galois, GaloisKeys& keys,
                                  std::optional<std::size_t> level) {
  if (galois == 1 || keys.has(galois)) return;
  keys.keys.emplace(galois, kg_.galois_key(sk, galois, key_nq(level), prng_));
}

GaloisKeys KeyGenerator::galois_keys(const SecretKey& sk, std::span<const long long> steps,
                                     bool conjugation, std::optional<std::size_t> level) {
  GaloisKeys keys;
  for (long long k : steps) {
    add_galois_key(sk, ring::galois_element_for_rotation(ctx_.log_n(), k), keys, level);
  }
  if (conjugation) add_galois_key(sk, ring::galois_element_conjugate(ctx_.log_n()), keys, level);
  return keys;
}

GaloisKeys KeyGenerator::galois_keys_pow2(const SecretKey& sk, std::optional<std::size_t> level) {
  std::vector<long long> steps;
  for (long long s = 1; s < static_cast<long long>(ctx_.max_slots()); s <<= 1) {
    steps.push_back(s);
    steps.push_back(-s);
  }
  return galois_keys(sk, steps, true, level);
}

}  // namespace hetal::ckks
