// Encrypted training of HETAL's softmax-regression head (issue "Encrypted transfer learning",
// deliverable 2; hetal.md sections 3, 6): the server's side, on ciphertexts only.
//
// One step on a batch (X: blocks B x (d + 1) with the bias column; Y: one-hot, tiled_cols):
//   look   <- unpack(look_c)                         tiled W layout, 1 level
//   Z      =  DiagABT(X, look)                       3 levels (tiled logits)
//   P      =  softmax(Z)                             bootstraps inside (softmax/encrypted.h)
//   G      =  DiagATB(P - Y, X)                      fold variant, 3 levels
//   G_c    =  pack(G) * lr / (B bound)               1 level
//   x_c'   =  look_c - G_c;  look_c' = x_c' + mu (x_c' - x_c)      1 level (Nesterov)
//   (x_c', look_c') bootstrapped together            bootstrap_real_pair
// The model and the lookahead point are kept *compact* between steps: every tiled block of W
// holds c_pad x s1 values repeated s0 / c_pad times, so the first copies of all blocks are
// packed side by side into as few ciphertexts as possible (c x (d + 1) <= 2^15 values: one
// for MNIST's 10 x 785), scaled by 1 / bound, and bootstrapped there instead of block by block
// (25 tiled blocks -> 1 compact ciphertext each for x and look, one paired bootstrap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/matrix/enc_matrix.h"
#include "hetal/matrix/executor.h"
#include "hetal/softmax/encrypted.h"
#include "hetal/softmax/nsq_encrypted.h"
#include "hetal/train/plain_trainer.h"

namespace hetal::train {

/// What the server may know: sizes (public metadata of the protocol).
struct Shape {
  std::size_t features = 0;  ///< d, without the bias column
  std::size_t classes = 0;
  std::size_t batch = 0;
  std::size_t slots = 0;
  std::size_t cols() const { return features + 1; }
  matrix::BlockShape block() const;
  std::size_t c_pad() const { return matrix::padded_classes(classes); }
  /// Slots one tiled W block contributes to the compact form (c_pad * s1).
  std::size_t unit() const { return c_pad() * block().s1; }
  std::size_t w_blocks() const;  ///< tiled W blocks: ceil((d + 1) / s1)
  std::size_t per_compact() const { return slots / unit(); }
  std::size_t compact_count() const;  ///< compact ciphertexts per matrix
  /// Throws std::invalid_argument naming what is wrong.
  void validate() const;
};

// --- client-side packing (plain) ---
/// [x, 1]: the bias as a constant-1 feature.
matrix::Matrix with_bias(const matrix::Matrix& x);
matrix::Matrix one_hot(const std::vector<std::size_t>& labels, std::size_t classes);
matrix::Layout features_layout(const Shape& s, std::size_t rows);  ///< blocks rows x (d + 1)
matrix::Layout labels_layout(const Shape& s, std::size_t rows);    ///< tiled_cols rows x c
matrix::Layout logits_layout(const Shape& s, std::size_t rows);    ///< DiagABT compact output
/// Slot vectors of compact ciphertexts holding w (c x (d + 1)) / bound, and back.
std::vector<std::vector<double>> pack_compact(const Shape& s, const matrix::Matrix& w,
                                              double bound);
matrix::Matrix unpack_compact(const Shape& s, const std::vector<std::vector<double>>& slots,
                              double bound);

struct EncryptedTrainParams {
  double learning_rate = 2.0;
  Optimizer optimizer = Optimizer::nesterov;
  /// |W| must stay below this: the compact model is bootstrapped as W / bound.
  double weight_bound = 16;
  /// The softmax pipeline (the plain simulation must use the same: SoftmaxKind::simulation
  /// for nsq, simulation_tournament for the tournament) and each pipeline's parameters.
  softmax::Pipeline pipeline = softmax::Pipeline::nsq;
  softmax::NsqParams nsq{};
  softmax::OursParams softmax{};
};

/// A batch as the server holds it.
struct EncryptedBatch {
  std::size_t rows = 0;
  matrix::EncMatrix x;  ///< features_layout
  matrix::EncMatrix y;  ///< labels_layout (training batches only)
};

/// Seconds spent per part of training (the breakdown).
struct TimeBreakdown {
  double matmul = 0;     ///< DiagABT + DiagATB
  double softmax = 0;    ///< including its own bootstraps
  double bootstrap = 0;  ///< the compact model's bootstraps
  double other = 0;      ///< pack / unpack, update
  std::size_t steps = 0, softmax_bootstraps = 0, model_bootstraps = 0;
  double total() const { return matmul + softmax + bootstrap + other; }
  TimeBreakdown& operator+=(const TimeBreakdown& o);
};

/// The encrypted state that checkpoints save: the step counter and the compact x_k, y_k.
struct TrainerState {
  std::size_t steps = 0;
  std::vector<ckks::Ciphertext> model, look;
};

/// Observers of a step's intermediate ciphertexts, for a harness that holds the secret key
/// (bench/trace_train.cpp); a server never sets them. Stages: "logits" (Z, tiled_cols),
/// "p_minus_y" (P - Y), "gradient" (DiagATB's output, tiled_rows) and, compact,
/// "update" (x_{k+1} and y_{k+1} before their bootstrap, model ciphertexts then lookahead ones).
struct StepProbe {
  std::function<void(std::string_view stage, const matrix::EncMatrix&)> matrix;
  std::function<void(std::string_view stage, const std::vector<ckks::Ciphertext>&)> compact;
};

class EncryptedTrainer {
 public:
  EncryptedTrainer(const ckks::Context& ctx, const ckks::Encoder& enc, const ckks::Evaluator& ev,
                   const rlwe::RelinKey& rlk, const rlwe::GaloisKeys& gk,
                   const circuits::Bootstrapper& boot, const circuits::BootstrapKeys& boot_keys,
                   Shape shape, EncryptedTrainParams params);

