#include "hetal/data/files.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <system_error>

#ifndef HETAL_SOURCE_DIR
#define HETAL_SOURCE_DIR ""
#endif

namespace hetal::data {

namespace fs = std::filesystem;

void fail(const std::string& path, const std::string& what) {
  throw std::invalid_argument(path + ": " + what);
}

namespace {

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

}  // namespace

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(path, "is a directory, not a file");
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

fs::path find_data(const std::string& relative, const std::string& data_root) {
  for (const fs::path& root : data_roots(data_root))
    for (const fs::path& dir : {root, root / "data"}) {
      std::error_code ec;
      if (fs::exists(dir / relative, ec)) return dir / relative;
    }
  return {};
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace hetal::data
