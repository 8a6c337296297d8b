#include "hetal/rns/rns_context.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hetal::rns {

using core::Modulus;
using core::ShoupConst;

namespace {
void check_same_shape(const RnsPoly& a, const RnsPoly& b) {
  if (a.n() != b.n() || a.nq() != b.nq() || a.np() != b.np()) {
    throw std::invalid_argument("polynomial shapes differ (" + std::to_string(a.nq()) + "+" +
                                std::to_string(a.np()) + " vs " + std::to_string(b.nq()) + "+" +
                                std::to_string(b.np()) + " limbs)");
  }
}
// Parallelise over limbs only when there is enough work to pay for the fork.
inline bool par(std::size_t limbs, std::size_t n) { return limbs > 1 && limbs * n >= (1u << 14); }
}  // namespace

RnsContext::RnsContext(int log_n, std::vector<u64> q, std::vector<u64> p, std::size_t alpha)
    : log_n_(log_n),
      n_(std::size_t{1} << log_n),
      q_(std::move(q)),
      p_(std::move(p)),
      alpha_(alpha) {
  if (q_.empty()) throw std::invalid_argument("the ciphertext modulus chain is empty");
  if (alpha_ == 0 || alpha_ > 15) throw std::invalid_argument("digit size must be in 1..15 primes");
  for (u64 x : q_) q_ntt_.push_back(std::make_unique<ring::NttTables>(x, log_n));
  for (u64 x : p_) p_ntt_.push_back(std::make_unique<ring::NttTables>(x, log_n));
  const std::size_t L = q_.size(), K = p_.size();

  p_mod_q_.resize(L);
  p_inv_.resize(L);
  for (std::size_t i = 0; i < L; ++i) {
    const Modulus& m = q_ntt_[i]->modulus();
    u64 prod = 1;
    for (u64 pj : p_) prod = m.mul(prod, m.reduce(pj));
    p_mod_q_[i] = prod;
    p_inv_[i] = ShoupConst(K ? m.inv(prod) : 1, m.value);
  }

  rescale_ql_mod_.resize(L);
  rescale_inv_.resize(L);
  for (std::size_t l = 1; l < L; ++l) {
    for (std::size_t i = 0; i < l; ++i) {
      const Modulus& m = q_ntt_[i]->modulus();
      const u64 ql = m.reduce(q_[l]);
      rescale_ql_mod_[l].push_back(ql);
      rescale_inv_[l].push_back(ShoupConst(m.inv(ql), m.value));
    }
  }

  std::vector<Modulus> all;
  for (auto& t : q_ntt_) all.push_back(t->modulus());
  for (auto& t : p_ntt_) all.push_back(t->modulus());
  if (K > 0) {
    const std::size_t D = (L + alpha_ - 1) / alpha_;
    modup_.resize(D);
    for (std::size_t d = 0; d < D; ++d) {
      const std::size_t s = d * alpha_, full = std::min(alpha_, L - s);
      for (std::size_t size = 1; size <= full; ++size) {
        std::vector<Modulus> from(all.begin() + s, all.begin() + s + size);
        modup_[d].push_back(std::make_unique<BaseConverter>(from, all));
      }
    }
    std::vector<Modulus> pm(all.begin() + L, all.end()), qm(all.begin(), all.begin() + L);
    moddown_ = std::make_unique<BaseConverter>(pm, qm);
  }
}

void RnsContext::ntt(RnsPoly& a) const {
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) ntt_of(nq, i).forward(a.limb(i));
}

void RnsContext::intt(RnsPoly& a) const {
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) ntt_of(nq, i).inverse(a.limb(i));
}

void RnsContext::add_inplace(RnsPoly& a, const RnsPoly& b) const {
  check_same_shape(a, b);
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) {
    const u64 q = mod_of(nq, i).value;
    u64* x = a.limb(i);
    const u64* y = b.limb(i);
    for (std::size_t k = 0; k < n_; ++k) x[k] = core::reduce_once(x[k] + y[k], q);
  }
}

void RnsContext::sub_inplace(RnsPoly& a, const RnsPoly& b) const {
  check_same_shape(a, b);
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) {
    const u64 q = mod_of(nq, i).value;
    u64* x = a.limb(i);
    const u64* y = b.limb(i);
    for (std::size_t k = 0; k < n_; ++k) x[k] = core::reduce_once(x[k] + q - y[k], q);
  }
}

void RnsContext::negate_inplace(RnsPoly& a) const {
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) {
    const u64 q = mod_of(nq, i).value;
    u64* x = a.limb(i);
    for (std::size_t k = 0; k < n_; ++k) x[k] = core::reduce_once(q - x[k], q);
  }
}

void RnsContext::mul_inplace(RnsPoly& a, const RnsPoly& b) const { mul(a, b, a); }

