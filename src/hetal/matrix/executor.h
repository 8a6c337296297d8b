// The one place where the matrix algorithms touch the CKKS engine. Every algorithm is written
// against Executor, which either runs each operation on ciphertexts or, in a dry run, only
// counts it and tracks levels. The same code path therefore gives the products, the operation
// counts of hetal.md section 4.4 (Table 7) without encrypting anything, the exact list of
// rotation steps to generate keys for, and the masks to precompute.
#pragma once

#include <complex>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/matrix/layout.h"
#include "hetal/rlwe/keys.h"

namespace hetal::matrix {

using Complex = std::complex<double>;

/// Operation counts. mult/cmult/rot are HETAL's Mult/CMult/Rot (Table 7 of hetal.md 4.4).
struct OpCounts {
  std::size_t mult = 0;     ///< ciphertext x ciphertext products (tensor products)
  std::size_t cmult = 0;    ///< products with a plaintext mask
  std::size_t rot = 0;      ///< rotations, hoisted or not (conjugations excluded, as in Table 7)
  std::size_t hoisted = 0;  ///< of `rot`: rotations that reused another one's decomposition
  std::size_t conj = 0;     ///< conjugations (real-part extraction)
  std::size_t relin = 0;    ///< relinearizations (= mult unless products are summed lazily)
  std::size_t rescale = 0;
  /// Key switches, and those that pay a full decomposition (ModUp).
  std::size_t keyswitch() const { return rot + conj + relin; }
  std::size_t decompositions() const { return rot - hoisted + conj + relin; }
  OpCounts& operator+=(const OpCounts& o);
  bool operator==(const OpCounts&) const = default;
  std::string str() const;  ///< "CMult/Mult/Rot = x/y/z (hoisted h, conj c, relin r)"
};

/// Algorithm options. The defaults are this implementation's improvements over the paper;
/// Options::paper() reproduces HETAL's algorithms (and Table 7's counts) exactly.
struct Options {
  /// Several rotations of one ciphertext share one decomposition (Halevi-Shoup; hetal.md 9).
  bool hoist = true;
  /// Sum products as unrelinearized tensors; relinearize and rescale once per sum.
  bool lazy_relin = true;
  /// DiagATB-PRot: complexify and partially rotate A in one masked level from hoisted rotations
  /// of A (HETAL: complexify, then PRot of the complexified A: two masked levels).
  bool fused_prot = true;
  /// DiagATB-PRotUp: Rot(B, s1) once per block instead of once per block and diagonal
  /// (hetal.md 4.3 and 9).
  bool precompute_rot_b = true;
  /// DiagABT with compact output: replicate the row sums over c_pad columns, not s1 (hetal.md 9).
  bool compact_replicate = true;
  /// Sums of masked ciphertexts are rescaled once, not once per term.
  bool lazy_rescale = true;
  /// diag_atb's automatic choice may take the fold variant (AtbVariant::fold, not in HETAL).
  bool fold_atb = true;
  /// Benchmarks only: run just this many iterations of the outer loop (0: all). The result is
  /// then wrong; the time is extrapolated by the caller.
  std::size_t sample_outer = 0;

  static Options paper();
  std::string str() const;
};

/// One ciphertext, or its shadow in a dry run (no ciphertext, level tracked).
struct Ct {
  ckks::Ciphertext c;
  std::size_t level = 0;
  bool tensor = false;    ///< an unrelinearized, unrescaled product (3 parts)
  bool unscaled = false;  ///< a mask product not yet rescaled
};

/// A mask: a plaintext of 0/+-1/2/+-i/2-style values, a function of (row, column) in a block.
struct Mask {
  std::string key;  ///< identifies the mask in the cache (with the block shape and level)
  std::function<Complex(std::size_t row, std::size_t col)> value;
};

class Executor {
 public:
  /// Runs on ciphertexts. The keys must outlive the executor.
  Executor(const ckks::Context& ctx, const ckks::Encoder& enc, const ckks::Evaluator& ev,
           const rlwe::RelinKey& rlk, const rlwe::GaloisKeys& gk, Options opt = {});
  /// Dry run: counts, levels, rotation steps; nothing is encrypted.
  explicit Executor(Options opt = {});

