// Plain reference trainer (issue "Encrypted transfer learning", deliverable 3): HETAL's
// softmax-regression head trained on features in double precision, with the exact softmax or
// with the very approximation the encrypted path evaluates ("simulation", softmax/plain.h), so
// encrypted runs have a yardstick and full-size runs can be predicted (hetal.md section 6).
//
// Model: logits = [x, 1] W^T (bias through a constant-1 feature), W of shape c x (d + 1), zero
// initialised. Loss: cross-entropy, gradient (1/B) (P - Y)^T [X, 1]. Optimiser: mini-batch
// Nesterov accelerated gradient with Nesterov's (k - 1) / (k + 2) momentum schedule
// (HETAL's own schedule lives in its closed SDK), or plain gradient descent. Batches: a
// seeded shuffle per epoch, the last partial batch kept. Early stopping on the validation
// loss with a patience, keeping the best epoch's weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include "hetal/matrix/layout.h"
#include "hetal/softmax/nsq.h"
#include "hetal/softmax/plain.h"

namespace hetal::train {

struct Dataset {
  matrix::Matrix x;            ///< n x d features
  std::vector<std::size_t> y;  ///< n labels in [0, classes)
  std::size_t classes = 0;
  /// Throws std::invalid_argument naming the problem (counts, label range, non-finite values).
  void validate() const;
};

/// simulation: the encrypted default pipeline's arithmetic in double precision
/// (softmax::nsq); simulation_tournament: the tournament pipeline's (softmax::ours).
enum class SoftmaxKind { exact, simulation, simulation_tournament };
enum class Optimizer { nesterov, gradient_descent };
/// shuffle_rows: a fresh seeded permutation of the rows every epoch. fixed_batches: the
/// encrypted protocol's order: consecutive rows form the batches once (the client encrypts
/// them so, after the seeded split), and each epoch visits them in batch_order().
enum class BatchOrder { shuffle_rows, fixed_batches };

struct TrainParams {
  double learning_rate = 2.0;  ///< HETAL's MNIST value
  std::size_t batch = 1024;
  std::size_t max_epochs = 7;
  Optimizer optimizer = Optimizer::nesterov;
  SoftmaxKind softmax = SoftmaxKind::exact;
  std::size_t patience = 3;  ///< epochs without a better validation loss (0: never stop)
  BatchOrder batch_order = BatchOrder::shuffle_rows;
  std::uint64_t seed = 0;
  /// |x_k| and |y_k| must stay below this (the encrypted trainer bootstraps the compact model
  /// as W / bound); 0: not checked.
  double weight_bound = 0;
};

struct EpochRecord {
  double validation_loss = 0, validation_accuracy = 0;
};

struct TrainResult {
  matrix::Matrix weights;       ///< c x (d + 1), the best epoch's
  matrix::Matrix last_weights;  ///< the last epoch's
  std::vector<EpochRecord> epochs;
  std::size_t best_epoch = 0, steps = 0;
  /// Largest |entry| of any iterate x_k or lookahead y_k, and the step that reached it.
  double max_abs_weight = 0;
  std::size_t max_abs_weight_step = 0;
};

/// Splits off the last `fraction` of a seeded permutation as validation (HETAL: 12.5 %).
std::pair<Dataset, Dataset> split(const Dataset& all, double validation_fraction,
                                  std::uint64_t seed);

/// The order in which `batches` fixed batches are visited in `epoch` (seeded permutation).
std::vector<std::size_t> batch_order(std::size_t batches, std::uint64_t seed, std::size_t epoch);

/// A logit outside the encrypted softmax's input range [-R, R] (softmax::OursParams::r_max),
/// where the approximation the encrypted run evaluates no longer holds.
struct LogitRangeError : std::range_error {
  using std::range_error::range_error;
};
/// An iterate or lookahead entry at or beyond TrainParams::weight_bound.
struct WeightRangeError : std::range_error {
  using std::range_error::range_error;
};

/// Throws LogitRangeError if a logit (e.g. a decrypted one) leaves the encrypted softmax's
/// input range or is NaN.
void check_logit_range(std::span<const double> logits);

/// Class probabilities of every row of x (n x d) under weights w (c x (d + 1)). With the
/// simulation, throws LogitRangeError if a logit leaves [-R, R]; training adds the step.
matrix::Matrix predict(const matrix::Matrix& w, const matrix::Matrix& x, SoftmaxKind kind);
double accuracy(const matrix::Matrix& w, const Dataset& data);
/// Mean softmax cross-entropy and accuracy of logits (n x c; e.g. decrypted ones) for labels.
std::pair<double, double> logits_loss_accuracy(const matrix::Matrix& logits,
                                               const std::vector<std::size_t>& y);
double cross_entropy(const matrix::Matrix& w, const Dataset& data);

/// The optimiser's state: the iterate x_k, the lookahead y_k (where the next gradient is
/// taken; = x_k for gradient descent), the steps taken, and max(|x_k|, |y_k|).
struct PlainState {
  matrix::Matrix x, look;
  std::size_t steps = 0;
  double max_abs = 0;
};

/// One step on a batch: the gradient at y_k, then x_{k+1} and y_{k+1} (as EncryptedTrainer::step).
/// Throws LogitRangeError / WeightRangeError (p.weight_bound) as train() does.
void plain_step(PlainState& st, const Dataset& batch, const TrainParams& p);

TrainResult train(const Dataset& train_set, const Dataset& validation, const TrainParams& p);

}  // namespace hetal::train