void RnsContext::mul(const RnsPoly& a, const RnsPoly& b, RnsPoly& out) const {
  check_same_shape(a, b);
  if (&out != &a && &out != &b) out.reshape(a.n(), a.nq(), a.np());
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) {
    const Modulus& m = mod_of(nq, i);
    const u64* x = a.limb(i);
    const u64* y = b.limb(i);
    u64* z = out.limb(i);
    for (std::size_t k = 0; k < n_; ++k) z[k] = m.mul(x[k], y[k]);
  }
}

void RnsContext::mul_add_inplace(RnsPoly& acc, const RnsPoly& a, const RnsPoly& b) const {
  check_same_shape(a, b);
  check_same_shape(acc, a);
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) {
    const Modulus& m = mod_of(nq, i);
    const u64* x = a.limb(i);
    const u64* y = b.limb(i);
    u64* z = acc.limb(i);
    for (std::size_t k = 0; k < n_; ++k) {
      z[k] = m.reduce128(static_cast<core::u128>(x[k]) * y[k] + z[k]);
    }
  }
}

void RnsContext::mul_scalar_inplace(RnsPoly& a, const std::vector<u64>& c) const {
  if (c.size() < a.limbs()) throw std::invalid_argument("one scalar per limb required");
  const std::size_t nq = a.nq(), limbs = a.limbs();
#pragma omp parallel for schedule(static) if (par(limbs, n_))
  for (std::size_t i = 0; i < limbs; ++i) {
    const u64 q = mod_of(nq, i).value;
    const ShoupConst s(c[i], q);
    u64* x = a.limb(i);
    for (std::size_t k = 0; k < n_; ++k) x[k] = core::mul_shoup(x[k], s, q);
  }
}

void RnsContext::add_scalar_inplace(RnsPoly& a, const std::vector<u64>& c) const {
  if (c.size() < a.limbs()) throw std::invalid_argument("one scalar per limb required");
  const std::size_t nq = a.nq(), limbs = a.limbs();
  for (std::size_t i = 0; i < limbs; ++i) {
    const u64 q = mod_of(nq, i).value;
    u64* x = a.limb(i);
    for (std::size_t k = 0; k < n_; ++k) x[k] = core::reduce_once(x[k] + c[i], q);
  }
}

void RnsContext::set_signed(RnsPoly& a, const std::int64_t* coeffs) const {
  const std::size_t nq = a.nq();
  for (std::size_t i = 0; i < a.limbs(); ++i) {
    const Modulus& m = mod_of(nq, i);
    u64* x = a.limb(i);
    for (std::size_t k = 0; k < n_; ++k) x[k] = m.from_signed(coeffs[k]);
  }
}

void RnsContext::rescale_inplace(RnsPoly& a) const {
  const std::size_t nq = a.nq();
  if (a.np() != 0) throw std::logic_error("rescale of a polynomial with special limbs");
  if (nq < 2) throw std::invalid_argument("cannot rescale at level 0: no prime left to divide by");
  const std::size_t l = nq - 1;
  const Modulus& ml = q_ntt_[l]->modulus();
  core::WordVector last(a.limb(l), a.limb(l) + n_);
  q_ntt_[l]->inverse(last.data());
  const u64 half = ml.value >> 1;
#pragma omp parallel
  {
    core::WordVector tmp(n_);
#pragma omp for schedule(static)
    for (std::size_t i = 0; i < l; ++i) {
      const ring::NttTables& t = *q_ntt_[i];
      const u64 qi = t.q();
      const u64 ql_mod = rescale_ql_mod_[l][i];
      const Modulus& mi = t.modulus();
      // Centered remainder of each coefficient mod q_l, taken mod q_i.
      for (std::size_t k = 0; k < n_; ++k) {
        const u64 v = last[k];
        u64 r = mi.reduce(v);
        if (v > half) r = mi.sub(r, ql_mod);
        tmp[k] = r;
      }
      t.forward_lazy(tmp.data());
      const ShoupConst inv = rescale_inv_[l][i];
      u64* x = a.limb(i);
      for (std::size_t k = 0; k < n_; ++k) x[k] = core::mul_shoup(x[k] + 4 * qi - tmp[k], inv, qi);
    }
  }
  a.drop_to(l);
}

void RnsContext::decompose(const RnsPoly& c_ntt, std::vector<RnsPoly>& out) const {
  const std::size_t nq = c_ntt.nq(), L = q_.size(), K = p_.size();
  if (K == 0) throw std::logic_error("key switching needs special primes P");
  if (c_ntt.np() != 0) throw std::logic_error("decompose expects a ciphertext-limb polynomial");
  RnsPoly c = c_ntt;
  intt(c);
  const std::size_t D = digits(nq);
  out.resize(D);
  for (std::size_t d = 0; d < D; ++d) {
    const std::size_t s = d * alpha_, e = std::min(s + alpha_, nq), size = e - s;
    RnsPoly& dig = out[d];
    dig.reshape(n_, nq, K);
    std::vector<const u64*> in(size);
    for (std::size_t j = 0; j < size; ++j) in[j] = c.limb(s + j);
    std::vector<std::size_t> targets;
    std::vector<u64*> outs;
    std::vector<std::size_t> out_limbs;
    for (std::size_t i = 0; i < nq + K; ++i) {
      if (i >= s && i < e) continue;
      targets.push_back(i < nq ? i : L + (i - nq));
      outs.push_back(dig.limb(i));
      out_limbs.push_back(i);
    }
    modup_[d][size - 1]->convert(in.data(), n_, targets.data(), targets.size(), outs.data());
    for (std::size_t j = s; j < e; ++j) std::memcpy(dig.limb(j), c_ntt.limb(j), n_ * sizeof(u64));
#pragma omp parallel for schedule(static)
    for (std::size_t k = 0; k < out_limbs.size(); ++k) {
      const std::size_t i = out_limbs[k];
      ntt_of(nq, i).forward(dig.limb(i));
    }
  }
}

