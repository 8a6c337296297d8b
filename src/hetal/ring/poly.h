// RNS polynomial: one contiguous, 64-byte aligned, limb-major buffer of (nq + np) x N words.
// Limbs 0..nq-1 are residues modulo the ciphertext primes q_0..q_{nq-1}; limbs nq..nq+np-1 are
// residues modulo the special primes p_0..p_{np-1} (present only inside key switching).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "hetal/core/memory.h"

namespace hetal::ring {

class RnsPoly {
 public:
  RnsPoly() = default;
  /// Zero polynomial.
  RnsPoly(std::size_t n, std::size_t nq, std::size_t np = 0)
      : n_(n), nq_(nq), np_(np), data_(n * (nq + np), 0) {}
  /// Contents unspecified: for outputs that are written in full.
  static RnsPoly uninitialized(std::size_t n, std::size_t nq, std::size_t np = 0) {
    RnsPoly p;
    p.reshape(n, nq, np);
    return p;
  }

  std::size_t n() const { return n_; }
  std::size_t nq() const { return nq_; }
  std::size_t np() const { return np_; }
  std::size_t limbs() const { return nq_ + np_; }
  bool empty() const { return data_.empty(); }

  std::uint64_t* limb(std::size_t i) { return data_.data() + i * n_; }
  const std::uint64_t* limb(std::size_t i) const { return data_.data() + i * n_; }
  std::uint64_t* data() { return data_.data(); }
  const std::uint64_t* data() const { return data_.data(); }
  std::size_t size() const { return data_.size(); }

  /// Keeps the first `nq` ciphertext limbs (a free modulus drop in NTT or coefficient form).
  void drop_to(std::size_t nq) {
    if (np_ != 0) throw std::logic_error("drop_to on a polynomial with special-prime limbs");
    if (nq > nq_) throw std::logic_error("drop_to cannot raise the level");
    nq_ = nq;
    data_.resize(n_ * nq_);
  }
  /// Reshapes to (nq, np) limbs; contents are unspecified afterwards (reuses the buffer).
  void reshape(std::size_t n, std::size_t nq, std::size_t np) {
    n_ = n;
    nq_ = nq;
    np_ = np;
    data_.resize(n * (nq + np));
  }

  bool operator==(const RnsPoly& o) const {
    return n_ == o.n_ && nq_ == o.nq_ && np_ == o.np_ && data_ == o.data_;
  }

 private:
  std::size_t n_ = 0, nq_ = 0, np_ = 0;
  core::WordVector data_;
};

}  // namespace hetal::ring
