#include "hetal/features/image_extractor.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "hetal/data/files.h"

namespace hetal::features {

namespace {

/// The pooled layers scripts/models/keras_to_onnx.py exposes (output "<layer>_gap"), with
/// their channel counts.
struct LayerInfo {
  const char* name;
  std::size_t channels;
};
constexpr LayerInfo kLayers[] = {
    {"block_3_expand_relu", 144}, {"block_5_add", 32},          {"block_6_expand_relu", 192},
    {"block_9_add", 64},          {"block_12_add", 96},         {"block_13_expand_relu", 576},
    {"block_15_add", 160},        {"block_16_project_BN", 320}, {"out_relu", 1280}};

std::string default_model() {
  const auto p = data::find_data("models/mobilenet_v2.onnx");
  return p.empty() ? std::string("data/models/mobilenet_v2.onnx") : p.string();
}

}  // namespace

struct ImageFeatureExtractor::Net {
  cv::dnn::Net net;
  std::string output;
};

ImageFeatureExtractor::ImageFeatureExtractor(ExtractorOptions options)
    : options_(std::move(options)), net_(std::make_unique<Net>()) {
  if (options_.model_path.empty()) options_.model_path = default_model();
  for (const auto& l : kLayers)
    if (options_.layer == l.name) dimension_ = l.channels;
  if (dimension_ == 0) {
    std::string known;
    for (const auto& l : kLayers) known += std::string(known.empty() ? "" : ", ") + l.name;
    throw std::invalid_argument("unknown feature layer '" + options_.layer + "' (known: " + known +
                                ")");
  }
  if (options_.input_size < 32 || options_.input_size > 512 || options_.input_size % 32 != 0)
    throw std::invalid_argument("input size " + std::to_string(options_.input_size) +
                                " not supported: a multiple of 32 from 32 to 512");
  if (options_.batch == 0) throw std::invalid_argument("extractor batch size must be positive");
  if (!data::is_file(options_.model_path))
    throw std::invalid_argument(options_.model_path +
                                ": model file not found (scripts/setup.sh converts MobileNetV2 "
                                "from npm nsfwjs into data/models/mobilenet_v2.onnx)");
  const std::vector<unsigned char> bytes = data::read_bytes(options_.model_path);
  model_fingerprint_ = std::to_string(bytes.size()) + ":" + fnv1a_hex(bytes.data(), bytes.size());
  try {
    net_->net = cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } catch (const cv::Exception& e) {
    throw std::invalid_argument(options_.model_path + ": not a model OpenCV can read (" +
                                std::string(e.err) + ")");
  }
  net_->output = options_.layer + "_gap";
  const auto names = net_->net.getUnconnectedOutLayersNames();
  if (std::find(names.begin(), names.end(), net_->output) == names.end())
    throw std::invalid_argument(options_.model_path + ": the model has no output '" + net_->output +
                                "' (re-run scripts/setup.sh)");
  net_->net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net_->net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  if (options_.threads > 0) cv::setNumThreads(options_.threads);
}

ImageFeatureExtractor::~ImageFeatureExtractor() = default;

std::vector<std::string> ImageFeatureExtractor::layers() {
  std::vector<std::string> out;
  for (const auto& l : kLayers) out.emplace_back(l.name);
  return out;
}

std::size_t ImageFeatureExtractor::dimension() const { return dimension_; }

std::string ImageFeatureExtractor::fingerprint() const {
  return "mobilenet_v2:" + model_fingerprint_ + ":" + options_.layer + ":" +
         std::to_string(options_.input_size);
}

void ImageFeatureExtractor::prepare(const Image& image, std::size_t s, float* out) {
  if (image.height == 0 || image.width == 0 || (image.channels != 1 && image.channels != 3) ||
      image.pixels.size() != image.height * image.width * image.channels)
    throw std::invalid_argument("malformed image: " + std::to_string(image.height) + " x " +
                                std::to_string(image.width) + " x " +
                                std::to_string(image.channels) + " with " +
                                std::to_string(image.pixels.size()) + " bytes");
  const int type = image.channels == 1 ? CV_8UC1 : CV_8UC3;
  const cv::Mat in(static_cast<int>(image.height), static_cast<int>(image.width), type,
                   const_cast<std::uint8_t*>(image.pixels.data()));
  cv::Mat resized;
  const bool shrink = image.height > s || image.width > s;
  cv::resize(in, resized, cv::Size(static_cast<int>(s), static_cast<int>(s)), 0, 0,
             shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  const std::size_t plane = s * s;
  for (std::size_t r = 0; r < s; ++r) {
    const std::uint8_t* row = resized.ptr<std::uint8_t>(static_cast<int>(r));
    for (std::size_t c = 0; c < s; ++c)
      for (std::size_t ch = 0; ch < 3; ++ch) {
        const std::uint8_t v = image.channels == 1 ? row[c] : row[c * 3 + ch];
        out[ch * plane + r * s + c] = static_cast<float>(v) / 255.0f;  // nsfwjs: x / 255
      }
  }
}

std::vector<float> ImageFeatureExtractor::extract_tensor(const std::vector<float>& nchw,
                                                         std::size_t n, std::size_t size) {
  if (nchw.size() != n * 3 * size * size)
    throw std::invalid_argument("input tensor has " + std::to_string(nchw.size()) +
                                " values, not n x 3 x " + std::to_string(size) + " x " +
                                std::to_string(size));
  const int shape[4] = {static_cast<int>(n), 3, static_cast<int>(size), static_cast<int>(size)};
  const cv::Mat blob(4, shape, CV_32F, const_cast<float*>(nchw.data()));
  net_->net.setInput(blob);
  cv::Mat out = net_->net.forward(net_->output);
  if (out.total() != n * dimension_)
    throw std::runtime_error("model output has " + std::to_string(out.total()) +
                             " values, expected " + std::to_string(n * dimension_));
  const float* p = out.ptr<float>();
  return std::vector<float>(p, p + out.total());
}

std::vector<float> ImageFeatureExtractor::extract(const ImageSource& source,
                                                  const ExtractProgress& progress) {
  const std::size_t n = source.size(), s = options_.input_size, per = 3 * s * s;
  std::vector<float> features(n * dimension_);
  std::vector<float> batch;
  const int threads = options_.threads > 0 ? options_.threads : omp_get_max_threads();
  for (std::size_t begin = 0; begin < n; begin += options_.batch) {
    const std::size_t count = std::min(options_.batch, n - begin);
    batch.resize(count * per);
    // Decoding and resizing in parallel; the first error (naming its file) is rethrown.
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (std::size_t k = 0; k < count; ++k) {
      try {
        prepare(source.image(begin + k), s, batch.data() + k * per);
      } catch (...) {
#pragma omp critical
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    const std::vector<float> f = extract_tensor(batch, count, s);
    std::copy(f.begin(), f.end(),
              features.begin() + static_cast<std::ptrdiff_t>(begin * dimension_));
    if (progress) progress(begin + count, n);
  }
  return features;
}

}  // namespace hetal::features
