// Images as the client's extractors take them, and where they come from: the IDX sets
// (MNIST, Fashion-MNIST) and a folder of images per class (PNG, JPEG, BMP, ...: the usual
// one-folder-per-class convention). Sources decode lazily, one image at a time, so a large
// folder never sits in memory whole. No HE dependency.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hetal::features {

/// Interleaved 8-bit pixels, row-major: channels 1 (gray) or 3 (RGB).
struct Image {
  std::size_t height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual std::size_t size() const = 0;
  /// Image i (0 <= i < size()); a file that cannot be decoded throws std::invalid_argument
  /// naming it.
  virtual Image image(std::size_t i) const = 0;
  const std::vector<std::size_t>& labels() const { return labels_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  /// A fingerprint of the content (pixels or file bytes, labels): the feature cache's key.
  virtual std::string fingerprint() const = 0;
  /// Human-readable description ("mnist train", "folder photos/").
  virtual std::string describe() const = 0;

 protected:
  std::vector<std::size_t> labels_;
  std::vector<std::string> class_names_;
};

/// An IDX image file with its label file (classes: 10).
std::unique_ptr<ImageSource> idx_source(const std::string& images_path,
                                        const std::string& labels_path);
/// A built-in IDX set ("mnist" or "fashion-mnist"), split "train" or "test", as installed by
/// scripts/setup.sh (data::builtin_idx_files).
std::unique_ptr<ImageSource> builtin_source(const std::string& name, const std::string& split,
                                            const std::string& data_root = "");
/// `root/<class>/<image>`: every sub-folder is a class (sorted by name, labels 0, 1, ...), every
/// file with an image extension (.png .jpg .jpeg .bmp .tif .tiff .webp .pgm .ppm, any case) in
/// it an image. Throws std::invalid_argument for a missing or unreadable root, a root without
/// class folders, a class folder without images, or fewer than two classes.
std::unique_ptr<ImageSource> folder_source(const std::string& root);

/// Keeps the images [begin, end) of a source (labels and class names follow).
std::unique_ptr<ImageSource> slice(std::unique_ptr<ImageSource> source, std::size_t begin,
                                   std::size_t end);

/// 64-bit FNV-1a over bytes, as 16 hex digits: cache keys, not security.
std::string fnv1a_hex(const void* data, std::size_t n, std::uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace hetal::features
