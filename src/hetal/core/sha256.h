// SHA-256 (FIPS 180-4) through OpenSSL's EVP interface: content ids of key files, computed while
// the bytes go to or come from the disk, so that no file is read a second time to hash it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace hetal::core {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t bytes);
  /// Feeds the first `max_bytes` bytes of a file (all of it by default); returns how many were
  /// read (fewer if the file is shorter; 0 if it cannot be opened).
  std::uint64_t update_file(const std::string& path, std::uint64_t max_bytes = UINT64_MAX);
  /// The digest of everything fed so far; the object cannot be updated afterwards.
  std::array<std::uint8_t, 32> finish();
  /// finish() as 64 lowercase hex digits.
  std::string finish_hex();

 private:
  void* ctx_;  // EVP_MD_CTX
  bool done_ = false;
};

}  // namespace hetal::core
