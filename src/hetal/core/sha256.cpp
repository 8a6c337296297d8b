#include "hetal/core/sha256.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace hetal::core {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    throw std::runtime_error("SHA-256: OpenSSL could not start a digest");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, std::size_t bytes) {
  if (done_) throw std::logic_error("SHA-256: update after finish");
  if (bytes && EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, bytes) != 1)
    throw std::runtime_error("SHA-256: digest update failed");
}

std::array<std::uint8_t, 32> Sha256::finish() {
  if (done_) throw std::logic_error("SHA-256: finish called twice");
  std::array<std::uint8_t, 32> out{};
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &n) != 1 || n != 32)
    throw std::runtime_error("SHA-256: digest final failed");
  done_ = true;
  return out;
}

std::string Sha256::finish_hex() {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::uint8_t b : finish()) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

std::uint64_t Sha256::update_file(const std::string& path, std::uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  std::uint64_t done = 0;
  while (in && done < max_bytes) {
    in.read(buf.data(),
            static_cast<std::streamsize>(std::min<std::uint64_t>(max_bytes - done, buf.size())));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 0) break;
    update(buf.data(), got);
    done += got;
  }
  return done;
}

}  // namespace hetal::core
