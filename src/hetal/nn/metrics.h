// Classification metrics CryptoTL reports (accuracy, F1, Cohen's kappa); no HE, no libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hetal::nn {

struct Metrics {
  double accuracy = 0;
  double f1 = 0;     ///< binary: F1 of class 1; more: macro average over the classes that occur
  double kappa = 0;  ///< Cohen's kappa: (p_o - p_e) / (1 - p_e)
};

/// Labels in [0, classes); std::invalid_argument on sizes that differ, no rows, or a label out of
/// range.
Metrics classification_metrics(const std::vector<std::int64_t>& truth,
                               const std::vector<std::int64_t>& predicted, std::size_t classes);

}  // namespace hetal::nn
