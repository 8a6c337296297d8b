#include "hetal/data/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <system_error>

namespace hetal::data {

namespace {

static_assert(std::endian::native == std::endian::little, "the .npy writer assumes little-endian");

/// NPY 1.0 header for `descr` and `shape`, padded so the data start on a 64-byte boundary.
std::string npy_header(const std::string& descr, const std::string& shape) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const std::size_t unpadded = 10 + dict.size() + 1;  // magic, version, length, dict, newline
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  h += static_cast<char>(dict.size() & 0xff);
  h += static_cast<char>(dict.size() >> 8);
  return h + dict;
}

template <class T>
std::string raw(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

}  // namespace

void create_owner_only_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create '" + path + "'");
  ::close(fd);
}

void write_file_atomic(const std::string& path, const std::string& bytes, bool owner_only) {
  std::random_device rd;
  const std::string tmp = path + ".tmp-" + std::to_string(rd());
  if (owner_only) create_owner_only_file(tmp);  // never readable by others, not even briefly
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write '" + path + "': cannot create '" + tmp + "'");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw std::runtime_error("cannot write '" + path + "': write error (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot write '" + path + "': cannot rename the temporary file");
  }
}

void save_npy_f32(const std::string& path, std::size_t rows, std::size_t cols,
                  const std::vector<float>& values) {
  if (values.size() != rows * cols)
    throw std::invalid_argument("save_npy_f32: " + std::to_string(values.size()) +
                                " values for a " + std::to_string(rows) + " x " +
                                std::to_string(cols) + " matrix");
  std::string shape = "(";  // appended, not "(" + ...: g++ 12 warns falsely (-Wrestrict)
  shape.append(std::to_string(rows)).append(", ").append(std::to_string(cols)).append(")");
  write_file_atomic(path, npy_header("<f4", shape) + raw(values));
}

void save_npy_i64(const std::string& path, const std::vector<std::int64_t>& values) {
  std::string shape = "(";
  shape.append(std::to_string(values.size())).append(",)");
  write_file_atomic(path, npy_header("<i8", shape) + raw(values));
}

}  // namespace hetal::data
