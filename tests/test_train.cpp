// Plain reference trainer (train/plain_trainer): learns separable data, the simulation (the
// encrypted path's softmax in double precision) tracks the exact-softmax run, early stopping
// and input validation.
#include <gtest/gtest.h>

#include <cmath>

#include "hetal/core/prng.h"
#include "hetal/train/plain_trainer.h"

using namespace hetal;

namespace {
// c overlapping Gaussian clusters in d dimensions (a ~90 % accuracy problem).
train::Dataset clusters(std::size_t n, std::size_t d, std::size_t c, std::uint8_t seed) {
  core::Prng p(core::Seed{seed});
  const auto unit = [&] { return (p.next_u64() >> 11) * 0x1p-53; };
  std::vector<double> centres(c * d);
  for (auto& v : centres) v = 2 * unit() - 1;
  train::Dataset out;
  out.classes = c;
  out.x = matrix::Matrix(n, d);
  out.y.resize(n);
  for (std::size_t r = 0; r < n; ++r) {
    out.y[r] = r % c;
    for (std::size_t k = 0; k < d; ++k) {
      const double g = std::sqrt(-2 * std::log(unit() + 1e-300)) * std::cos(6.283185 * unit());
      out.x(r, k) = 0.5 * centres[out.y[r] * d + k] + 0.5 * g;
    }
  }
  return out;
}
}  // namespace

TEST(PlainTrainer, LearnsAndTheSimulationTracksTheExactRun) {
  const train::Dataset all = clusters(4000, 16, 5, 1);
  const auto [tr, va] = train::split(all, 0.125, 0);
  EXPECT_EQ(va.x.rows, 500u);
  EXPECT_EQ(tr.x.rows, 3500u);
  train::TrainParams p;
  p.learning_rate = 1.0;
  p.batch = 256;
  p.max_epochs = 5;
  const train::TrainResult exact = train::train(tr, va, p);
  p.softmax = train::SoftmaxKind::simulation;
  const train::TrainResult sim = train::train(tr, va, p);
  const double acc_e = train::accuracy(exact.weights, va), acc_s = train::accuracy(sim.weights, va);
  std::printf("validation accuracy exact %.4f, simulation %.4f; max |W diff| %.2e; %zu steps\n",
              acc_e, acc_s, matrix::max_abs_diff(exact.weights, sim.weights), exact.steps);
  EXPECT_GT(acc_e, 0.85);  // chance is 0.2; the clusters overlap (measured 0.882)
  EXPECT_LE(std::abs(acc_e - acc_s), 0.005);
  EXPECT_LT(matrix::max_abs_diff(exact.weights, sim.weights), 1e-4);
  EXPECT_EQ(exact.steps, 5u * 14u);  // ceil(3500 / 256) per epoch, last batch kept
  // Nesterov beats plain gradient descent on the same budget.
  p.softmax = train::SoftmaxKind::exact;
  p.optimizer = train::Optimizer::gradient_descent;
  const train::TrainResult gd = train::train(tr, va, p);
  EXPECT_LT(train::cross_entropy(exact.weights, va), train::cross_entropy(gd.weights, va));
}

TEST(PlainTrainer, EarlyStoppingKeepsTheBestEpoch) {
  // Noisy labels and a large step: the validation loss stops improving.
  train::Dataset all = clusters(1200, 8, 3, 2);
  core::Prng p(core::Seed{3});
  for (auto& y : all.y)
    if (p.next_u64() % 3 == 0) y = p.next_u64() % 3;
  const auto [tr, va] = train::split(all, 0.25, 1);
  train::TrainParams tp;
  tp.learning_rate = 8;
  tp.batch = 64;
  tp.max_epochs = 40;
  tp.patience = 3;
  const train::TrainResult r = train::train(tr, va, tp);
  ASSERT_LT(r.epochs.size(), 40u);
  EXPECT_EQ(r.epochs.size(), r.best_epoch + 1 + tp.patience);
  for (const auto& e : r.epochs)
    EXPECT_GE(e.validation_loss, r.epochs[r.best_epoch].validation_loss);
}

TEST(PlainTrainer, RefusesBadData) {
  train::Dataset d = clusters(100, 4, 3, 4);
  d.y[7] = 3;
  EXPECT_THROW(d.validate(), std::invalid_argument);
  d.y[7] = 0;
  d.x(5, 2) = std::nan("");
  EXPECT_THROW(d.validate(), std::invalid_argument);
  d.x(5, 2) = 0;
  d.y.pop_back();
  EXPECT_THROW(d.validate(), std::invalid_argument);
  d.y.push_back(0);
  EXPECT_NO_THROW(d.validate());
  EXPECT_THROW(train::split(d, 1.5, 0), std::invalid_argument);
  train::TrainParams tp;
  tp.batch = 0;
  EXPECT_THROW(train::train(d, d, tp), std::invalid_argument);
}
