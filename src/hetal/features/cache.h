// Extracted features on disk: the files `hetal client extract` writes (features.npy n x d
// float32, labels.npy n int64, classes.txt one class name a line, source.txt) and a cache of
// them keyed by model, layer, input size and the input's content, so nothing is extracted
// twice. No HE dependency.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hetal::features {

struct FeatureSet {
  std::size_t rows = 0, cols = 0;
  std::vector<float> x;  ///< rows x cols, row-major
  std::vector<std::int64_t> y;
  std::vector<std::string> class_names;
  std::string description;  ///< what was extracted, with which model
};

/// Writes the four files into dir (created if needed), each atomically.
void save_feature_set(const std::filesystem::path& dir, const FeatureSet& set);
/// True when dir holds a complete set (every file save_feature_set writes).
bool has_feature_set(const std::filesystem::path& dir);
/// Copies a complete set's files from one folder to another (created if needed).
void copy_feature_set(const std::filesystem::path& from, const std::filesystem::path& to);

/// The cache folder: `dir` if given, else $XDG_CACHE_HOME/hetal/features, else
/// ~/.cache/hetal/features.
std::filesystem::path cache_root(const std::string& dir = "");
/// The cache entry for a key (the key is hashed into the folder name).
std::filesystem::path cache_entry(const std::filesystem::path& root, const std::string& key);

}  // namespace hetal::features
