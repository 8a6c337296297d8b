#include "hetal/nn/metrics.h"

#include <stdexcept>
#include <string>

namespace hetal::nn {

Metrics classification_metrics(const std::vector<std::int64_t>& truth,
                               const std::vector<std::int64_t>& predicted, std::size_t classes) {
  if (truth.size() != predicted.size())
    throw std::invalid_argument("metrics: " + std::to_string(truth.size()) + " labels but " +
                                std::to_string(predicted.size()) + " predictions");
  if (truth.empty()) throw std::invalid_argument("metrics: no rows");
  if (classes < 2) throw std::invalid_argument("metrics: fewer than 2 classes");
  std::vector<double> conf(classes * classes, 0.0);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const auto t = truth[i], p = predicted[i];
    if (t < 0 || p < 0 || static_cast<std::size_t>(t) >= classes ||
        static_cast<std::size_t>(p) >= classes)
      throw std::invalid_argument("metrics: label out of range at row " + std::to_string(i));
    conf[t * classes + p] += 1;
  }
  const double n = static_cast<double>(truth.size());
  double agree = 0, chance = 0;
  std::vector<double> f1(classes, 0.0);
  std::size_t present = 0;  // classes in the truth or the predictions (sklearn's macro F1)
  for (std::size_t c = 0; c < classes; ++c) {
    double row = 0, col = 0;
    for (std::size_t k = 0; k < classes; ++k) {
      row += conf[c * classes + k];
      col += conf[k * classes + c];
    }
    const double tp = conf[c * classes + c];
    agree += tp;
    chance += row * col;
    f1[c] = row + col > 0 ? 2 * tp / (row + col) : 0.0;
    present += row + col > 0;
  }
  Metrics m;
  m.accuracy = agree / n;
  const double pe = chance / (n * n);
  m.kappa = pe < 1 ? (m.accuracy - pe) / (1 - pe) : 0.0;
  if (classes == 2) {
    m.f1 = f1[1];
  } else {
    for (double v : f1) m.f1 += v;
    m.f1 /= static_cast<double>(present);
  }
  return m;
}

}  // namespace hetal::nn
