#include "hetal/train/data_io.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace hetal::train {

namespace {
[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::invalid_argument(path + ": " + what);
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Value of `key` in the header dict, e.g. 'descr': '<f4' -> <f4 (quotes removed).
std::string header_field(const std::string& path, const std::string& header,
                         const std::string& key) {
  const std::size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) fail(path, "npy header has no '" + key + "'");
  std::size_t v = header.find(':', k);
  if (v == std::string::npos) fail(path, "malformed npy header");
  ++v;
  while (v < header.size() && header[v] == ' ') ++v;
  if (v >= header.size()) fail(path, "malformed npy header");
  if (header[v] == '(') {
    const std::size_t e = header.find(')', v);
    if (e == std::string::npos) fail(path, "malformed npy shape");
    return header.substr(v + 1, e - v - 1);
  }
  if (header[v] == '\'') {
    const std::size_t e = header.find('\'', v + 1);
    if (e == std::string::npos) fail(path, "malformed npy header");
    return header.substr(v + 1, e - v - 1);
  }
  const std::size_t e = header.find_first_of(",}", v);
  return header.substr(v, e - v);
}

template <class T>
T load_scalar(const char* p, bool swap) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (swap) std::reverse(b, b + sizeof(T));
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

matrix::Matrix load_npy(const std::string& path) {
  const std::string s = read_all(path);
  if (s.size() < 10 || std::memcmp(s.data(), "\x93NUMPY", 6) != 0)
    fail(path, "not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(s[6]);
  std::size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(s[8]) | (static_cast<unsigned char>(s[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (s.size() < 12) fail(path, "truncated npy header");
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<std::size_t>(static_cast<unsigned char>(s[8 + i])) << (8 * i);
    offset = 12;
  } else {
    fail(path, "unsupported npy format version " + std::to_string(major));
  }
  if (offset + header_len > s.size()) fail(path, "truncated npy header");
  const std::string header = s.substr(offset, header_len);
  const std::string descr = header_field(path, header, "descr");
  const bool fortran =
      header_field(path, header, "fortran_order").find("True") != std::string::npos;
  std::vector<std::size_t> shape;
  std::stringstream ss(header_field(path, header, "shape"));
  for (std::string tok; std::getline(ss, tok, ',');) {
    tok.erase(std::remove(tok.begin(), tok.end(), ' '), tok.end());
    if (tok.empty()) continue;
    if (tok.find_first_not_of("0123456789") != std::string::npos || tok.size() > 12)
      fail(path, "bad shape " + tok);
    shape.push_back(std::stoull(tok));
  }
  if (shape.empty() || shape.size() > 2)
    fail(path, "expected a 1-D or 2-D array, got " + std::to_string(shape.size()) + "-D");
  const std::size_t rows = shape[0], cols = shape.size() == 2 ? shape[1] : 1;
  if (descr.size() < 3) fail(path, "unsupported dtype '" + descr + "'");
  const char order = descr[0], kind = descr[1];
  if (descr.find_first_not_of("0123456789", 2) != std::string::npos || descr.size() > 4)
    fail(path, "unsupported dtype '" + descr + "'");
  const std::size_t size = std::stoull(descr.substr(2));
  const bool swap = (order == '>' && std::endian::native == std::endian::little) ||
                    (order == '<' && std::endian::native == std::endian::big);
  const bool known =
      (kind == 'f' && (size == 4 || size == 8)) ||
      ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8));
  if (!known || (order != '<' && order != '>' && order != '|'))
    fail(path, "unsupported dtype '" + descr + "' (real or integer, 1-8 bytes)");
  const std::size_t data = offset + header_len;
  if (cols != 0 && rows > (s.size() - data) / cols / size + 1)
    fail(path, "shape does not fit the file");
  if (s.size() - data != rows * cols * size) {
    fail(path, "holds " + std::to_string(s.size() - data) + " data bytes, shape (" +
                   std::to_string(rows) + ", " + std::to_string(cols) + ") of '" + descr +
                   "' needs " + std::to_string(rows * cols * size));
  }
  matrix::Matrix m(rows, cols);
  for (std::size_t i = 0; i < rows * cols; ++i) {
    const char* p = s.data() + data + i * size;
    double v = 0;
    if (kind == 'f') {
      v = size == 4 ? load_scalar<float>(p, swap) : load_scalar<double>(p, swap);
    } else if (kind == 'i') {
      v = size == 1   ? load_scalar<std::int8_t>(p, swap)
          : size == 2 ? load_scalar<std::int16_t>(p, swap)
          : size == 4 ? load_scalar<std::int32_t>(p, swap)
                      : static_cast<double>(load_scalar<std::int64_t>(p, swap));
    } else {
      v = size == 1   ? load_scalar<std::uint8_t>(p, swap)
          : size == 2 ? load_scalar<std::uint16_t>(p, swap)
          : size == 4 ? load_scalar<std::uint32_t>(p, swap)
                      : static_cast<double>(load_scalar<std::uint64_t>(p, swap));
    }
    // Fortran order stores columns one after another.
    const std::size_t r = fortran ? i % rows : i / cols, c = fortran ? i / rows : i % cols;
    m(r, c) = v;
  }
  return m;
}

bool parse_number(const std::string& tok, double& v) {
  const char* b = tok.c_str();
  while (*b == ' ' || *b == '\t') ++b;
  char* e = nullptr;
  v = std::strtod(b, &e);
  if (e == b) return false;
  while (*e == ' ' || *e == '\t' || *e == '\r') ++e;
  return *e == '\0';
}

matrix::Matrix load_csv(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail(path, "cannot open");
  std::vector<double> values;
  std::size_t cols = 0, rows = 0, line_no = 0;
  for (std::string line; std::getline(f, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<double> row;
    bool numeric = true;
    std::stringstream ss(line);
    for (std::string tok; std::getline(ss, tok, ',');) {
      double v;
      if (!parse_number(tok, v)) {
        numeric = false;
        break;
      }
      row.push_back(v);
    }
    if (!numeric) {
      if (rows == 0 && cols == 0) continue;  // a header line
      fail(path, "line " + std::to_string(line_no) + " has a field that is not a number");
    }
    if (cols == 0) cols = row.size();
    if (row.size() != cols) {
      fail(path, "line " + std::to_string(line_no) + " has " + std::to_string(row.size()) +
                     " fields, earlier lines " + std::to_string(cols));
    }
    values.insert(values.end(), row.begin(), row.end());
    ++rows;
  }
  if (rows == 0) fail(path, "no numeric rows");
  return matrix::Matrix(rows, cols, std::move(values));
}
}  // namespace

matrix::Matrix load_matrix(const std::string& path) {
  if (ends_with(path, ".npy")) return load_npy(path);
  if (ends_with(path, ".csv")) return load_csv(path);
  fail(path, "unknown file type (use .npy or .csv)");
}

std::vector<std::size_t> load_labels(const std::string& path) {
  const matrix::Matrix m = load_matrix(path);
  if (m.cols != 1)
    fail(path, "labels must be one column, got " + std::to_string(m.cols) + " columns");
  std::vector<std::size_t> y(m.rows);
  for (std::size_t i = 0; i < m.rows; ++i) {
    const double v = m.data[i];
    if (!(v >= 0) || v != std::floor(v) || v > 1e9)
      fail(path, "label " + std::to_string(i) + " is not a non-negative integer");
    y[i] = static_cast<std::size_t>(v);
  }
  return y;
}

}  // namespace hetal::train
