#include "hetal/ckks/parameters.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "hetal/core/primes.h"

namespace hetal::ckks {

namespace {
std::vector<int> repeat(int bits, int count) { return std::vector<int>(count, bits); }
std::vector<int> concat(std::initializer_list<std::vector<int>> parts) {
  std::vector<int> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
}  // namespace

Parameters Parameters::preset(Preset p) {
  Parameters r;
  switch (p) {
    case Preset::T13:
      r.name = "T13";
      r.log_n = 13;
      r.q_bits = {50, 40, 40};
      r.p_bits = {60};
      r.dnum = 3;
      r.secret = {SecretDistribution::Kind::uniform_ternary, 0};
      break;
    case Preset::T14:
      r.name = "T14";
      r.log_n = 14;
      r.q_bits = concat({{60}, repeat(40, 6)});
      r.p_bits = {60, 60};
      r.dnum = 4;
      r.secret = {SecretDistribution::Kind::uniform_ternary, 0};
      break;
    case Preset::B16_H192:
    case Preset::TB13_INSECURE:
      r.name = p == Preset::B16_H192 ? "B16-H192" : "TB13-INSECURE";
      r.log_n = p == Preset::B16_H192 ? 16 : 13;
      // user: q0 and 9 levels at 2^40 | SlotsToCoeffs | EvalMod | CoeffsToSlots (SSE paper,
      // eprint 2022/024, the N16QP1546H192H32 layout)
      r.q_bits = concat({{60}, repeat(40, 9), repeat(39, 3), repeat(60, 8), repeat(56, 4)});
      r.p_bits = repeat(61, 5);
      r.dnum = 5;
      r.secret = {SecretDistribution::Kind::sparse_ternary, 192};
      r.user_q_count = 10;
      break;
  }
  r.materialize();
  return r;
}

void Parameters::materialize() {
  if (log_n < 10 || log_n > 17) throw std::invalid_argument("log N must be in 10..17");
  if (q_primes.empty()) {
    if (q_bits.empty()) throw std::invalid_argument("no ciphertext primes given");
    q_primes = core::generate_ntt_primes(log_n, q_bits);
  }
  if (p_primes.empty() && !p_bits.empty()) {
    p_primes = core::generate_ntt_primes(log_n, p_bits, q_primes);
  }
  if (user_q_count > q_primes.size()) throw std::invalid_argument("user_q_count exceeds the chain");
  if (dnum > q_primes.size()) throw std::invalid_argument("dnum exceeds the number of Q primes");
  if (log_scale < 1 || log_scale > 60) throw std::invalid_argument("log scale must be in 1..60");
}

std::size_t Parameters::alpha() const {
  const std::size_t L = q_primes.size();
  if (dnum == 0) return p_primes.empty() ? 1 : std::min(L, p_primes.size());
  return (L + dnum - 1) / dnum;
}

double Parameters::log_q() const {
  double s = 0;
  for (auto q : q_primes) s += std::log2(static_cast<double>(q));
  return s;
}
double Parameters::log_p() const {
  double s = 0;
  for (auto q : p_primes) s += std::log2(static_cast<double>(q));
  return s;
}
double Parameters::default_scale() const { return std::ldexp(1.0, log_scale); }

double max_log_qp_128(int log_n, const SecretDistribution& secret) {
  if (secret.kind == SecretDistribution::Kind::uniform_ternary) {
    switch (log_n) {
      case 10:
        return 27;
      case 11:
        return 54;
      case 12:
        return 109;
      case 13:
        return 218;
      case 14:
        return 438;
      case 15:
        return 881;
      case 16:
        return 1747;
      case 17:
        return 3523;
      default:
        return 0;
    }
  }
  // Sparse secrets are outside the standard. The de-facto 128-bit budget for h >= 192 at
  // N = 2^16 is 1555 bits (HEaaN FGb; Lattigo's h = 192 sets); nothing else is accepted.
  if (log_n == 16 && secret.hamming_weight >= 192) return 1555;
  return 0;
}

SecurityReport security_report(const Parameters& p) {
  SecurityReport r;
  r.log_qp = p.log_qp();
  r.limit = max_log_qp_128(p.log_n, p.secret);
  std::ostringstream why;
  if (std::abs(p.sigma - 3.2) > 1e-9 && p.sigma < 3.2) {
    why << "error width sigma = " << p.sigma << " is below the standard's 3.2";
  } else if (r.limit == 0) {
    why << "no 128-bit bound is known for N = 2^" << p.log_n << " with "
        << (p.secret.kind == SecretDistribution::Kind::sparse_ternary
                ? "a sparse secret of weight " + std::to_string(p.secret.hamming_weight)
                : std::string("this secret"));
  } else if (r.log_qp > r.limit) {
    why << "log2(QP) = " << r.log_qp << " exceeds the 128-bit limit " << r.limit << " for N = 2^"
        << p.log_n;
  }
  r.reason = why.str();
  r.secure = r.reason.empty();
  return r;
}

}  // namespace hetal::ckks
