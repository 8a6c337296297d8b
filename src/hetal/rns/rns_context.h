// The RNS chain Q = q_0 ... q_{L-1} (ciphertext primes) and P = p_0 ... p_{K-1} (special primes
// for hybrid key switching), with per-prime NTT tables and the per-level tables for exact
// rescaling and for ModUp / ModDown (Han-Ki, CT-RSA 2020; Cheon et al., SAC 2018).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "hetal/core/modarith.h"
#include "hetal/ring/ntt.h"
#include "hetal/ring/poly.h"
#include "hetal/rns/base_converter.h"

namespace hetal::rns {

using core::u64;
using ring::RnsPoly;

class RnsContext {
 public:
  /// alpha: number of Q primes per key-switching digit (dnum = ceil(L / alpha)).
  RnsContext(int log_n, std::vector<u64> q, std::vector<u64> p, std::size_t alpha);

  int log_n() const { return log_n_; }
  std::size_t n() const { return n_; }
  std::size_t q_count() const { return q_.size(); }
  std::size_t p_count() const { return p_.size(); }
  std::size_t alpha() const { return alpha_; }
  /// Number of key-switching digits for a polynomial with nq ciphertext limbs.
  std::size_t digits(std::size_t nq) const { return (nq + alpha_ - 1) / alpha_; }

  const std::vector<u64>& q_primes() const { return q_; }
  const std::vector<u64>& p_primes() const { return p_; }
  const ring::NttTables& q_ntt(std::size_t i) const { return *q_ntt_[i]; }
  const ring::NttTables& p_ntt(std::size_t i) const { return *p_ntt_[i]; }
  /// Tables of limb i of a polynomial with nq ciphertext limbs.
  const ring::NttTables& ntt_of(std::size_t nq, std::size_t i) const {
    return i < nq ? *q_ntt_[i] : *p_ntt_[i - nq];
  }
  const core::Modulus& mod_of(std::size_t nq, std::size_t i) const {
    return ntt_of(nq, i).modulus();
  }
  /// P mod q_i.
  u64 p_mod_q(std::size_t i) const { return p_mod_q_[i]; }

  RnsPoly make_poly(std::size_t nq, bool with_p = false) const {
    return RnsPoly(n_, nq, with_p ? p_.size() : 0);
  }

  // --- transforms (all limbs; outputs fully reduced) ---
  void ntt(RnsPoly& a) const;
  void intt(RnsPoly& a) const;

  // --- element-wise arithmetic (same shape required; b may alias a) ---
  void add_inplace(RnsPoly& a, const RnsPoly& b) const;
  void sub_inplace(RnsPoly& a, const RnsPoly& b) const;
  void negate_inplace(RnsPoly& a) const;
  /// a *= b pointwise (NTT form).
  void mul_inplace(RnsPoly& a, const RnsPoly& b) const;
  /// out = a * b pointwise.
  void mul(const RnsPoly& a, const RnsPoly& b, RnsPoly& out) const;
  /// acc += a * b pointwise.
  void mul_add_inplace(RnsPoly& acc, const RnsPoly& a, const RnsPoly& b) const;
  /// a[limb i] *= c[i] (c[i] reduced mod that limb's prime).
  void mul_scalar_inplace(RnsPoly& a, const std::vector<u64>& c) const;
  /// a[limb i] += c[i].
  void add_scalar_inplace(RnsPoly& a, const std::vector<u64>& c) const;

  /// Residues of small signed coefficients into every limb (coefficient form).
  void set_signed(RnsPoly& a, const std::int64_t* coeffs) const;

  // --- modulus switching (NTT form in and out) ---
  /// Exact divide-and-round by the last ciphertext prime; drops that limb.
  void rescale_inplace(RnsPoly& a) const;
  /// ModUp of every digit of c (nq limbs, NTT form): digit d -> (nq + K) limbs, NTT form.
  void decompose(const RnsPoly& c_ntt, std::vector<RnsPoly>& digits) const;
  /// x (nq + K limbs, NTT form) -> round(x / P) on the nq ciphertext limbs, NTT form.
  void mod_down(const RnsPoly& x, RnsPoly& out) const;
  /// acc += round(x / P).
  void mod_down_add(const RnsPoly& x, RnsPoly& acc) const;
  /// ModDown of `count` polynomials at once (out_j = or += x_j / P); consumes the x_j (their P
  /// limbs are overwritten). Processing them together balances the threads.
  /// If `addend` is given, out_j = perm(addend_j) + x_j / P instead (perm: an NTT-domain
  /// automorphism map, or null for the identity): a rotation's c0 is permuted in this pass.
  void mod_down_many(RnsPoly* const* x, RnsPoly* const* out, const bool* accumulate,
                     std::size_t count, const RnsPoly* const* addend = nullptr,
                     const std::uint32_t* perm = nullptr) const;

 private:
  int log_n_;
  std::size_t n_;
  std::vector<u64> q_, p_;
  std::size_t alpha_;
  std::vector<std::unique_ptr<ring::NttTables>> q_ntt_, p_ntt_;
  std::vector<u64> p_mod_q_;
  // rescale_[l][i]: for the last prime q_l, (q_l mod q_i, q_l^-1 mod q_i as Shoup constant).
  std::vector<std::vector<u64>> rescale_ql_mod_;
  std::vector<std::vector<core::ShoupConst>> rescale_inv_;
  // modup_[d][s-1]: converter from digit d's first s primes to all Q and P primes.
  std::vector<std::vector<std::unique_ptr<BaseConverter>>> modup_;
  std::unique_ptr<BaseConverter> moddown_;  // P -> Q
  std::vector<core::ShoupConst> p_inv_;     // P^-1 mod q_i
};

}  // namespace hetal::rns
