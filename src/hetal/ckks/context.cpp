#include "hetal/ckks/context.h"

#include <cmath>
#include <numbers>
#include <set>
#include <stdexcept>
#include <string>

#include "hetal/core/primes.h"

namespace hetal::ckks {

namespace {
std::uint64_t fnv1a(std::uint64_t h, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 0x100000001b3ull;
  }
  return h;
}

void validate_primes(const Parameters& p) {
  std::set<std::uint64_t> seen;
  const std::uint64_t m = std::uint64_t{2} << p.log_n;
  auto check = [&](std::uint64_t q, const char* what) {
    if (q >= (std::uint64_t{1} << core::kMaxPrimeBits) || q < (std::uint64_t{1} << (p.log_n + 2))) {
      throw std::invalid_argument(std::string(what) + " prime " + std::to_string(q) +
                                  " is outside the supported size range");
    }
    if (q % m != 1) {
      throw std::invalid_argument(std::string(what) + " prime " + std::to_string(q) +
                                  " is not 1 mod 2N: no negacyclic NTT");
    }
    if (!core::is_prime(q)) throw std::invalid_argument(std::to_string(q) + " is not prime");
    if (!seen.insert(q).second) {
      throw std::invalid_argument("prime " + std::to_string(q) + " appears twice in the chain");
    }
  };
  for (auto q : p.q_primes) check(q, "ciphertext");
  for (auto q : p.p_primes) check(q, "special");
}
}  // namespace

Context::Context(Parameters params, SecurityPolicy policy) : params_(std::move(params)) {
  params_.materialize();
  validate_primes(params_);
  security_ = security_report(params_);
  if (!security_.secure && policy != SecurityPolicy::allow_insecure) {
    throw std::invalid_argument("parameter set '" + params_.name +
                                "' is not 128-bit secure: " + security_.reason +
                                ". Insecure parameters are for tests only and load only with an "
                                "explicit opt-in (SecurityPolicy::allow_insecure / --insecure).");
  }
  // Noise of key switching grows with (largest digit) / P: refuse digits much larger than P.
  if (!params_.p_primes.empty()) {
    const std::size_t alpha = params_.alpha();
    double worst = 0;
    for (std::size_t s = 0; s < params_.q_primes.size(); s += alpha) {
      double bits = 0;
      for (std::size_t i = s; i < std::min(s + alpha, params_.q_primes.size()); ++i) {
        bits += std::log2(static_cast<double>(params_.q_primes[i]));
      }
      worst = std::max(worst, bits);
    }
    if (worst > params_.log_p() + 20) {
      throw std::invalid_argument("key-switching digit of " + std::to_string(worst) +
                                  " bits is far larger than P (" + std::to_string(params_.log_p()) +
                                  " bits): raise dnum or add special primes");
    }
  }
  rns_ = std::make_unique<rns::RnsContext>(params_.log_n, params_.q_primes, params_.p_primes,
                                           params_.alpha());

  std::uint64_t h = 0xcbf29ce484222325ull;
  h = fnv1a(h, static_cast<std::uint64_t>(params_.log_n));
  for (auto q : params_.q_primes) h = fnv1a(h, q);
  h = fnv1a(h, 0xffff);
  for (auto q : params_.p_primes) h = fnv1a(h, q);
  h = fnv1a(h, params_.alpha());
  h = fnv1a(h, static_cast<std::uint64_t>(params_.secret.kind));
  h = fnv1a(h, params_.secret.hamming_weight);
  fingerprint_ = h;

  const std::size_t m = 2 * n();
  roots_.resize(m);
  for (std::size_t k = 0; k < m; ++k) {
    const long double a = 2.0L * std::numbers::pi_v<long double> * k / m;
    roots_[k] = {static_cast<double>(std::cos(a)), static_cast<double>(std::sin(a))};
  }
  rot_group_.resize(n() / 2);
  std::uint64_t g = 1;
  for (auto& r : rot_group_) {
    r = g;
    g = (g * 5) % m;
  }
}

}  // namespace hetal::ckks
