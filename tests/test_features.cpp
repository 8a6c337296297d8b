// The client's image feature extractor (src/hetal/features): MobileNetV2 through OpenCV DNN
// against features computed once by the original TF.js model (nsfwjs 4.4.0) for fixed
// synthetic inputs (fixtures/mobilenet_v2_reference.json, made by
// scripts/models/dump_mobilenet_v2.js --reference), image sources, the cache files and the
// errors a user meets: corrupt or truncated images, wrong sizes, a missing model, an empty
// folder, each naming the file; the `hetal client extract` command's exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "hetal/data/files.h"
#include "hetal/features/cache.h"
#include "hetal/features/image_extractor.h"

namespace fs = std::filesystem;
using hetal::features::ExtractorOptions;
using hetal::features::Image;
using hetal::features::ImageFeatureExtractor;

namespace {

std::string model_path() {
  const auto p = hetal::data::find_data("models/mobilenet_v2.onnx");
  return p.string();
}

/// The synthetic input of the fixture (same formula as dump_mobilenet_v2.js), NCHW.
std::vector<float> synthetic(std::size_t count, std::size_t s) {
  std::vector<float> x(count * 3 * s * s);
  for (std::size_t k = 0; k < count; ++k)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t i = 0; i < s; ++i)
        for (std::size_t j = 0; j < s; ++j)
          x[((k * 3 + c) * s + i) * s + j] = static_cast<float>(
              0.5 + 0.5 * std::sin(0.05 * static_cast<double>(k + 1) * static_cast<double>(i) +
                                   0.11 * static_cast<double>(c + 1) * static_cast<double>(j) +
                                   0.7 * static_cast<double>(k) + static_cast<double>(c)));
  return x;
}

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() /
                     ("hetal-test-features-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// A gray gradient image with a square whose position depends on k.
cv::Mat test_image(int k, int h = 40, int w = 30) {
  cv::Mat m(h, w, CV_8UC3);
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c)
      m.at<cv::Vec3b>(r, c) = cv::Vec3b(static_cast<uchar>(4 * r), static_cast<uchar>(5 * c),
                                        static_cast<uchar>((r / 8 + c / 8 + k) % 2 ? 220 : 30));
  return m;
}

}  // namespace

class Features : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(model_path().empty())
        << "data/models/mobilenet_v2.onnx is missing: scripts/setup.sh converts it from npm "
           "nsfwjs (the test run installs it)";
  }
};

TEST_F(Features, MatchesTfjsReferenceOnEveryLayer) {
  std::ifstream in(std::string(HETAL_TEST_FIXTURES) + "/mobilenet_v2_reference.json");
  ASSERT_TRUE(in) << "fixture missing";
  const nlohmann::json ref = nlohmann::json::parse(in);
  const std::size_t s = ref["input_size"], count = ref["inputs"];
  const std::vector<float> x = synthetic(count, s);
  ASSERT_EQ(ref["features"].size(), ImageFeatureExtractor::layers().size());
  for (const auto& layer : ImageFeatureExtractor::layers()) {
    ExtractorOptions o;
    o.layer = layer;
    ImageFeatureExtractor ex(o);
    const std::vector<float> f = ex.extract_tensor(x, count, s);
    const auto& expect = ref["features"][layer];
    ASSERT_EQ(f.size(), expect.size()) << layer;
    ASSERT_EQ(f.size(), count * ex.dimension()) << layer;
    double err = 0, mag = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
      err = std::max(err, std::abs(f[i] - expect[i].get<double>()));
      mag = std::max(mag, std::abs(expect[i].get<double>()));
    }
    EXPECT_LE(err, 1e-4) << layer;
    EXPECT_GT(mag, 0.1) << layer << ": features all near zero";
  }
}

