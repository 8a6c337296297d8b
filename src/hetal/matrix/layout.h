// Plain matrices and the slot layouts of encrypted matrices (hetal.md section 3).
//
// A block is one ciphertext holding an s0 x s1 sub-matrix row-major in its s0*s1 slots, so that
// a rotation by k*s1 shifts whole rows and a rotation by k < s1 shifts columns (leaking across
// row ends). Every layout here is a pure function from a plain matrix to slot vectors: no
// encryption, so the layouts are testable on their own.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hetal::matrix {

/// A plain real matrix, row-major.
struct Matrix {
  std::size_t rows = 0, cols = 0;
  std::vector<double> data;

  Matrix() = default;
  Matrix(std::size_t r, std::size_t c) : rows(r), cols(c), data(r * c, 0.0) {}
  Matrix(std::size_t r, std::size_t c, std::vector<double> d);
  double& operator()(std::size_t i, std::size_t j) { return data[i * cols + j]; }
  double operator()(std::size_t i, std::size_t j) const { return data[i * cols + j]; }
};

Matrix transpose(const Matrix& m);
Matrix multiply(const Matrix& a, const Matrix& b);      ///< a * b
Matrix multiply_abt(const Matrix& a, const Matrix& b);  ///< a * b^T
Matrix multiply_atb(const Matrix& a, const Matrix& b);  ///< a^T * b
double max_abs_diff(const Matrix& a, const Matrix& b);
double max_abs(const Matrix& m);

/// Block shape: s0 rows by s1 columns, both powers of two; s0*s1 = the ciphertext's slots.
struct BlockShape {
  std::size_t s0 = 0, s1 = 0;
  std::size_t slots() const { return s0 * s1; }
  bool operator==(const BlockShape&) const = default;
};

/// The unit shape of HETAL's training loop (hetal.md section 3, from run.py):
/// c_pad = 2^ceil(log2 c), s0 = min(max(batch, c_pad), slots / c_pad), s1 = slots / s0.
BlockShape training_block_shape(std::size_t batch, std::size_t classes, std::size_t slots);

/// Smallest power of two >= c, and at least 2 (complexification pairs diagonals k, k + c/2).
std::size_t padded_classes(std::size_t c);

enum class Packing {
  /// Zero-padded blocks, grid ceil(rows/s0) x ceil(cols/s1).
  blocks,
  /// The c-row right operand of A*B^T (W): rows padded to `period` (a power of two dividing s0)
  /// and repeated s0/period times down each block; grid 1 x ceil(cols/s1). Also DiagATB's output.
  tiled_rows,
  /// The a x c left operand of A^T*B (P - Y): each row's `period` (padded) entries repeated
  /// s1/period times across the block; grid ceil(rows/s0) x 1. Also DiagABT's output.
  tiled_cols,
  /// Jin et al.: one ciphertext per column, the column in the first `rows` slots.
  columns,
  /// Jin et al.: one ciphertext per entry, the entry replicated in every slot (row-major order).
  scalars,
};

const char* packing_name(Packing p);

/// Where an encrypted matrix lives in its ciphertexts.
struct Layout {
  Packing packing = Packing::blocks;
  std::size_t rows = 0, cols = 0;
  BlockShape block;        ///< for columns/scalars only block.slots() matters
  std::size_t period = 0;  ///< tiled packings: padded extent of the tiled dimension

  static Layout blocks(std::size_t rows, std::size_t cols, BlockShape b);
  static Layout tiled_rows(std::size_t rows, std::size_t cols, BlockShape b);
  static Layout tiled_cols(std::size_t rows, std::size_t cols, BlockShape b);
  static Layout columns(std::size_t rows, std::size_t cols, std::size_t slots);
  static Layout scalars(std::size_t rows, std::size_t cols, std::size_t slots);

  std::size_t slots() const { return block.slots(); }
  std::size_t grid_rows() const;  ///< ciphertexts down (blocks) or 1
  std::size_t grid_cols() const;  ///< ciphertexts across (blocks) or count
  std::size_t count() const { return grid_rows() * grid_cols(); }
  /// Throws std::invalid_argument naming what is wrong.
  void validate() const;
  std::string describe() const;
  bool operator==(const Layout&) const = default;
};

/// Slot vectors (one per ciphertext, grid row-major) holding m in layout l.
std::vector<std::vector<double>> pack(const Layout& l, const Matrix& m);
/// The matrix back from slot vectors (real parts); tiled layouts read their first copy.
Matrix unpack(const Layout& l, const std::vector<std::vector<double>>& slots);

}  // namespace hetal::matrix
