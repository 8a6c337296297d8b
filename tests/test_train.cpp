// Plain reference trainer (train/plain_trainer): learns separable data, the simulation (the
// encrypted path's softmax in double precision) tracks the exact-softmax run, early stopping
// and input validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "hetal/core/prng.h"
#include "hetal/train/data_io.h"
#include "hetal/train/plain_trainer.h"
#include "train_util.h"

using namespace hetal;

using hetal::test::clusters;

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

// The simulation stands for the encrypted run, whose softmax holds on [-128, 128] only: logits
// beyond it are refused with the step named (the exact softmax has no such range).
TEST(PlainTrainer, TheSimulationRefusesLogitsOutsideTheSoftmaxRange) {
  const train::Dataset all = clusters(600, 16, 5, 4);
  const auto [tr, va] = train::split(all, 0.125, 0);
  train::TrainParams p;
  p.learning_rate = 5000;
  p.batch = 128;
  p.max_epochs = 2;
  EXPECT_NO_THROW(train::train(tr, va, p));
  p.softmax = train::SoftmaxKind::simulation;
  try {
    train::train(tr, va, p);
    ADD_FAILURE() << "no LogitRangeError";
  } catch (const train::LogitRangeError& e) {
    EXPECT_NE(std::string(e.what()).find("training step 2:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[-128, 128]"), std::string::npos) << e.what();
  }
  // In range, predict with the simulation works; 130 in one logit does not.
  matrix::Matrix w(2, 2), x(1, 1);
  x(0, 0) = 1;
  w(0, 0) = 127;
  EXPECT_NO_THROW(train::predict(w, x, train::SoftmaxKind::simulation));
  w(0, 1) = 3;
  EXPECT_THROW(train::predict(w, x, train::SoftmaxKind::simulation), train::LogitRangeError);
  EXPECT_NO_THROW(train::predict(w, x, train::SoftmaxKind::exact));
  // The same check on logits alone (what the client applies to decrypted ones); NaN counts.
  EXPECT_NO_THROW(train::check_logit_range(std::vector<double>{-128, 128, 0}));
  EXPECT_THROW(train::check_logit_range(std::vector<double>{1, -128.5}), train::LogitRangeError);
  EXPECT_THROW(train::check_logit_range(std::vector<double>{1, std::nan("")}),
               train::LogitRangeError);
}