TEST_F(Features, SmallerInputsAndBatchesAgree) {
  ExtractorOptions o;
  o.input_size = 96;
  o.batch = 3;
  ImageFeatureExtractor ex(o);
  EXPECT_EQ(ex.dimension(), 576u);
  // The same image alone and inside a batch give the same features.
  const fs::path dir = scratch("batch");
  for (int c = 0; c < 2; ++c) {
    fs::create_directories(dir / ("class" + std::to_string(c)));
    for (int k = 0; k < 4; ++k)
      cv::imwrite(
          (dir / ("class" + std::to_string(c)) / ("img" + std::to_string(k) + ".png")).string(),
          test_image(k + 3 * c));
  }
  auto src = hetal::features::folder_source(dir.string());
  ASSERT_EQ(src->size(), 8u);
  EXPECT_EQ(src->labels(), (std::vector<std::size_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(src->class_names(), (std::vector<std::string>{"class0", "class1"}));
  std::size_t calls = 0;
  const std::vector<float> all = ex.extract(*src, [&](std::size_t, std::size_t) { ++calls; });
  EXPECT_EQ(calls, 3u);  // batches of 3, 3, 2
  auto one = hetal::features::slice(hetal::features::folder_source(dir.string()), 5, 6);
  const std::vector<float> f5 = ex.extract(*one);
  double err = 0;
  for (std::size_t i = 0; i < f5.size(); ++i)
    err = std::max(err, double(std::abs(f5[i] - all[5 * 576 + i])));
  EXPECT_LE(err, 1e-5);
  // Different images give different features.
  double diff = 0;
  for (std::size_t i = 0; i < 576; ++i)
    diff = std::max(diff, double(std::abs(all[i] - all[576 + i])));
  EXPECT_GT(diff, 1e-3);
  fs::remove_all(dir);
}

TEST_F(Features, PrepareScalesGrayToRgb) {
  Image im;
  im.height = im.width = 2;
  im.channels = 1;
  im.pixels = {0, 255, 255, 0};
  std::vector<float> out(3 * 64 * 64);
  ImageFeatureExtractor::prepare(im, 64, out.data());
  for (std::size_t c = 1; c < 3; ++c)
    for (std::size_t i = 0; i < 64 * 64; ++i) ASSERT_EQ(out[c * 64 * 64 + i], out[i]);
  EXPECT_FLOAT_EQ(out[0], 0.0f);   // top-left stays black
  EXPECT_FLOAT_EQ(out[63], 1.0f);  // top-right white
  im.pixels.pop_back();            // 3 bytes for 2 x 2: malformed
  EXPECT_NE(error_of([&] { ImageFeatureExtractor::prepare(im, 64, out.data()); }).find("malformed"),
            std::string::npos);
}

TEST_F(Features, ErrorsNameTheProblem) {
  ExtractorOptions o;
  o.model_path = "/nonexistent/model.onnx";
  EXPECT_NE(error_of([&] { ImageFeatureExtractor ex(o); }).find("/nonexistent/model.onnx"),
            std::string::npos);
  const fs::path dir = scratch("errors");
  // Not a model.
  {
    std::ofstream(dir / "bad.onnx") << "not a model";
    o.model_path = (dir / "bad.onnx").string();
    EXPECT_NE(error_of([&] { ImageFeatureExtractor ex(o); }).find("bad.onnx"), std::string::npos);
  }
  o.model_path.clear();
  o.layer = "block_99";
  EXPECT_NE(error_of([&] { ImageFeatureExtractor ex(o); }).find("unknown feature layer"),
            std::string::npos);
  o.layer = "block_13_expand_relu";
  o.input_size = 100;
  EXPECT_NE(error_of([&] { ImageFeatureExtractor ex(o); }).find("multiple of 32"),
            std::string::npos);
  o.input_size = 64;
  ImageFeatureExtractor ex(o);
  EXPECT_NE(error_of([&] { ex.extract_tensor(std::vector<float>(10), 1, 64); }).find("values"),
            std::string::npos);
  // Folders: missing, empty, one class, a class without images, a corrupt and a truncated image.
  EXPECT_NE(error_of([&] {
              hetal::features::folder_source((dir / "none").string());
            }).find("no such folder"),
            std::string::npos);
  fs::create_directories(dir / "empty");
  EXPECT_NE(error_of([&] {
              hetal::features::folder_source((dir / "empty").string());
            }).find("no class folders"),
            std::string::npos);
  fs::create_directories(dir / "one" / "a");
  cv::imwrite((dir / "one" / "a" / "x.png").string(), test_image(0));
  EXPECT_NE(error_of([&] {
              hetal::features::folder_source((dir / "one").string());
            }).find("only one class"),
            std::string::npos);
  fs::create_directories(dir / "one" / "b");
  std::ofstream(dir / "one" / "b" / "notes.txt") << "no images here";
  EXPECT_NE(error_of([&] {
              hetal::features::folder_source((dir / "one").string());
            }).find("without images"),
            std::string::npos);
  cv::imwrite((dir / "one" / "b" / "y.png").string(), test_image(1));
  std::ofstream(dir / "one" / "b" / "corrupt.jpg") << "garbage, not a JPEG";
  auto src = hetal::features::folder_source((dir / "one").string());
  EXPECT_NE(error_of([&] { ex.extract(*src); }).find("corrupt.jpg"), std::string::npos);
  fs::remove(dir / "one" / "b" / "corrupt.jpg");
  {
    std::vector<uchar> png;
    cv::imencode(".png", test_image(2, 200, 200), png);
    std::ofstream f(dir / "one" / "b" / "truncated.png", std::ios::binary);
    f.write(reinterpret_cast<const char*>(png.data()),
            static_cast<std::streamsize>(png.size() / 3));
  }
  src = hetal::features::folder_source((dir / "one").string());
  EXPECT_NE(error_of([&] { ex.extract(*src); }).find("truncated.png"), std::string::npos);
  fs::remove_all(dir);
}

TEST_F(Features, CacheFilesRoundTrip) {
  const fs::path dir = scratch("cache");
  hetal::features::FeatureSet set;
  set.rows = 2;
  set.cols = 3;
  set.x = {1, 2, 3, 4, 5, 6};
  set.y = {1, 0};
  set.class_names = {"cat", "dog"};
  set.description = "test";
  EXPECT_FALSE(hetal::features::has_feature_set(dir / "a"));
  hetal::features::save_feature_set(dir / "a", set);
  EXPECT_TRUE(hetal::features::has_feature_set(dir / "a"));
  hetal::features::copy_feature_set(dir / "a", dir / "b");
  EXPECT_TRUE(hetal::features::has_feature_set(dir / "b"));
  // The .npy header a NumPy reader expects.
  std::ifstream f(dir / "b" / "features.npy", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(bytes.substr(0, 6), "\x93NUMPY");
  EXPECT_NE(bytes.find("'shape': (2, 3)"), std::string::npos);
  EXPECT_EQ(bytes.size() % 64, 24u);  // 64-byte aligned header + 6 float32
  EXPECT_NE(hetal::features::cache_entry(dir, "k1"), hetal::features::cache_entry(dir, "k2"));
  set.y.pop_back();
  EXPECT_NE(error_of([&] { hetal::features::save_feature_set(dir / "c", set); }).find("labels"),
            std::string::npos);
  EXPECT_FALSE(hetal::features::has_feature_set(dir / "c"));
  fs::remove_all(dir);
}

namespace {
int run(const std::string& cmd, std::string& out) {
  const std::string full =
      cmd + " > " + (fs::temp_directory_path() / "hetal-extract-out").string() + " 2>&1";
  const int rc = std::system(full.c_str());
  std::ifstream f(fs::temp_directory_path() / "hetal-extract-out");
  out.assign((std::istreambuf_iterator<char>(f)), {});
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}
}  // namespace

TEST_F(Features, ExtractCommand) {
  const char* hetal = HETAL_BINARY;
  const fs::path dir = scratch("cli");
  for (int c = 0; c < 2; ++c) {
    fs::create_directories(dir / "photos" / (c ? "dog" : "cat"));
    for (int k = 0; k < 3; ++k)
      cv::imwrite((dir / "photos" / (c ? "dog" : "cat") / (std::to_string(k) + ".jpg")).string(),
                  test_image(k + c));
  }
  const std::string base =
      std::string(hetal) + " client extract --input-size 64 --cache " + (dir / "cache").string();
  std::string out;
  ASSERT_EQ(
      run(base + " --images " + (dir / "photos").string() + " --out " + (dir / "f").string(), out),
      0)
      << out;
  EXPECT_TRUE(hetal::features::has_feature_set(dir / "f"));
  std::ifstream classes(dir / "f" / "classes.txt");
  std::string all((std::istreambuf_iterator<char>(classes)), {});
  EXPECT_EQ(all, "cat\ndog\n");
  // Second time: from the cache.
  ASSERT_EQ(
      run(base + " --images " + (dir / "photos").string() + " --out " + (dir / "g").string(), out),
      0);
  EXPECT_NE(out.find("cached"), std::string::npos) << out;
  // A corrupt image: non-zero exit, the file named, no output written.
  std::ofstream(dir / "photos" / "dog" / "bad.png") << "not a png";
  EXPECT_NE(
      run(base + " --images " + (dir / "photos").string() + " --out " + (dir / "h").string(), out),
      0);
  EXPECT_NE(out.find("bad.png"), std::string::npos) << out;
  EXPECT_FALSE(hetal::features::has_feature_set(dir / "h"));
  // A missing model, an empty folder.
  EXPECT_NE(run(base + " --model /nonexistent.onnx --images " + (dir / "photos").string() +
                    " --out " + (dir / "i").string(),
                out),
            0);
  EXPECT_NE(out.find("/nonexistent.onnx"), std::string::npos) << out;
  fs::create_directories(dir / "empty");
  EXPECT_NE(
      run(base + " --images " + (dir / "empty").string() + " --out " + (dir / "j").string(), out),
      0);
  EXPECT_NE(out.find("no class folders"), std::string::npos) << out;
  fs::remove_all(dir);
}
