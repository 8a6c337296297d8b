// NumPy .npy writers (format 1.0, little-endian, C order): what `hetal client extract` writes
// and every tool (numpy.load, hetal's own readers) reads. Files are written under a temporary
// name, flushed and renamed, so a crash never leaves a half-written file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hetal::data {

/// rows x cols float32 matrix, row-major `values` (size rows * cols).
void save_npy_f32(const std::string& path, std::size_t rows, std::size_t cols,
                  const std::vector<float>& values);
/// 1-D int64 vector.
void save_npy_i64(const std::string& path, const std::vector<std::int64_t>& values);

/// Writes `bytes` to `path` atomically (temporary name in the same folder, then rename); with
/// owner_only the file is created with mode 0600 before a byte is written.
/// Throws std::runtime_error naming the file on failure.
void write_file_atomic(const std::string& path, const std::string& bytes, bool owner_only = false);
/// Creates an empty file with mode 0600 (O_EXCL: an existing file is an error).
void create_owner_only_file(const std::string& path);

}  // namespace hetal::data