// plain_step is train()'s step: the same batches in the same order give the same weights, and
// the largest |x_k|, |y_k| is reported; a weight bound below it is refused with the step named.
TEST(PlainTrainer, StepsReproduceTrainingAndTheWeightBoundIsChecked) {
  const train::Dataset all = clusters(700, 12, 4, 3);
  const auto [tr, va] = train::split(all, 0.125, 0);
  train::TrainParams p;
  p.learning_rate = 2;
  p.batch = 128;
  p.max_epochs = 1;
  p.batch_order = train::BatchOrder::fixed_batches;
  p.softmax = train::SoftmaxKind::simulation;
  const train::TrainResult res = train::train(tr, va, p);
  train::PlainState st{matrix::Matrix(4, 13), matrix::Matrix(4, 13)};
  const std::size_t nb = (tr.x.rows + p.batch - 1) / p.batch;
  double largest = 0;
  for (const std::size_t bi : train::batch_order(nb, p.seed, 0)) {
    train::Dataset b;
    b.classes = tr.classes;
    const std::size_t b0 = bi * p.batch, bn = std::min(p.batch, tr.x.rows - b0);
    b.x = matrix::Matrix(
        bn, tr.x.cols,
        std::vector<double>(tr.x.data.begin() + static_cast<long>(b0 * tr.x.cols),
                            tr.x.data.begin() + static_cast<long>((b0 + bn) * tr.x.cols)));
    b.y.assign(tr.y.begin() + static_cast<long>(b0), tr.y.begin() + static_cast<long>(b0 + bn));
    train::plain_step(st, b, p);
    largest = std::max(largest, st.max_abs);
  }
  EXPECT_EQ(st.steps, res.steps);
  EXPECT_EQ(matrix::max_abs_diff(st.x, res.last_weights), 0.0);
  EXPECT_EQ(res.max_abs_weight, largest);
  ASSERT_GT(largest, 0.0);
  EXPECT_GE(largest, matrix::max_abs(res.last_weights));
  p.weight_bound = largest * 1.0001;
  EXPECT_NO_THROW(train::train(tr, va, p));
  p.weight_bound = res.max_abs_weight * 0.9;
  try {
    train::train(tr, va, p);
    ADD_FAILURE() << "no WeightRangeError";
  } catch (const train::WeightRangeError& e) {
    EXPECT_NE(std::string(e.what()).find("weight bound"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("training step "), std::string::npos) << e.what();
  }
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

namespace {
std::string temp_path(const std::string& name) { return ::testing::TempDir() + "hetal_io_" + name; }
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
/// A version-1 .npy file: magic, header padded to 64 bytes, data.
std::string npy(const std::string& descr, bool fortran, const std::string& shape,
                const std::string& data) {
  std::string h = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                  ", 'shape': (" + shape + "), }";
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>(h.size() >> 8);
  return out + h + data;
}
template <class T>
std::string bytes_of(std::initializer_list<T> v) {
  std::string s;
  for (T x : v) s.append(reinterpret_cast<const char*>(&x), sizeof(T));
  return s;
}
}  // namespace

TEST(DataIo, NpyAndCsvFeaturesAndLabels) {
  const std::string f32 = temp_path("f32.npy");
  write_file(f32, npy("<f4", false, "2, 3", bytes_of<float>({1, 2, 3, 4, 5, 6.5f})));
  const matrix::Matrix m = train::load_matrix(f32);
  ASSERT_EQ(m.rows, 2u);
  ASSERT_EQ(m.cols, 3u);
  EXPECT_EQ(m(1, 2), 6.5);
  // Fortran order: the same matrix stored by columns.
  const std::string ff = temp_path("fortran.npy");
  write_file(ff, npy("<f8", true, "2, 3", bytes_of<double>({1, 4, 2, 5, 3, 6.5})));
  EXPECT_EQ(matrix::max_abs_diff(train::load_matrix(ff), m), 0.0);
  // Labels as int64 and as uint8, 1-D.
  const std::string l64 = temp_path("l64.npy"), l8 = temp_path("l8.npy");
  write_file(l64, npy("<i8", false, "4,", bytes_of<std::int64_t>({0, 3, 1, 2})));
  write_file(l8, npy("|u1", false, "4,", bytes_of<std::uint8_t>({0, 3, 1, 2})));
  EXPECT_EQ(train::load_labels(l64), (std::vector<std::size_t>{0, 3, 1, 2}));
  EXPECT_EQ(train::load_labels(l8), (std::vector<std::size_t>{0, 3, 1, 2}));
  // CSV with a header line.
  const std::string csv = temp_path("f.csv");
  write_file(csv, "a,b,c\n1,2,3\r\n4, 5 ,6.5\n\n");
  EXPECT_EQ(matrix::max_abs_diff(train::load_matrix(csv), m), 0.0);
}

TEST(DataIo, MalformedFilesAreRefusedWithTheirName) {
  const auto refused = [](const std::string& path, const std::string& what) {
    try {
      train::load_matrix(path);
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      return msg.find(path) != std::string::npos && msg.find(what) != std::string::npos;
    }
    return false;
  };
  const std::string bad = temp_path("bad.npy"), trunc = temp_path("trunc.npy"),
                    dtype = temp_path("dtype.npy"), ragged = temp_path("ragged.csv"),
                    text = temp_path("text.csv"), three = temp_path("three.npy");
  write_file(bad, "not numpy at all");
  write_file(trunc, npy("<f8", false, "2, 3", bytes_of<double>({1, 2, 3})));
  write_file(dtype, npy("<c16", false, "1,", std::string(16, '\0')));
  write_file(ragged, "1,2,3\n4,5\n");
  write_file(text, "1,2\n3,x\n");
  write_file(three, npy("<f4", false, "1, 1, 1", bytes_of<float>({1})));
  EXPECT_TRUE(refused(bad, "bad magic"));
  EXPECT_TRUE(refused(trunc, "data bytes"));
  EXPECT_TRUE(refused(dtype, "unsupported dtype"));
  EXPECT_TRUE(refused(ragged, "line 2 has 2 fields"));
  EXPECT_TRUE(refused(text, "line 2"));
  EXPECT_TRUE(refused(three, "3-D"));
  const std::string huge = temp_path("huge.npy");
  write_file(huge, npy("<f8", false, "999999999999, 999999999999", ""));
  EXPECT_TRUE(refused(huge, "fit"));
  EXPECT_TRUE(refused(temp_path("missing.npy"), "cannot open"));
  EXPECT_TRUE(refused(temp_path("x.txt"), "unknown file type"));
  const std::string neg = temp_path("neg.csv");
  write_file(neg, "1\n-2\n");
  EXPECT_THROW(train::load_labels(neg), std::invalid_argument);
}

TEST(PlainTrainer, LossAndAccuracyOfLogits) {
  // Row 0: softmax (1/4, 3/4), label 1 -> -log(3/4); row 1: argmax 0, label 1 -> wrong.
  const matrix::Matrix logits(2, 2, {0.0, std::log(3.0), 5.0, 1.0});
  const auto [loss, acc] = train::logits_loss_accuracy(logits, {1, 1});
  const double want = (-std::log(0.75) + (std::log(std::exp(5.0) + std::exp(1.0)) - 1.0)) / 2;
  EXPECT_NEAR(loss, want, 1e-12);
  EXPECT_DOUBLE_EQ(acc, 0.5);
  // Large logits stay finite (the max is subtracted first).
  const matrix::Matrix big(1, 2, {1000.0, 0.0});
  EXPECT_NEAR(train::logits_loss_accuracy(big, {0}).first, 0.0, 1e-12);
  EXPECT_THROW(train::logits_loss_accuracy(big, {0, 1}), std::invalid_argument);
}
