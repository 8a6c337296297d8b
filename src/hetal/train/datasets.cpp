#include "hetal/train/datasets.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "hetal/data/idx.h"
#include "hetal/data/npy.h"

namespace hetal::train {

std::vector<std::string> builtin_datasets() { return data::builtin_datasets(); }

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::size_t classes) {
  if (classes == 0) throw std::invalid_argument("load_idx: classes must be positive");
  const data::IdxImages images = data::load_idx_images(images_path);
  std::vector<std::size_t> labels = data::load_idx_labels(labels_path, classes);
  const std::size_t n = images.count, d = images.rows * images.cols;
  if (labels.size() != n)
    throw std::invalid_argument("image and label counts differ: " + images_path + " has " +
                                std::to_string(n) + " images, " + labels_path + " has " +
                                std::to_string(labels.size()) + " labels");
  Dataset out;
  out.classes = classes;
  out.y = std::move(labels);
  std::array<double, 256> scale;
  for (std::size_t v = 0; v < scale.size(); ++v) scale[v] = static_cast<double>(v) / 255.0;
  std::vector<double> x(n * d);
  for (std::size_t k = 0; k < x.size(); ++k) x[k] = scale[images.pixels[k]];
  out.x = matrix::Matrix(n, d, std::move(x));
  return out;
}

Dataset load_builtin(const std::string& name, const std::string& split,
                     const std::string& data_root) {
  const data::IdxFiles files = data::builtin_idx_files(name, split, data_root);
  return load_idx(files.images, files.labels, 10);
}

Normalization normalization_from(const std::string& name) {
  if (name == "none") return Normalization::none;
  if (name == "l2") return Normalization::l2;
  if (name == "standard") return Normalization::standard;
  throw std::invalid_argument("unknown normalisation '" + name + "' (none, l2 or standard)");
}

std::string normalization_name(Normalization n) {
  return n == Normalization::none ? "none" : n == Normalization::l2 ? "l2" : "standard";
}

FeatureScaler FeatureScaler::fit(const matrix::Matrix& x, Normalization kind) {
  FeatureScaler s;
  s.kind = kind;
  if (kind != Normalization::standard) return s;
  if (x.rows == 0) throw std::invalid_argument("cannot fit a standard scaler on zero rows");
  s.mean.assign(x.cols, 0.0);
  s.inv_std.assign(x.cols, 0.0);
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t c = 0; c < x.cols; ++c) s.mean[c] += x(r, c);
  for (auto& m : s.mean) m /= static_cast<double>(x.rows);
  std::vector<double> var(x.cols, 0.0);
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t c = 0; c < x.cols; ++c)
      var[c] += (x(r, c) - s.mean[c]) * (x(r, c) - s.mean[c]);
  for (std::size_t c = 0; c < x.cols; ++c) {
    const double sd = std::sqrt(var[c] / static_cast<double>(x.rows));
    s.inv_std[c] = sd > 1e-12 * (1 + std::abs(s.mean[c])) ? 1 / sd : 0.0;
  }
  return s;
}

void FeatureScaler::apply(matrix::Matrix& x) const {
  if (kind != Normalization::standard) return normalize(x, kind);
  if (x.cols != mean.size())
    throw std::invalid_argument("feature scaler fitted on " + std::to_string(mean.size()) +
                                " columns applied to " + std::to_string(x.cols));
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t c = 0; c < x.cols; ++c)
      x(r, c) = std::clamp((x(r, c) - mean[c]) * inv_std[c], -kClamp, kClamp);
}

void FeatureScaler::save(const std::string& path) const {
  std::ostringstream out;
  out.precision(17);
  out << "hetal-feature-scaler 1\n" << normalization_name(kind) << "\n";
  if (kind == Normalization::standard) {
    out << mean.size() << "\n";
    for (std::size_t c = 0; c < mean.size(); ++c) out << mean[c] << " " << inv_std[c] << "\n";
  }
  data::write_file_atomic(path, out.str());
}

FeatureScaler FeatureScaler::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot open the feature scaler");
  std::string magic, kind;
  int version = 0;
  if (!(in >> magic >> version >> kind) || magic != "hetal-feature-scaler" || version != 1)
    throw std::invalid_argument(path + ": not a hetal feature scaler (version 1)");
  FeatureScaler s;
  s.kind = normalization_from(kind);
  if (s.kind != Normalization::standard) return s;
  std::size_t n = 0;
  if (!(in >> n) || n == 0 || n > (1u << 24))
    throw std::invalid_argument(path + ": bad column count");
  s.mean.resize(n);
  s.inv_std.resize(n);
  for (std::size_t c = 0; c < n; ++c)
    if (!(in >> s.mean[c] >> s.inv_std[c]) || !std::isfinite(s.mean[c]) ||
        !std::isfinite(s.inv_std[c]) || s.inv_std[c] < 0)
      throw std::invalid_argument(path + ": truncated or malformed at column " + std::to_string(c));
  std::string extra;
  if (in >> extra)
    throw std::invalid_argument(path + ": trailing data after " + std::to_string(n) + " columns");
  return s;
}

void normalize(matrix::Matrix& x, Normalization n) {
  if (n == Normalization::standard)
    throw std::invalid_argument(
        "standard normalisation needs statistics fitted on training rows "
        "(FeatureScaler)");
  if (n == Normalization::none) return;
  for (std::size_t r = 0; r < x.rows; ++r) {
    double s = 0;
    for (std::size_t k = 0; k < x.cols; ++k) s += x(r, k) * x(r, k);
    if (s == 0) continue;
    const double inv = 1 / std::sqrt(s);
    for (std::size_t k = 0; k < x.cols; ++k) x(r, k) *= inv;
  }
}

}  // namespace hetal::train