  /// User-level rotation steps (Galois keys, plus conjugation) the trainer needs: DiagABT
  /// (tiled and compact), DiagATB (fold), the softmax, pack and unpack.
  static std::vector<long long> rotations(const Shape& s);
  /// Level the client encrypts training features and labels at (the top user level).
  std::size_t data_level() const { return ctx_.params().user_top_level(); }
  /// Lowest level for validation / test features (DiagABT's 3 levels, compact output).
  static constexpr std::size_t kInferenceLevel = 3;

  /// W = 0 (encryptions of zero with the public key: the server cannot tell them apart).
  void init(ckks::Encryptor& public_encryptor);
  void set_state(TrainerState s);
  const TrainerState& state() const { return state_; }

  /// One Nesterov (or gradient-descent) step on a training batch.
  void step(const EncryptedBatch& batch);
  /// Logits (logits_layout) of a batch under a compact model (default: the current x_k).
  matrix::EncMatrix logits(const matrix::EncMatrix& x,
                           const std::vector<ckks::Ciphertext>* model = nullptr);

  const TimeBreakdown& times() const { return times_; }
  void set_probe(StepProbe probe) { probe_ = std::move(probe); }
  const Shape& shape() const { return shape_; }

 private:
  matrix::EncMatrix unpack(const std::vector<ckks::Ciphertext>& compact);
  std::vector<ckks::Ciphertext> pack(const matrix::EncMatrix& g, double factor);
  /// The first c rows of W block j's first copy (valid columns only), times factor, encoded at
  /// q_level (cached: the same masks serve every step).
  const ckks::Plaintext& block_mask(std::size_t j, std::size_t level, double factor);

  const ckks::Context& ctx_;
  const ckks::Encoder& enc_;
  const ckks::Evaluator& ev_;
  const rlwe::RelinKey& rlk_;
  const rlwe::GaloisKeys& gk_;
  const circuits::Bootstrapper& boot_;
  const circuits::BootstrapKeys& boot_keys_;
  Shape shape_;
  EncryptedTrainParams p_;
  matrix::Executor ex_;
  softmax::EncryptedSoftmax softmax_;
  softmax::NsqSoftmax nsq_;
  TrainerState state_;
  TimeBreakdown times_;
  StepProbe probe_;
  std::vector<std::pair<std::tuple<std::size_t, std::size_t, double>, ckks::Plaintext>> masks_;
};

}  // namespace hetal::train
