// CryptoTL's lower network on encrypted inputs (Walch et al., arXiv 2205.11935), many samples per
// ciphertext: each sample owns a block of B = 2^ceil(log2 d) consecutive slots (slots / B samples
// per ciphertext; CryptoTL packs one), so a per-sample matrix is one block-diagonal linear
// transform whose generalized diagonals d_k (|k| < B) never read across a block (their entries are
// zero wherever i + k leaves the block). Both affine maps of the fused network (nn::fuse) are
// baby-step giant-step transforms with hoisted rotations (circuits/lintrans) and the activation is
// the degree-3 polynomial (circuits/polynomial): 1 + 2 + 1 = 4 levels, no bootstrapping.
//
// The output blocks hold the d - 2 outputs of each sample in slots [0, d - 2) of its block and
// zeros in the rest of it: the "blocks" layout of hetal::matrix with s1 = B (a batch of
// slots / B rows). Blocks without a sample (the last ciphertext's tail) hold f(0), unless
// forward() is told how many samples there are: then they hold exact zeros (HETAL's padding rows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/ckks/parameters.h"
#include "hetal/core/prng.h"
#include "hetal/nn/lower_network.h"
#include "hetal/rlwe/keys.h"

namespace hetal::circuits {
class LinearTransform;
}

namespace hetal::cryptotl {

/// Levels the network consumes: affine (1), cubic (2), affine (1).
inline constexpr std::size_t kDepth = 4;

/// N = 2^14, Q = 60, 40 x 4 | P = 60, 60 (log QP = 340 <= 438: 128-bit, ckks.md section 4.4),
/// scale 2^40: exactly the network's 4 levels.
ckks::Parameters default_parameters();

/// Where samples sit in the slots.
struct Packing {
  std::size_t dim = 0, out_dim = 0, block = 0, per_ciphertext = 0;
  Packing(std::size_t dim, std::size_t slots);
  std::size_t ciphertexts(std::size_t rows) const {
    return (rows + per_ciphertext - 1) / per_ciphertext;
  }
  /// Rows [first, first + count) of a rows x dim matrix into one ciphertext's slots.
  std::vector<double> pack(std::span<const float> x, std::size_t first, std::size_t count,
                           std::size_t slots) const;
  /// The out_dim outputs of `count` samples from decoded slots, appended to `out`.
  void unpack(std::span<const double> slots, std::size_t count, std::vector<float>& out) const;
};

/// The rotation steps the network needs, from its shape alone: what the client generates keys
/// for without seeing the weights.
std::vector<long long> required_rotations(const ckks::Context& ctx, const ckks::Encoder& enc,
                                          std::size_t dim);

struct NetworkOptions {
  /// Keep the transforms' diagonals as integer coefficients and transform them at every use
  /// (circuits/lintrans `compact`): ~2 slots words per diagonal instead of (level + 2) N, what
  /// N = 2^16 needs (the 2d - 1 + 2d - 3 diagonals of d = 100 would hold 3 GB in NTT form).
  bool compact = false;
  /// A constant 1 in slot out_dim of every sample's block: the bias column of HETAL's features
  /// (train::with_bias), so that the outputs are the encrypted head's input as they are.
  bool bias_column = false;
};

class EncryptedLowerNetwork {
 public:
  /// `level`: the inputs' level (>= kDepth). Throws std::invalid_argument if a block of the
  /// network's dimension does not fit the slots, or the level is too low.
  EncryptedLowerNetwork(const ckks::Context& ctx, const ckks::Encoder& enc,
                        const nn::LowerNetwork& net, std::size_t level,
                        NetworkOptions options = {});
  ~EncryptedLowerNetwork();
  EncryptedLowerNetwork(const EncryptedLowerNetwork&) = delete;
  EncryptedLowerNetwork& operator=(const EncryptedLowerNetwork&) = delete;

  const Packing& packing() const { return packing_; }
  std::size_t level() const { return level_; }
  std::vector<long long> rotations() const;
  /// Throws std::invalid_argument naming the first rotation `gk` lacks.
  void check_keys(const rlwe::GaloisKeys& gk) const;

  /// The network on one ciphertext of packed samples (at level() or above, then dropped to it;
  /// default scale); the output is at level() - kDepth and the input's scale. With `samples`
  /// below packing().per_ciphertext, the blocks from `samples` on come out as zeros (their rows
  /// of the second transform and its bias are left out: no extra level); 0 means all of them.
  ckks::Ciphertext forward(const ckks::Evaluator& ev, const ckks::Ciphertext& x,
                           const rlwe::RelinKey& rlk, const rlwe::GaloisKeys& gk,
                           std::size_t samples = 0) const;
  /// forward() on every ciphertext, OpenMP across them.
  std::vector<ckks::Ciphertext> forward_all(const ckks::Evaluator& ev,
                                            const std::vector<ckks::Ciphertext>& xs,
                                            const rlwe::RelinKey& rlk,
                                            const rlwe::GaloisKeys& gk) const;

 private:
  struct Second {
    std::unique_ptr<circuits::LinearTransform> lt;
    ckks::Plaintext bias;
    mutable std::size_t last_use = 0;  // under second_mutex_
  };
  /// The second affine map over the first `samples` blocks (cached: the full one and the three
  /// partial counts used last; a caller holds its own reference while it uses one).
  std::shared_ptr<const Second> second(std::size_t samples) const;

  const ckks::Context& ctx_;
  const ckks::Encoder& enc_;
  Packing packing_;
  std::size_t level_;
  NetworkOptions options_;
  nn::FusedNetwork fused_;
  std::unique_ptr<circuits::LinearTransform> first_;
  ckks::Plaintext first_bias_;
  mutable std::mutex second_mutex_;
  mutable std::size_t uses_ = 0;
  mutable std::map<std::size_t, std::shared_ptr<const Second>> second_;  // samples -> map
};

/// The analytic Gaussian mechanism (Balle & Wang, ICML 2018, Theorem 8): the smallest sigma for
/// which f(x) + N(0, sigma^2 I) is (epsilon, delta)-differentially private for f of L2
/// sensitivity `sensitivity`. epsilon in (0, 100], delta in (0, 1).
double gaussian_sigma(double epsilon, double delta, double sensitivity);

/// The inputs a sensitivity bound holds for: the box [lo, hi]^d, or, with radius > 0, the L2 ball
/// of that radius around 0 (GloVe's L2-normalised features lie in the unit ball).
struct InputDomain {
  double lo = -1, hi = 1;
  double radius = 0;
};

/// An upper bound on ||f(x) - f(x')||_2 for the lower network f over all inputs x, x' in the
/// domain, from the server's weights: the smaller of interval arithmetic through the fused
/// network and ||B||_2 * max|act'| * ||A||_2 * diameter (matrix norms bounded above by
/// min(Frobenius, sqrt(||M||_1 ||M||_inf))).
double output_sensitivity(const nn::FusedNetwork& f, const InputDomain& domain);

/// The largest |output| over the domain (interval arithmetic): what the noise must fit beside.
double output_bound(const nn::FusedNetwork& f, const InputDomain& domain);

/// Adds N(0, sigma^2) noise, under encryption, to the real and the imaginary part of every output
/// slot of every block of `ct` (a forward() output); the noise comes from `prng`.
void add_gaussian_noise(const ckks::Evaluator& ev, const ckks::Encoder& enc, const Packing& pk,
                        ckks::Ciphertext& ct, double sigma, core::Prng& prng);

}  // namespace hetal::cryptotl