  bool dry() const { return dry_; }
  /// A dry run on an executor with an engine encodes the masks into the cache ("prepare").
  void set_dry(bool d);
  const Options& options() const { return opt_; }
  Options& options() { return opt_; }
  const OpCounts& counts() const { return counts_; }
  void reset_counts() { counts_ = {}; }
  /// Every rotation step used so far, as a signed step in (-slots/2, slots/2].
  const std::set<long long>& rotation_steps() const { return steps_; }
  bool uses_conjugation() const { return conj_used_; }
  std::size_t cached_masks() const { return masks_.size(); }
  const ckks::Context* context() const { return ctx_; }

  // --- operations (levels are aligned by dropping the higher operand) ---
  void add(Ct& a, const Ct& b);
  void sub(Ct& a, const Ct& b);
  void mul_i(Ct& a);  ///< exact, no level
  void drop(Ct& a, std::size_t level);
  Ct rot(const Ct& a, long long k);
  /// Rotations of one ciphertext by several steps: one decomposition when hoisting.
  std::vector<Ct> rot_many(const Ct& a, std::span<const long long> steps);
  /// a += rot(a, steps[0]); a += rot(a, steps[1]); ... (sequential: each rotates the new a).
  void rot_accumulate(Ct& a, std::span<const long long> steps);
  Ct conj(const Ct& a);
  /// a * b: with lazy relinearization an unrelinearized tensor (finish() it after summing),
  /// otherwise relinearized and rescaled.
  Ct mult(const Ct& a, const Ct& b);
  /// Relinearize and rescale a (sum of) lazy product(s), or rescale a sum of lazy mask
  /// products; no-op on a finished ciphertext.
  void finish(Ct& a);
  /// a * mask, rescaled: the mask is encoded at scale q_level so the scale is unchanged.
  Ct cmult(const Ct& a, const Mask& m);
  /// a * mask left unrescaled when Options::lazy_rescale (sum such terms, then finish() once);
  /// otherwise the same as cmult.
  Ct cmult_lazy(const Ct& a, const Mask& m);

  /// Slots of the ciphertexts handled (fixed by the first layout seen).
  void set_slots(std::size_t slots, BlockShape block);

  /// Runs f(0..n-1), on several OpenMP threads when the executor runs ciphertexts and block
  /// parallelism is on: independent blocks on separate threads scale better than the engine's
  /// threads inside one operation (2 threads: 17 vs 21 ms per rotation at N = 2^16). Engine
  /// operations inside then run single-threaded (no nested parallelism).
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& f);
  /// Threads parallel_for uses (1 in a dry run or with block parallelism off).
  std::size_t threads() const;
  /// Block parallelism is an execution strategy, not an algorithm option: on by default, and
  /// the same for every algorithm (so Options::paper() leaves it alone).
  void set_block_parallel(bool on) { block_parallel_ = on; }

 private:
  void record_step(long long k);
  const ckks::Plaintext& mask_plaintext(const Mask& m, std::size_t level);
  /// a * mask, counted, not rescaled (shared by cmult and cmult_lazy).
  Ct mask_product(const Ct& a, const Mask& m);
  void check_level(const Ct& a, const char* op) const;

  const ckks::Context* ctx_ = nullptr;
  const ckks::Encoder* enc_ = nullptr;
  const ckks::Evaluator* ev_ = nullptr;
  const rlwe::RelinKey* rlk_ = nullptr;
  const rlwe::GaloisKeys* gk_ = nullptr;
  Options opt_;
  bool dry_ = false;
  OpCounts counts_;
  std::set<long long> steps_;
  bool conj_used_ = false;
  std::size_t slots_ = 0;
  BlockShape block_{};
  std::map<std::pair<std::string, std::size_t>, ckks::Plaintext> masks_;
  bool block_parallel_ = true;
  mutable std::mutex mutex_;  // counts, steps, mask cache (operations run outside it)
};

}  // namespace hetal::matrix
