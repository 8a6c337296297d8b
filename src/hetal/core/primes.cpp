#include "hetal/core/primes.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

#include "hetal/core/modarith.h"

namespace hetal::core {

bool is_prime(u64 n) {
  if (n < 2) return false;
  for (u64 p : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    if (n % p == 0) return n == p;
  }
  u64 d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++s;
  }
  auto mulmod = [n](u64 a, u64 b) { return static_cast<u64>(static_cast<u128>(a) * b % n); };
  auto powmod = [&](u64 a, u64 e) {
    u64 r = 1;
    while (e) {
      if (e & 1) r = mulmod(r, a);
      a = mulmod(a, a);
      e >>= 1;
    }
    return r;
  };
  // These bases are a proven deterministic set for all n < 2^64.
  for (u64 a : {2ull, 325ull, 9375ull, 28178ull, 450775ull, 9780504ull, 1795265022ull}) {
    u64 x = powmod(a % n, d);
    if (x == 0 || x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int r = 1; r < s; ++r) {
      x = mulmod(x, x);
      if (x == n - 1) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

std::vector<u64> generate_ntt_primes(int log_n, const std::vector<int>& bits,
                                     const std::vector<u64>& exclude) {
  const u64 m = u64{2} << log_n;
  std::vector<u64> used(exclude);
  struct Cursor {
    u64 up, down;
    bool next_up;
  };
  std::map<int, Cursor> cursors;
  std::vector<u64> out;
  out.reserve(bits.size());
  for (int b : bits) {
    if (b < log_n + 2 || b > kMaxPrimeBits) {
      throw std::invalid_argument("prime size " + std::to_string(b) + " bits is out of range [" +
                                  std::to_string(log_n + 2) + ", " + std::to_string(kMaxPrimeBits) +
                                  "] for N = 2^" + std::to_string(log_n));
    }
    auto it = cursors.find(b);
    if (it == cursors.end()) {
      const u64 base = (u64{1} << b) + 1;  // = 1 mod 2N
      it = cursors.emplace(b, Cursor{base, base - m, true}).first;
    }
    Cursor& c = it->second;
    const u64 limit = u64{1} << kMaxPrimeBits;
    const u64 floor_ = u64{1} << (b - 1);
    for (;;) {
      const bool can_up = c.up < limit && b < kMaxPrimeBits;
      const bool use_up = can_up && (c.next_up || c.down <= floor_);
      if (!use_up && c.down <= floor_) {
        throw std::runtime_error("ran out of " + std::to_string(b) + "-bit NTT primes");
      }
      u64& cand = use_up ? c.up : c.down;
      const u64 q = cand;
      cand = use_up ? cand + m : cand - m;
      if (is_prime(q) && std::find(used.begin(), used.end(), q) == used.end()) {
        used.push_back(q);
        out.push_back(q);
        c.next_up = !use_up;
        break;
      }
    }
  }
  return out;
}

u64 primitive_root_2n(u64 q, int log_n) {
  const u64 m = u64{2} << log_n;
  if ((q - 1) % m != 0) throw std::invalid_argument("prime is not 1 mod 2N");
  const Modulus mod(q);
  const u64 half = u64{1} << log_n;  // psi^N must be -1
  for (u64 g = 2; g < 1000000; ++g) {
    const u64 psi = mod.pow(g, (q - 1) / m);
    if (mod.pow(psi, half) == q - 1) {
      // Take the smallest power psi^k (k odd) for a canonical choice.
      u64 best = psi, cur = psi;
      const u64 psi2 = mod.mul(psi, psi);
      for (u64 k = 1; k < m; k += 2) {
        best = std::min(best, cur);
        cur = mod.mul(cur, psi2);
      }
      return best;
    }
  }
  throw std::runtime_error("no primitive 2N-th root found");
}

}  // namespace hetal::core
