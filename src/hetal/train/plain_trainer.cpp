#include "hetal/train/plain_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "hetal/core/prng.h"

namespace hetal::train {

namespace {
core::Prng prng_for(std::uint64_t seed, std::uint64_t stream) {
  core::Seed s{};
  for (int i = 0; i < 8; ++i) s[i] = static_cast<std::uint8_t>(seed >> (8 * i));
  return core::Prng(s, stream);
}

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed, std::uint64_t stream) {
  std::vector<std::size_t> p(n);
  std::iota(p.begin(), p.end(), std::size_t{0});
  core::Prng prng = prng_for(seed, stream);
  for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[prng.uniform(i)]);  // Fisher-Yates
  return p;
}

Dataset subset(const Dataset& d, const std::size_t* idx, std::size_t count) {
  Dataset out;
  out.classes = d.classes;
  out.x = matrix::Matrix(count, d.x.cols);
  out.y.resize(count);
  for (std::size_t r = 0; r < count; ++r) {
    std::copy_n(d.x.data.begin() + static_cast<long>(idx[r] * d.x.cols), d.x.cols,
                out.x.data.begin() + static_cast<long>(r * d.x.cols));
    out.y[r] = d.y[idx[r]];
  }
  return out;
}
}  // namespace

void Dataset::validate() const {
  if (classes < 2) throw std::invalid_argument("dataset: needs at least 2 classes");
  if (x.rows == 0 || x.cols == 0) throw std::invalid_argument("dataset: no features");
  if (x.data.size() != x.rows * x.cols) throw std::invalid_argument("dataset: malformed matrix");
  if (y.size() != x.rows) {
    throw std::invalid_argument("dataset: " + std::to_string(x.rows) + " feature rows but " +
                                std::to_string(y.size()) + " labels");
  }
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] >= classes) {
      throw std::invalid_argument("dataset: label " + std::to_string(y[i]) + " of row " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                                  ")");
    }
  }
  for (std::size_t i = 0; i < x.data.size(); ++i) {
    if (!std::isfinite(x.data[i])) {
      throw std::invalid_argument("dataset: feature " + std::to_string(i % x.cols) + " of row " +
                                  std::to_string(i / x.cols) + " is not finite");
    }
  }
}

std::vector<std::size_t> batch_order(std::size_t batches, std::uint64_t seed, std::size_t epoch) {
  return permutation(batches, seed, 200 + epoch);
}

std::pair<Dataset, Dataset> split(const Dataset& all, double validation_fraction,
                                  std::uint64_t seed) {
  all.validate();
  if (!(validation_fraction > 0 && validation_fraction < 1))
    throw std::invalid_argument("split: the validation fraction must be in (0, 1)");
  const auto p = permutation(all.x.rows, seed, 1);
  const auto n_val =
      static_cast<std::size_t>(std::llround(validation_fraction * static_cast<double>(all.x.rows)));
  if (n_val == 0 || n_val >= all.x.rows)
    throw std::invalid_argument("split: too few rows for a training and a validation set");
  const std::size_t n_train = all.x.rows - n_val;
  return {subset(all, p.data(), n_train), subset(all, p.data() + n_train, n_val)};
}

void check_logit_range(std::span<const double> logits) {
  const double r_max = softmax::OursParams{}.r_max;
  double worst = 0;
  for (const double v : logits)
    worst = std::isnan(v) ? std::numeric_limits<double>::infinity() : std::max(worst, std::abs(v));
  if (worst <= r_max) return;
  char msg[160];
  std::snprintf(msg, sizeof msg,
                "a logit of magnitude %.4g is outside the encrypted softmax's input range "
                "[-%g, %g]",
                worst, r_max, r_max);
  throw LogitRangeError(msg);
}

