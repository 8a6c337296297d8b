// libtorch training of CryptoTL's networks (hetal/nn/torch_models.h): learning, reproducibility
// with a seed, and the upper-layer model file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "hetal/nn/metrics.h"
#include "hetal/nn/torch_models.h"

using namespace hetal;
namespace fs = std::filesystem;

namespace {

// Two Gaussian blobs (or k) in d dimensions, scaled into [-1, 1]; the test rows come from the
// same distribution but are drawn separately.
nn::Table blobs(std::size_t rows, std::size_t d, std::size_t classes, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::mt19937_64 centres_g(99);  // the same centres for train and test draws
  std::normal_distribution<float> n01(0, 1);
  std::vector<std::vector<float>> centres(classes, std::vector<float>(d));
  for (auto& c : centres)
    for (auto& v : c) v = 0.25f * n01(centres_g);
  nn::Table t;
  t.rows = rows;
  t.cols = d;
  t.classes = classes;
  for (std::size_t r = 0; r < rows; ++r) {
    const auto c = static_cast<std::size_t>(g() % classes);
    t.y.push_back(static_cast<std::int64_t>(c));
    for (std::size_t i = 0; i < d; ++i)
      t.x.push_back(std::clamp(centres[c][i] + 0.3f * n01(g), -1.f, 1.f));
  }
  return t;
}

nn::TrainOptions quick(std::uint64_t seed) {
  nn::TrainOptions o;
  o.max_epochs = 15;
  o.patience = 15;
  o.seed = seed;
  return o;
}

}  // namespace

TEST(TorchModels, UpperLayersLearnAndRepeatWithASeed) {
  const auto train = blobs(400, 30, 2, 1), test = blobs(200, 30, 2, 2);
  const auto a = nn::UpperModel::train(train, quick(7));
  const auto b = nn::UpperModel::train(train, quick(7));
  const auto c = nn::UpperModel::train(train, quick(8));
  EXPECT_EQ(a.parameters(), b.parameters());  // same seed, same weights, bit for bit
  EXPECT_NE(a.parameters(), c.parameters());
  const auto m = nn::classification_metrics(test.y, a.predict(test.x, test.rows), 2);
  EXPECT_GT(m.accuracy, 0.9);
  EXPECT_EQ(a.predict(test.x, test.rows), b.predict(test.x, test.rows));
}

TEST(TorchModels, MultiClassUpperLayers) {
  const auto train = blobs(600, 20, 4, 3), test = blobs(300, 20, 4, 4);
  auto o = quick(1);
  o.max_epochs = 40;
  const auto a = nn::UpperModel::train(train, o);
  EXPECT_EQ(a.classes(), 4u);
  const auto m = nn::classification_metrics(test.y, a.predict(test.x, test.rows), 4);
  EXPECT_GT(m.accuracy, 0.85);
}

TEST(TorchModels, LowerNetworkLearnsItsSourceTask) {
  const auto src = blobs(500, 24, 2, 5);
  nn::TrainLog log;
  const auto net = nn::train_lower_network(src, quick(3), &log);
  EXPECT_EQ(net.dim, 24u);
  EXPECT_GT(log.epochs, 0u);
  EXPECT_LT(log.best_validation_loss, 0.4);  // chance is ln 2 = 0.69
  // the same seed gives the same lower network
  const auto again = nn::train_lower_network(src, quick(3));
  EXPECT_EQ(net.w1, again.w1);
  // its outputs carry the task: upper layers on them separate unseen rows
  auto features = [&](const nn::Table& t) {
    nn::Table out = t;
    out.cols = net.out_dim();
    const std::vector<double> xd(t.x.begin(), t.x.end());
    const auto y = nn::forward(nn::fuse(net), xd, t.rows);
    out.x.assign(y.begin(), y.end());
    return out;
  };
  const auto tr = features(blobs(400, 24, 2, 6)), te = features(blobs(200, 24, 2, 7));
  const auto up = nn::UpperModel::train(tr, quick(4));
  EXPECT_GT(nn::classification_metrics(te.y, up.predict(te.x, te.rows), 2).accuracy, 0.9);
}

TEST(TorchModels, UpperModelFileRoundTripAndBadFiles) {
  const auto train = blobs(200, 12, 3, 8);
  const auto a = nn::UpperModel::train(train, quick(2));
  const fs::path p = fs::temp_directory_path() / "hetal_upper_test.pt";
  a.save(p.string());
  const auto b = nn::UpperModel::load(p.string());
  EXPECT_EQ(b.input_dim(), 12u);
  EXPECT_EQ(b.classes(), 3u);
  EXPECT_EQ(a.parameters(), b.parameters());
  EXPECT_EQ(a.predict(train.x, train.rows), b.predict(train.x, train.rows));
  EXPECT_THROW(b.predict(std::vector<float>(10), 1), std::invalid_argument);  // wrong dimension
  const fs::path q = fs::temp_directory_path() / "hetal_upper_bad.pt";
  std::ofstream(q) << "not a model";
  try {
    nn::UpperModel::load(q.string());
    FAIL() << "junk accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(q.string()), std::string::npos);
  }
  EXPECT_THROW(nn::UpperModel::load((p.string() + ".missing")), std::invalid_argument);
  fs::remove(p);
  fs::remove(q);
}

TEST(TorchModels, BadTablesAreRefused) {
  auto t = blobs(50, 12, 2, 9);
  t.y[3] = 5;
  EXPECT_THROW(nn::UpperModel::train(t, quick(1)), std::invalid_argument);
  auto s = blobs(50, 5, 2, 9);  // below the kernel's width
  EXPECT_THROW(nn::train_lower_network(s, quick(1)), std::invalid_argument);
}
