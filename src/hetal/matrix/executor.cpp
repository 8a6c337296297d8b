#include "hetal/matrix/executor.h"

#include <omp.h>

#include <exception>
#include <sstream>
#include <stdexcept>

namespace hetal::matrix {

OpCounts& OpCounts::operator+=(const OpCounts& o) {
  mult += o.mult;
  cmult += o.cmult;
  rot += o.rot;
  hoisted += o.hoisted;
  conj += o.conj;
  relin += o.relin;
  rescale += o.rescale;
  return *this;
}

std::string OpCounts::str() const {
  std::ostringstream s;
  s << "CMult/Mult/Rot = " << cmult << "/" << mult << "/" << rot << " (hoisted " << hoisted
    << ", conj " << conj << ", relin " << relin << ", rescale " << rescale << ")";
  return s.str();
}

Options Options::paper() {
  Options o;
  o.hoist = false;
  o.lazy_relin = false;
  o.fused_prot = false;
  o.precompute_rot_b = false;
  o.compact_replicate = false;
  o.lazy_rescale = false;
  o.fold_atb = false;
  return o;
}

std::string Options::str() const {
  if (!hoist && !lazy_relin && !fused_prot && !precompute_rot_b && !compact_replicate &&
      !lazy_rescale && !fold_atb) {
    return "paper";
  }
  if (hoist && lazy_relin && fused_prot && precompute_rot_b && compact_replicate && lazy_rescale &&
      fold_atb) {
    return "improved";
  }
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += "+";
    s += name;
  };
  add(hoist, "hoist");
  add(lazy_relin, "lazy-relin");
  add(fused_prot, "fused-prot");
  add(precompute_rot_b, "rot-b-once");
  add(compact_replicate, "compact-repl");
  add(lazy_rescale, "lazy-rescale");
  add(fold_atb, "fold-atb");
  return s;
}

Executor::Executor(const ckks::Context& ctx, const ckks::Encoder& enc, const ckks::Evaluator& ev,
                   const rlwe::RelinKey& rlk, const rlwe::GaloisKeys& gk, Options opt)
    : ctx_(&ctx), enc_(&enc), ev_(&ev), rlk_(&rlk), gk_(&gk), opt_(opt) {}

Executor::Executor(Options opt) : opt_(opt), dry_(true) {}

void Executor::set_dry(bool d) {
  if (!d && !ctx_) throw std::logic_error("Executor: a count-only executor cannot run ciphertexts");
  dry_ = d;
}

void Executor::set_slots(std::size_t slots, BlockShape block) {
  if (slots_ != 0 && slots_ != slots) {
    throw std::invalid_argument("Executor: operands with " + std::to_string(slots) +
                                " slots after " + std::to_string(slots_));
  }
  if (ctx_ && slots > ctx_->max_slots()) {
    throw std::invalid_argument("Executor: " + std::to_string(slots) +
                                " slots but N/2 = " + std::to_string(ctx_->max_slots()));
  }
  slots_ = slots;
  block_ = block;
}

void Executor::check_level(const Ct& a, const char* op) const {
  if (a.level == 0) {
    throw std::invalid_argument(std::string(op) +
                                ": ciphertext at level 0, no level left for a rescale (the "
                                "inputs need more levels for this algorithm)");
  }
}

void Executor::add(Ct& a, const Ct& b) {
  if (a.tensor != b.tensor || a.unscaled != b.unscaled) {
    throw std::logic_error("add: finished and unfinished products");
  }
  if (!dry_) ev_->add_inplace(a.c, b.c);
  a.level = std::min(a.level, b.level);
}

void Executor::sub(Ct& a, const Ct& b) {
  if (a.tensor != b.tensor || a.unscaled != b.unscaled) {
    throw std::logic_error("sub: finished and unfinished products");
  }
  if (!dry_) ev_->sub_inplace(a.c, b.c);
  a.level = std::min(a.level, b.level);
}

void Executor::mul_i(Ct& a) {
  if (!dry_) ev_->multiply_by_i_inplace(a.c);
}

void Executor::drop(Ct& a, std::size_t level) {
  if (level > a.level) {
    throw std::invalid_argument("drop: cannot raise level " + std::to_string(a.level) + " to " +
                                std::to_string(level));
  }
  if (!dry_) ev_->drop_to_level_inplace(a.c, level);
  a.level = level;
}

void Executor::record_step(long long k) {
  const long long S = static_cast<long long>(slots_);
  long long r = ((k % S) + S) % S;
  if (r > S / 2) r -= S;
  std::lock_guard<std::mutex> lock(mutex_);
  steps_.insert(r);
}

std::size_t Executor::threads() const {
  if (dry_ || !block_parallel_ || omp_in_parallel()) return 1;
  return static_cast<std::size_t>(std::max(1, omp_get_max_threads()));
}

