#include "hetal/matrix/layout.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace hetal::matrix {

namespace {
std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
bool pow2(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }
std::string shape(std::size_t r, std::size_t c) {
  return std::to_string(r) + "x" + std::to_string(c);
}
}  // namespace

Matrix::Matrix(std::size_t r, std::size_t c, std::vector<double> d)
    : rows(r), cols(c), data(std::move(d)) {
  if (data.size() != r * c) {
    throw std::invalid_argument("Matrix: " + std::to_string(data.size()) + " values for a " +
                                shape(r, c) + " matrix");
  }
}

Matrix transpose(const Matrix& m) {
  Matrix t(m.cols, m.rows);
  for (std::size_t i = 0; i < m.rows; ++i)
    for (std::size_t j = 0; j < m.cols; ++j) t(j, i) = m(i, j);
  return t;
}

Matrix multiply(const Matrix& a, const Matrix& b) {
  if (a.cols != b.rows) {
    throw std::invalid_argument("multiply: " + shape(a.rows, a.cols) + " times " +
                                shape(b.rows, b.cols));
  }
  Matrix c(a.rows, b.cols);
  for (std::size_t i = 0; i < a.rows; ++i)
    for (std::size_t k = 0; k < a.cols; ++k) {
      const double x = a(i, k);
      for (std::size_t j = 0; j < b.cols; ++j) c(i, j) += x * b(k, j);
    }
  return c;
}

Matrix multiply_abt(const Matrix& a, const Matrix& b) { return multiply(a, transpose(b)); }
Matrix multiply_atb(const Matrix& a, const Matrix& b) { return multiply(transpose(a), b); }

double max_abs_diff(const Matrix& a, const Matrix& b) {
  if (a.rows != b.rows || a.cols != b.cols) {
    throw std::invalid_argument("max_abs_diff: " + shape(a.rows, a.cols) + " vs " +
                                shape(b.rows, b.cols));
  }
  double m = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) m = std::max(m, std::abs(a.data[i] - b.data[i]));
  return m;
}

double max_abs(const Matrix& m) {
  double r = 0;
  for (double x : m.data) r = std::max(r, std::abs(x));
  return r;
}

std::size_t padded_classes(std::size_t c) { return std::max<std::size_t>(2, std::bit_ceil(c)); }

BlockShape training_block_shape(std::size_t batch, std::size_t classes, std::size_t slots) {
  if (!pow2(slots))
    throw std::invalid_argument("training_block_shape: slots must be a power of two");
  const std::size_t cp = padded_classes(classes);
  const std::size_t s0 =
      std::min(std::max(std::bit_ceil(std::max<std::size_t>(batch, 1)), cp), slots / cp);
  const BlockShape b{s0, slots / s0};
  if (b.s0 < cp || b.s1 < cp) {
    throw std::invalid_argument("training_block_shape: " + std::to_string(classes) +
                                " classes need c_pad^2 <= slots");
  }
  return b;
}

const char* packing_name(Packing p) {
  switch (p) {
    case Packing::blocks:
      return "blocks";
    case Packing::tiled_rows:
      return "tiled_rows";
    case Packing::tiled_cols:
      return "tiled_cols";
    case Packing::columns:
      return "columns";
    case Packing::scalars:
      return "scalars";
  }
  return "?";
}

Layout Layout::blocks(std::size_t rows, std::size_t cols, BlockShape b) {
  Layout l{Packing::blocks, rows, cols, b, 0};
  l.validate();
  return l;
}
Layout Layout::tiled_rows(std::size_t rows, std::size_t cols, BlockShape b) {
  Layout l{Packing::tiled_rows, rows, cols, b, padded_classes(rows)};
  l.validate();
  return l;
}
Layout Layout::tiled_cols(std::size_t rows, std::size_t cols, BlockShape b) {
  Layout l{Packing::tiled_cols, rows, cols, b, padded_classes(cols)};
  l.validate();
  return l;
}
Layout Layout::columns(std::size_t rows, std::size_t cols, std::size_t slots) {
  Layout l{Packing::columns, rows, cols, BlockShape{1, slots}, 0};
  l.validate();
  return l;
}
Layout Layout::scalars(std::size_t rows, std::size_t cols, std::size_t slots) {
  Layout l{Packing::scalars, rows, cols, BlockShape{1, slots}, 0};
  l.validate();
  return l;
}

std::size_t Layout::grid_rows() const {
  switch (packing) {
    case Packing::blocks:
    case Packing::tiled_cols:
      return ceil_div(rows, block.s0);
    default:
      return 1;
  }
}

std::size_t Layout::grid_cols() const {
  switch (packing) {
    case Packing::blocks:
    case Packing::tiled_rows:
      return ceil_div(cols, block.s1);
    case Packing::columns:
      return cols;
    case Packing::scalars:
      return rows * cols;
    default:
      return 1;
  }
}

