// `hetal client extract`: the client's frozen pre-trained feature extractors (images through
// MobileNetV2, text through GloVe) writing the .npy files every other command takes, with a
// cache so nothing is extracted twice. Also used by `hetal demo` / `hetal reference`.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

namespace hetal::cli {

/// How images become features.
struct ImageFeatureChoice {
  std::string layer = "block_13_expand_relu";
  std::size_t input_size = 96;
  std::size_t batch = 32;
  std::string model;  ///< empty: data/models/mobilenet_v2.onnx
  std::string cache;  ///< empty: the default cache folder
  bool use_cache = true;
  /// Adds --layer, --input-size, --extract-batch, --model, --cache, --no-cache to a command.
  void add_options(CLI::App* c);
  /// The feature dimension of the chosen layer (loads the model: a missing file is an error).
  std::size_t dimension() const;
};

/// A folder whose features.npy starts with the features of images [0, limit) of a built-in
/// set's split (0: all): the whole split's cache entry if there is one, else the slice's,
/// extracted first unless cached. Read only the first `limit` rows. Prints progress on stderr.
std::filesystem::path builtin_image_features(const std::string& dataset, const std::string& split,
                                             std::size_t limit, const ImageFeatureChoice& choice);

class FeatureCommands {
 public:
  /// Adds `extract` under the `client` subcommand of app (which must exist).
  explicit FeatureCommands(CLI::App& app);
  ~FeatureCommands();
  bool run(int& exit_code);

 private:
  bool run_text(int& exit_code);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetal::cli
