// Plaintext training of CryptoTL's two networks with libtorch (Debian libtorch-dev 1.13): the
// server's lower network on its source data set, the client's upper layers on the lower network's
// (decrypted) outputs. No HE here; the lower network leaves as nn::LowerNetwork (its own file
// format, which the encrypted evaluator reads without libtorch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hetal/nn/lower_network.h"

namespace hetal::nn {

/// rows x cols float32 features, row-major, and labels in [0, classes).
struct Table {
  std::size_t rows = 0, cols = 0, classes = 0;
  std::vector<float> x;
  std::vector<std::int64_t> y;
  /// Sizes consistent, labels in range, at least 2 classes, values finite.
  void check(const char* what) const;
};

struct TrainOptions {
  std::size_t max_epochs = 200;
  std::size_t batch = 32;
  double learning_rate = 1e-3;
  double validation_fraction = 0.1;  ///< held out of the training rows for early stopping
  std::size_t patience = 10;         ///< epochs without a better validation loss before stopping
  double dropout = 0.2;
  bool balanced = true;    ///< weight the loss by n / (classes * n_c)
  std::uint64_t seed = 1;  ///< initial weights, shuffles and dropout
  bool verbose = false;
};

struct TrainLog {
  std::size_t epochs = 0, best_epoch = 0;
  double best_validation_loss = 0, seconds = 0;
};

/// Trains the lower network with a head of the upper layers' shape on `source` (CryptoTL's
/// pre-training; the head is dropped) and returns the lower network's weights.
LowerNetwork train_lower_network(const Table& source, const TrainOptions& o,
                                 TrainLog* log = nullptr);

/// The client's upper layers: Dense m->m + ReLU, MaxPool(3), Dropout 0.2, Dense -> 1 (sigmoid,
/// 2 classes) or -> classes (softmax); inputs standardised with the training rows' mean and
/// standard deviation, kept in the model.
class UpperModel {
 public:
  static UpperModel train(const Table& data, const TrainOptions& o, TrainLog* log = nullptr);
  /// A file save() wrote; errors (std::invalid_argument) name it.
  static UpperModel load(const std::string& path);
  /// Atomic (temporary name, rename), mode 0600.
  void save(const std::string& path) const;

  std::size_t input_dim() const;
  std::size_t classes() const;
  /// rows x input_dim() features -> the predicted class of each row.
  std::vector<std::int64_t> predict(const std::vector<float>& x, std::size_t rows) const;
  /// Every trainable value, flattened (for reproducibility checks).
  std::vector<float> parameters() const;

  UpperModel(UpperModel&&) noexcept;
  UpperModel& operator=(UpperModel&&) noexcept;
  ~UpperModel();

 private:
  struct Impl;
  explicit UpperModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetal::nn
