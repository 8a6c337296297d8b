// The client's frozen pre-trained image model: MobileNetV2 (ImageNet-initialised weights that
// npm `nsfwjs@4.4.0` ships; scripts/setup.sh converts them once to ONNX with
// scripts/models/{dump_mobilenet_v2.js, keras_to_onnx.py}) run by OpenCV's DNN module. The
// features of an image are the global-average-pooled activations of one intermediate layer
// (research note data.md section 4: block 13's expansion, 576-d, is the best general feature;
// the last layers are specialised to nsfwjs's own task). No HE dependency.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hetal/features/image.h"

namespace hetal::features {

struct ExtractorOptions {
  /// ONNX file; empty: `models/mobilenet_v2.onnx` under the data roots (data::find_data).
  std::string model_path;
  /// The layer whose pooled output is the feature (see ImageFeatureExtractor::layers()).
  std::string layer = "block_13_expand_relu";
  /// Images are resized to input_size x input_size (a multiple of 32, 32..512). 96, not the
  /// model's native 224: on MNIST and Fashion-MNIST it gives a lower validation loss at a
  /// quarter of the cost (docs/benchmarks.md, "Pre-trained features").
  std::size_t input_size = 96;
  std::size_t batch = 32;  ///< images per forward pass
  int threads = 0;         ///< OpenCV / OpenMP threads (0: all cores)
};

/// done, total: called after every batch.
using ExtractProgress = std::function<void(std::size_t done, std::size_t total)>;

class ImageFeatureExtractor {
 public:
  /// Loads the model; throws std::invalid_argument for a missing or unreadable model file
  /// (naming it and saying to run scripts/setup.sh), an unknown layer (listing the known
  /// ones) or a bad input size.
  explicit ImageFeatureExtractor(ExtractorOptions options);
  ~ImageFeatureExtractor();
  ImageFeatureExtractor(const ImageFeatureExtractor&) = delete;
  ImageFeatureExtractor& operator=(const ImageFeatureExtractor&) = delete;

  /// The layers the model file exposes, in order.
  static std::vector<std::string> layers();
  std::size_t dimension() const;
  const ExtractorOptions& options() const { return options_; }
  /// Identifies model file (size and content hash), layer and input size: the cache key part.
  std::string fingerprint() const;

  /// Features of images [0, n) of `source`: n x dimension(), row-major.
  std::vector<float> extract(const ImageSource& source, const ExtractProgress& progress = {});
  /// Features of an already prepared NCHW float batch (RGB in [0, 1], n x 3 x s x s).
  std::vector<float> extract_tensor(const std::vector<float>& nchw, std::size_t n,
                                    std::size_t size);

  /// The network's input for one image: RGB (gray replicated), resized to s x s (bilinear when
  /// enlarging, area averaging when shrinking), scaled to [0, 1], planar (3 x s x s) into out.
  static void prepare(const Image& image, std::size_t s, float* out);

 private:
  struct Net;
  ExtractorOptions options_;
  std::unique_ptr<Net> net_;
  std::size_t dimension_ = 0;
  std::string model_fingerprint_;
};

}  // namespace hetal::features
