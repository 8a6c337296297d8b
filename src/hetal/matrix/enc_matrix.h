// Encrypted matrices: a layout plus its ciphertexts (or their shadows in a dry run), and the
// helpers between plain row-major matrices and ciphertexts.
#pragma once

#include <cstddef>
#include <vector>

#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/matrix/executor.h"
#include "hetal/matrix/layout.h"

namespace hetal::matrix {

struct EncMatrix {
  Layout layout;
  std::vector<Ct> blocks;  ///< grid row-major, layout.count() of them

  /// Lowest level among the blocks.
  std::size_t level() const;
  bool is_shadow() const { return !blocks.empty() && blocks.front().c.parts.empty(); }
  /// Ciphertext-free stand-in for dry runs (operation counts, key and mask lists).
  static EncMatrix shadow(const Layout& l, std::size_t level);
};

/// Plaintexts of m in layout l, at `level` and `scale` (0: the context's default scale).
std::vector<ckks::Plaintext> encode(const ckks::Encoder& enc, const ckks::Context& ctx,
                                    const Layout& l, const Matrix& m, std::size_t level,
                                    double scale = 0);
EncMatrix encrypt(const ckks::Encoder& enc, ckks::Encryptor& encryptor, const ckks::Context& ctx,
                  const Layout& l, const Matrix& m, std::size_t level, double scale = 0);
/// Real parts of every slot of every ciphertext (grid row-major).
std::vector<std::vector<double>> decrypt_slots(const ckks::Encoder& enc, const ckks::Decryptor& dec,
                                               const EncMatrix& m);
Matrix decrypt(const ckks::Encoder& enc, const ckks::Decryptor& dec, const EncMatrix& m);

}  // namespace hetal::matrix