void Executor::parallel_for(std::size_t n, const std::function<void(std::size_t)>& f) {
  if (threads() < 2 || n < 2) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::size_t i = 0; i < n; ++i) {
    try {
      f(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

Ct Executor::rot(const Ct& a, long long k) {
  if (a.tensor || a.unscaled) throw std::logic_error("rot: finish first");
  if (slots_ == 0) throw std::logic_error("rot: slots not set");
  if (k % static_cast<long long>(slots_) == 0) return a;
  record_step(k);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_.rot;
  }
  Ct r;
  r.level = a.level;
  if (!dry_) r.c = ev_->rotate(a.c, k, *gk_);
  return r;
}

std::vector<Ct> Executor::rot_many(const Ct& a, std::span<const long long> steps) {
  if (a.tensor || a.unscaled) throw std::logic_error("rot_many: finish first");
  std::vector<Ct> out(steps.size());
  std::size_t nonzero = 0;
  for (long long k : steps) nonzero += k % static_cast<long long>(slots_) != 0;
  if (!opt_.hoist || nonzero < 2) {
    for (std::size_t j = 0; j < steps.size(); ++j) out[j] = rot(a, steps[j]);
    return out;
  }
  rlwe::Decomposition dec;
  if (!dry_) dec = ev_->hoist(a.c);
  for (std::size_t j = 0; j < steps.size(); ++j) {
    if (steps[j] % static_cast<long long>(slots_) == 0) {
      out[j] = a;
      continue;
    }
    record_step(steps[j]);
    out[j].level = a.level;
    if (!dry_) out[j].c = ev_->rotate_hoisted(a.c, dec, steps[j], *gk_);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  counts_.rot += nonzero;
  counts_.hoisted += nonzero - 1;
  return out;
}

void Executor::rot_accumulate(Ct& a, std::span<const long long> steps) {
  for (long long k : steps) {
    Ct r = rot(a, k);
    add(a, r);
  }
}

Ct Executor::conj(const Ct& a) {
  if (a.tensor || a.unscaled) throw std::logic_error("conj: finish first");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_.conj;
    conj_used_ = true;
  }
  Ct r;
  r.level = a.level;
  if (!dry_) r.c = ev_->conjugate(a.c, *gk_);
  return r;
}

Ct Executor::mult(const Ct& a, const Ct& b) {
  if (a.tensor || b.tensor || a.unscaled || b.unscaled) {
    throw std::logic_error("mult: finish the operands first");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_.mult;
  }
  Ct r;
  r.level = std::min(a.level, b.level);
  r.tensor = true;
  if (!dry_) r.c = ev_->multiply(a.c, b.c);
  if (!opt_.lazy_relin) finish(r);
  return r;
}

void Executor::finish(Ct& a) {
  if (a.unscaled) {
    check_level(a, "rescale after a mask product");
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++counts_.rescale;
    }
    if (!dry_) ev_->rescale_inplace(a.c);
    a.unscaled = false;
    --a.level;
    return;
  }
  if (!a.tensor) return;
  check_level(a, "rescale after a product");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_.relin;
    ++counts_.rescale;
  }
  if (!dry_) {
    ev_->relinearize_inplace(a.c, *rlk_);
    ev_->rescale_inplace(a.c);
  }
  a.tensor = false;
  --a.level;
}

const ckks::Plaintext& Executor::mask_plaintext(const Mask& m, std::size_t level) {
  const std::string key = m.key + "@" + std::to_string(block_.s0) + "x" + std::to_string(block_.s1);
  // std::map nodes are stable: the reference stays valid after the lock is released.
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = masks_.find({key, level});
  if (it != masks_.end()) return it->second;
  std::vector<Complex> v(slots_);
  for (std::size_t p = 0; p < slots_; ++p) v[p] = m.value(p / block_.s1, p % block_.s1);
  const double scale = static_cast<double>(ctx_->params().q_primes[level]);
  return masks_.emplace(std::make_pair(key, level), enc_->encode(v, level, scale)).first->second;
}

Ct Executor::mask_product(const Ct& a, const Mask& m) {
  if (a.tensor || a.unscaled) throw std::logic_error("cmult: finish first");
  check_level(a, "mask product");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_.cmult;
  }
  Ct r;
  r.level = a.level;
  r.unscaled = true;
  if (ctx_) {
    const ckks::Plaintext& pt = mask_plaintext(m, a.level);
    if (!dry_) r.c = ev_->multiply_plain(a.c, pt);
  }
  return r;
}

Ct Executor::cmult(const Ct& a, const Mask& m) {
  Ct r = mask_product(a, m);
  finish(r);
  return r;
}

Ct Executor::cmult_lazy(const Ct& a, const Mask& m) {
  if (!opt_.lazy_rescale) return cmult(a, m);
  return mask_product(a, m);
}

}  // namespace hetal::matrix