void RnsContext::mod_down_many(RnsPoly* const* x, RnsPoly* const* out, const bool* accumulate,
                               std::size_t count, const RnsPoly* const* addend,
                               const std::uint32_t* perm) const {
  // out_j (+)= (x_j - NTT(BaseConv_{P->Q}(INTT(x_j,P)))) * P^-1 on the nq ciphertext limbs.
  // All polynomials go through each step together so that both threads stay busy.
  const std::size_t K = p_.size();
  if (count == 0) return;
  const std::size_t nq = x[0]->nq();
  for (std::size_t j = 0; j < count; ++j) {
    if (x[j]->np() != K || x[j]->nq() != nq) throw std::logic_error("mod_down expects Q_l P limbs");
    if (addend && addend[j] &&
        (addend[j]->nq() < nq || addend[j]->n() != n_ || out[j] == addend[j])) {
      throw std::logic_error("mod_down addend shape mismatch");
    }
    if (accumulate[j] && !(addend && addend[j]) && (out[j]->nq() != nq || out[j]->np() != 0)) {
      throw std::logic_error("mod_down accumulator shape mismatch");
    }
  }
#pragma omp parallel for schedule(static) if (count * K > 1)
  for (std::size_t t = 0; t < count * K; ++t) {
    p_ntt_[t % K]->inverse(x[t / K]->limb(nq + t % K));
  }
  std::vector<RnsPoly> tmp(count);
  std::vector<std::size_t> targets(nq);
  for (std::size_t i = 0; i < nq; ++i) targets[i] = i;
  for (std::size_t j = 0; j < count; ++j) {
    tmp[j].reshape(n_, nq, 0);
    std::vector<const u64*> in(K);
    for (std::size_t k = 0; k < K; ++k) in[k] = x[j]->limb(nq + k);
    std::vector<u64*> outs(nq);
    for (std::size_t i = 0; i < nq; ++i) outs[i] = tmp[j].limb(i);
    moddown_->convert(in.data(), n_, targets.data(), nq, outs.data());
    if (!accumulate[j] || (addend && addend[j])) out[j]->reshape(n_, nq, 0);
  }
#pragma omp parallel for schedule(static)
  for (std::size_t t = 0; t < count * nq; ++t) {
    const std::size_t j = t / nq, i = t % nq;
    u64* tl = tmp[j].limb(i);
    q_ntt_[i]->forward_lazy(tl);
    const u64 q = q_[i];
    const ShoupConst pinv = p_inv_[i];
    const u64* a = x[j]->limb(i);
    u64* o = out[j]->limb(i);
    const RnsPoly* add = addend ? addend[j] : nullptr;
    if (add) {
      const u64* c = add->limb(i);
      for (std::size_t k = 0; k < n_; ++k) {
        // The permuted reads miss the cache: prefetch them ahead.
        if (perm && k + 48 < n_) __builtin_prefetch(c + perm[k + 48]);
        const u64 ck = perm ? c[perm[k]] : c[k];
        o[k] = core::reduce_once(ck + core::mul_shoup(a[k] + 4 * q - tl[k], pinv, q), q);
      }
    } else if (accumulate[j]) {
      for (std::size_t k = 0; k < n_; ++k) {
        o[k] = core::reduce_once(o[k] + core::mul_shoup(a[k] + 4 * q - tl[k], pinv, q), q);
      }
    } else {
      for (std::size_t k = 0; k < n_; ++k) o[k] = core::mul_shoup(a[k] + 4 * q - tl[k], pinv, q);
    }
  }
}

void RnsContext::mod_down(const RnsPoly& x, RnsPoly& out) const {
  RnsPoly t = x;
  RnsPoly* xs[] = {&t};
  RnsPoly* os[] = {&out};
  const bool acc[] = {false};
  mod_down_many(xs, os, acc, 1);
}

void RnsContext::mod_down_add(const RnsPoly& x, RnsPoly& acc) const {
  RnsPoly t = x;
  RnsPoly* xs[] = {&t};
  RnsPoly* os[] = {&acc};
  const bool a[] = {true};
  mod_down_many(xs, os, a, 1);
}

}  // namespace hetal::rns