matrix::Matrix predict(const matrix::Matrix& w, const matrix::Matrix& x, SoftmaxKind kind) {
  if (w.cols != x.cols + 1)
    throw std::invalid_argument("predict: weights are for " + std::to_string(w.cols - 1) +
                                " features, data has " + std::to_string(x.cols));
  const std::size_t c = w.rows, d = x.cols;
  const softmax::OursPolynomials polys = kind == SoftmaxKind::simulation_tournament
                                             ? softmax::ours_polynomials(c)
                                             : softmax::OursPolynomials{};
  const softmax::NsqPolynomials nsq_polys =
      kind == SoftmaxKind::simulation ? softmax::nsq_polynomials(c) : softmax::NsqPolynomials{};
  matrix::Matrix out(x.rows, c);  // logits first, then probabilities in place
#pragma omp parallel for schedule(static)
  for (std::size_t r = 0; r < x.rows; ++r) {
    for (std::size_t j = 0; j < c; ++j) {
      double s = w(j, d);
      for (std::size_t k = 0; k < d; ++k) s += w(j, k) * x(r, k);
      out(r, j) = s;
    }
  }
  // The simulation stands for the encrypted run, whose softmax holds on [-R, R] only.
  if (kind != SoftmaxKind::exact) check_logit_range(out.data);
#pragma omp parallel for schedule(static)
  for (std::size_t r = 0; r < x.rows; ++r) {
    const std::span<double> row(out.data.data() + r * c, c);
    const auto p = kind == SoftmaxKind::exact        ? softmax::exact(row)
                   : kind == SoftmaxKind::simulation ? softmax::nsq(row, nsq_polys)
                                                     : softmax::ours(row, polys);
    std::copy(p.begin(), p.end(), row.begin());
  }
  return out;
}

double accuracy(const matrix::Matrix& w, const Dataset& data) {
  const matrix::Matrix p = predict(w, data.x, SoftmaxKind::exact);
  std::size_t right = 0;
  for (std::size_t r = 0; r < p.rows; ++r) {
    const auto row = p.data.begin() + static_cast<long>(r * p.cols);
    right += static_cast<std::size_t>(std::max_element(row, row + static_cast<long>(p.cols)) -
                                      row) == data.y[r];
  }
  return static_cast<double>(right) / static_cast<double>(p.rows);
}

std::pair<double, double> logits_loss_accuracy(const matrix::Matrix& logits,
                                               const std::vector<std::size_t>& y) {
  if (y.size() != logits.rows) throw std::invalid_argument("logits and labels differ in rows");
  double loss = 0;
  std::size_t right = 0;
  for (std::size_t r = 0; r < logits.rows; ++r) {
    double mx = -std::numeric_limits<double>::infinity();
    std::size_t arg = 0;
    for (std::size_t j = 0; j < logits.cols; ++j)
      if (logits(r, j) > mx) mx = logits(r, j), arg = j;
    double z = 0;
    for (std::size_t j = 0; j < logits.cols; ++j) z += std::exp(logits(r, j) - mx);
    loss += std::log(z) + mx - logits(r, y[r]);  // -log softmax, stable
    right += arg == y[r];
  }
  const auto n = static_cast<double>(logits.rows);
  return {loss / n, static_cast<double>(right) / n};
}

double cross_entropy(const matrix::Matrix& w, const Dataset& data) {
  const matrix::Matrix p = predict(w, data.x, SoftmaxKind::exact);
  double loss = 0;
  for (std::size_t r = 0; r < p.rows; ++r) loss -= std::log(std::max(p(r, data.y[r]), 1e-300));
  return loss / static_cast<double>(p.rows);
}

