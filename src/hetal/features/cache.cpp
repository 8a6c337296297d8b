#include "hetal/features/cache.h"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "hetal/data/npy.h"
#include "hetal/features/image.h"

namespace hetal::features {

namespace fs = std::filesystem;

namespace {
constexpr const char* kFiles[] = {"features.npy", "labels.npy", "classes.txt", "source.txt"};
}

void save_feature_set(const fs::path& dir, const FeatureSet& set) {
  if (set.x.size() != set.rows * set.cols || set.y.size() != set.rows)
    throw std::invalid_argument("feature set of " + std::to_string(set.rows) + " rows has " +
                                std::to_string(set.x.size()) + " values and " +
                                std::to_string(set.y.size()) + " labels");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create '" + dir.string() + "': " + ec.message());
  std::string classes;
  for (const auto& c : set.class_names) classes += c + "\n";
  // source.txt last: its presence marks a complete set.
  data::save_npy_f32((dir / "features.npy").string(), set.rows, set.cols, set.x);
  data::save_npy_i64((dir / "labels.npy").string(), set.y);
  data::write_file_atomic((dir / "classes.txt").string(), classes);
  data::write_file_atomic((dir / "source.txt").string(), set.description + "\n");
}

bool has_feature_set(const fs::path& dir) {
  for (const char* f : kFiles) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / f, ec)) return false;
  }
  return true;
}

void copy_feature_set(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) throw std::runtime_error("cannot create '" + to.string() + "': " + ec.message());
  for (const char* f : kFiles) {
    std::ifstream in(from / f, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read '" + (from / f).string() + "'");
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    data::write_file_atomic((to / f).string(), bytes);
  }
}

fs::path cache_root(const std::string& dir) {
  if (!dir.empty()) return dir;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0')
    return fs::path(x) / "hetal" / "features";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
    return fs::path(h) / ".cache" / "hetal" / "features";
  return fs::path(".hetal-cache") / "features";
}

fs::path cache_entry(const fs::path& root, const std::string& key) {
  return root / fnv1a_hex(key.data(), key.size());
}

}  // namespace hetal::features