void Layout::validate() const {
  const std::string who = std::string("layout ") + packing_name(packing) + " " + shape(rows, cols);
  if (rows == 0 || cols == 0) throw std::invalid_argument(who + ": empty matrix");
  if (!pow2(block.s0) || !pow2(block.s1)) {
    throw std::invalid_argument(who + ": block " + shape(block.s0, block.s1) +
                                " must have power-of-two sides");
  }
  switch (packing) {
    case Packing::blocks:
      break;
    case Packing::tiled_rows:
      if (period != padded_classes(rows) || period > block.s0 || period > block.s1) {
        throw std::invalid_argument(who + ": " + std::to_string(rows) + " rows pad to " +
                                    std::to_string(padded_classes(rows)) +
                                    ", which must be <= both block sides " +
                                    shape(block.s0, block.s1));
      }
      break;
    case Packing::tiled_cols:
      if (period != padded_classes(cols) || period > block.s0 || period > block.s1) {
        throw std::invalid_argument(who + ": " + std::to_string(cols) + " columns pad to " +
                                    std::to_string(padded_classes(cols)) +
                                    ", which must be <= both block sides " +
                                    shape(block.s0, block.s1));
      }
      break;
    case Packing::columns:
      if (rows > block.slots()) {
        throw std::invalid_argument(who + ": a column of " + std::to_string(rows) +
                                    " entries does not fit " + std::to_string(block.slots()) +
                                    " slots");
      }
      break;
    case Packing::scalars:
      break;
  }
}

std::string Layout::describe() const {
  std::string s = std::string(packing_name(packing)) + " " + shape(rows, cols);
  if (packing == Packing::blocks || packing == Packing::tiled_rows ||
      packing == Packing::tiled_cols) {
    s += " in " + shape(block.s0, block.s1) + " blocks (" + std::to_string(count()) + " ct)";
  } else {
    s += " (" + std::to_string(count()) + " ct)";
  }
  return s;
}

std::vector<std::vector<double>> pack(const Layout& l, const Matrix& m) {
  l.validate();
  if (m.rows != l.rows || m.cols != l.cols) {
    throw std::invalid_argument("pack: a " + shape(m.rows, m.cols) + " matrix into " +
                                l.describe());
  }
  const std::size_t S = l.slots(), s0 = l.block.s0, s1 = l.block.s1;
  std::vector<std::vector<double>> out(l.count(), std::vector<double>(S, 0.0));
  switch (l.packing) {
    case Packing::blocks:
      for (std::size_t i = 0; i < m.rows; ++i)
        for (std::size_t j = 0; j < m.cols; ++j)
          out[(i / s0) * l.grid_cols() + j / s1][(i % s0) * s1 + j % s1] = m(i, j);
      break;
    case Packing::tiled_rows:
      for (std::size_t r = 0; r < s0; ++r) {
        const std::size_t i = r % l.period;
        if (i >= m.rows) continue;
        for (std::size_t j = 0; j < m.cols; ++j) out[j / s1][r * s1 + j % s1] = m(i, j);
      }
      break;
    case Packing::tiled_cols:
      for (std::size_t i = 0; i < m.rows; ++i)
        for (std::size_t t = 0; t < s1; ++t) {
          const std::size_t j = t % l.period;
          if (j < m.cols) out[i / s0][(i % s0) * s1 + t] = m(i, j);
        }
      break;
    case Packing::columns:
      for (std::size_t i = 0; i < m.rows; ++i)
        for (std::size_t j = 0; j < m.cols; ++j) out[j][i] = m(i, j);
      break;
    case Packing::scalars:
      for (std::size_t i = 0; i < m.rows; ++i)
        for (std::size_t j = 0; j < m.cols; ++j)
          std::fill(out[i * m.cols + j].begin(), out[i * m.cols + j].end(), m(i, j));
      break;
  }
  return out;
}

Matrix unpack(const Layout& l, const std::vector<std::vector<double>>& slots) {
  l.validate();
  if (slots.size() != l.count()) {
    throw std::invalid_argument("unpack: " + std::to_string(slots.size()) + " slot vectors for " +
                                l.describe());
  }
  for (const auto& v : slots) {
    if (v.size() < l.slots()) throw std::invalid_argument("unpack: short slot vector");
  }
  const std::size_t s0 = l.block.s0, s1 = l.block.s1;
  Matrix m(l.rows, l.cols);
  for (std::size_t i = 0; i < m.rows; ++i)
    for (std::size_t j = 0; j < m.cols; ++j) {
      switch (l.packing) {
        case Packing::blocks:
          m(i, j) = slots[(i / s0) * l.grid_cols() + j / s1][(i % s0) * s1 + j % s1];
          break;
        case Packing::tiled_rows:
          m(i, j) = slots[j / s1][i * s1 + j % s1];
          break;
        case Packing::tiled_cols:
          m(i, j) = slots[i / s0][(i % s0) * s1 + j];
          break;
        case Packing::columns:
          m(i, j) = slots[j][i];
          break;
        case Packing::scalars:
          m(i, j) = slots[i * m.cols + j][0];
          break;
      }
    }
  return m;
}

}  // namespace hetal::matrix