void plain_step(PlainState& st, const Dataset& batch, const TrainParams& p) {
  const std::size_t bn = batch.x.rows, d = batch.x.cols, c = st.x.rows;
  if (bn == 0 || st.x.cols != d + 1 || st.look.rows != c || st.look.cols != d + 1)
    throw std::invalid_argument("plain_step: the state and the batch differ in shape");
  // Gradient at the lookahead point: (1/B) (P - Y)^T [X, 1].
  matrix::Matrix pr = predict(st.look, batch.x, p.softmax);
  for (std::size_t r = 0; r < bn; ++r) pr(r, batch.y[r]) -= 1;
  matrix::Matrix x_new = st.look;
  const double step = p.learning_rate / static_cast<double>(bn);
  for (std::size_t j = 0; j < c; ++j) {
    for (std::size_t r = 0; r < bn; ++r) {
      const double g = pr(r, j) * step;
      if (g == 0) continue;
      for (std::size_t k = 0; k < d; ++k) x_new(j, k) -= g * batch.x(r, k);
      x_new(j, d) -= g;
    }
  }
  ++st.steps;
  if (p.optimizer == Optimizer::nesterov) {
    // y_k = x_k + (k - 1) / (k + 2) (x_k - x_{k-1})
    const double mu = static_cast<double>(st.steps - 1) / static_cast<double>(st.steps + 2);
    for (std::size_t i = 0; i < st.look.data.size(); ++i)
      st.look.data[i] = x_new.data[i] + mu * (x_new.data[i] - st.x.data[i]);
  } else {
    st.look = x_new;
  }
  st.max_abs = std::max(matrix::max_abs(x_new), matrix::max_abs(st.look));
  if (p.weight_bound > 0 && !(st.max_abs < p.weight_bound))
    throw WeightRangeError("training step " + std::to_string(st.steps) + ": a weight reaches " +
                           std::to_string(st.max_abs) + ", beyond the weight bound " +
                           std::to_string(p.weight_bound) +
                           " the encrypted model is bootstrapped under; the encrypted run would "
                           "fail here: lower the learning rate or raise --weight-bound");
  st.x = std::move(x_new);
}

TrainResult train(const Dataset& train_set, const Dataset& validation, const TrainParams& p) {
  train_set.validate();
  validation.validate();
  if (validation.x.cols != train_set.x.cols || validation.classes != train_set.classes)
    throw std::invalid_argument("train: validation and training sets differ in shape");
  if (p.batch == 0 || p.max_epochs == 0 || !(p.learning_rate > 0))
    throw std::invalid_argument("train: batch, epochs and learning rate must be positive");
  const std::size_t n = train_set.x.rows, d = train_set.x.cols, c = train_set.classes;
  PlainState st{matrix::Matrix(c, d + 1), matrix::Matrix(c, d + 1)};
  TrainResult res;
  res.weights = st.x;
  double best = std::numeric_limits<double>::infinity();
  std::size_t since_best = 0;
  for (std::size_t epoch = 0; epoch < p.max_epochs; ++epoch) {
    // Batches as offsets into `order`, in the order they are visited.
    const std::size_t nb = (n + p.batch - 1) / p.batch;
    std::vector<std::size_t> order(n), starts(nb);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::iota(starts.begin(), starts.end(), std::size_t{0});
    if (p.batch_order == BatchOrder::shuffle_rows)
      order = permutation(n, p.seed, 100 + epoch);
    else
      starts = batch_order(nb, p.seed, epoch);
    for (const std::size_t bi : starts) {
      const std::size_t b0 = bi * p.batch, bn = std::min(p.batch, n - b0);
      const Dataset batch = subset(train_set, order.data() + b0, bn);
      try {
        plain_step(st, batch, p);
      } catch (const LogitRangeError& e) {
        throw LogitRangeError(
            "training step " + std::to_string(st.steps + 1) + ": " + e.what() +
            "; the encrypted run would diverge the same way: " + "lower the learning rate");
      }
      res.steps = st.steps;
      if (st.max_abs > res.max_abs_weight)
        res.max_abs_weight = st.max_abs, res.max_abs_weight_step = st.steps;
    }
    res.last_weights = st.x;
    EpochRecord rec;
    rec.validation_loss = cross_entropy(st.x, validation);
    rec.validation_accuracy = accuracy(st.x, validation);
    res.epochs.push_back(rec);
    if (rec.validation_loss < best) {
      best = rec.validation_loss;
      res.best_epoch = epoch;
      res.weights = st.x;
      since_best = 0;
    } else if (p.patience && ++since_best >= p.patience) {
      break;
    }
  }
  return res;
}

}  // namespace hetal::train
