#include "hetal/matrix/enc_matrix.h"

#include <algorithm>
#include <stdexcept>

namespace hetal::matrix {

std::size_t EncMatrix::level() const {
  if (blocks.empty()) throw std::invalid_argument("EncMatrix: no blocks");
  std::size_t l = blocks.front().level;
  for (const Ct& b : blocks) l = std::min(l, b.level);
  return l;
}

EncMatrix EncMatrix::shadow(const Layout& l, std::size_t level) {
  l.validate();
  EncMatrix m{l, std::vector<Ct>(l.count())};
  for (Ct& b : m.blocks) b.level = level;
  return m;
}

std::vector<ckks::Plaintext> encode(const ckks::Encoder& enc, const ckks::Context& ctx,
                                    const Layout& l, const Matrix& m, std::size_t level,
                                    double scale) {
  if (l.slots() > ctx.max_slots()) {
    throw std::invalid_argument("encode: " + l.describe() + " needs " + std::to_string(l.slots()) +
                                " slots, the context has " + std::to_string(ctx.max_slots()));
  }
  if (level > ctx.max_level()) throw std::invalid_argument("encode: level above the chain");
  if (scale == 0) scale = ctx.default_scale();
  std::vector<ckks::Plaintext> out;
  for (const auto& v : pack(l, m)) out.push_back(enc.encode(v, level, scale));
  return out;
}

EncMatrix encrypt(const ckks::Encoder& enc, ckks::Encryptor& encryptor, const ckks::Context& ctx,
                  const Layout& l, const Matrix& m, std::size_t level, double scale) {
  EncMatrix out{l, {}};
  for (const auto& pt : encode(enc, ctx, l, m, level, scale)) {
    out.blocks.push_back(Ct{encryptor.encrypt(pt), level, false});
  }
  return out;
}

std::vector<std::vector<double>> decrypt_slots(const ckks::Encoder& enc, const ckks::Decryptor& dec,
                                               const EncMatrix& m) {
  if (m.is_shadow()) throw std::invalid_argument("decrypt: a dry-run shadow has no ciphertexts");
  std::vector<std::vector<double>> out;
  for (const Ct& b : m.blocks) {
    if (b.tensor || b.unscaled) throw std::invalid_argument("decrypt: unfinished product");
    out.push_back(enc.decode_real(dec.decrypt(b.c)));
  }
  return out;
}

Matrix decrypt(const ckks::Encoder& enc, const ckks::Decryptor& dec, const EncMatrix& m) {
  return unpack(m.layout, decrypt_slots(enc, dec, m));
}

}  // namespace hetal::matrix
