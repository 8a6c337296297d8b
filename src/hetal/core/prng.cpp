#include "hetal/core/prng.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "hetal/core/prng_batch.h"

namespace hetal::core {

Seed os_seed() {
  Seed s{};
  std::size_t got = 0;
  while (got < s.size()) {
    const ssize_t r = getrandom(s.data() + got, s.size() - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += static_cast<std::size_t>(r);
  }
  return s;
}

namespace {
inline std::uint32_t rotl(std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
inline void quarter(std::uint32_t* s, int a, int b, int c, int d) {
  s[a] += s[b];
  s[d] ^= s[a];
  s[d] = rotl(s[d], 16);
  s[c] += s[d];
  s[b] ^= s[c];
  s[b] = rotl(s[b], 12);
  s[a] += s[b];
  s[d] ^= s[a];
  s[d] = rotl(s[d], 8);
  s[c] += s[d];
  s[b] ^= s[c];
  s[b] = rotl(s[b], 7);
}
}  // namespace

Prng::Prng(const Seed& seed, std::uint64_t stream) {
  key_state_[0] = 0x61707865;
  key_state_[1] = 0x3320646e;
  key_state_[2] = 0x79622d32;
  key_state_[3] = 0x6b206574;
  for (int i = 0; i < 8; ++i) {
    std::uint32_t w;
    std::memcpy(&w, seed.data() + 4 * i, 4);  // little-endian host assumed (x86-64)
    key_state_[4 + i] = w;
  }
  key_state_[14] = static_cast<std::uint32_t>(stream);
  key_state_[15] = static_cast<std::uint32_t>(stream >> 32);
}

void Prng::refill() {
  std::array<std::uint32_t, 16> x = key_state_;
  x[12] = static_cast<std::uint32_t>(counter_);
  x[13] = static_cast<std::uint32_t>(counter_ >> 32);
  const std::array<std::uint32_t, 16> in = x;
  for (int i = 0; i < 10; ++i) {
    quarter(x.data(), 0, 4, 8, 12);
    quarter(x.data(), 1, 5, 9, 13);
    quarter(x.data(), 2, 6, 10, 14);
    quarter(x.data(), 3, 7, 11, 15);
    quarter(x.data(), 0, 5, 10, 15);
    quarter(x.data(), 1, 6, 11, 12);
    quarter(x.data(), 2, 7, 8, 13);
    quarter(x.data(), 3, 4, 9, 14);
  }
  for (int i = 0; i < 16; ++i) block_[i] = x[i] + in[i];
  ++counter_;
  pos_ = 0;
}

std::uint32_t Prng::next_u32() {
  if (pos_ >= 16) refill();
  return block_[pos_++];
}

std::uint64_t Prng::next_u64() {
  const std::uint64_t lo = next_u32();
  return lo | (static_cast<std::uint64_t>(next_u32()) << 32);
}

std::uint64_t Prng::uniform(std::uint64_t bound) {
  if (bound <= 1) return 0;
  const int bits = 64 - __builtin_clzll(bound - 1);
  const std::uint64_t mask = bits == 64 ? ~0ull : ((1ull << bits) - 1);
  for (;;) {
    const std::uint64_t x = next_u64() & mask;
    if (x < bound) return x;
  }
}

void Prng::fill(std::uint8_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(next_u32());
}

namespace {
// detail::accept_avx512's contract, one word at a time.
std::size_t accept_portable(const std::uint64_t* v, std::size_t words, std::uint64_t mask,
                            std::uint64_t bound, std::uint64_t* out, std::size_t room,
                            std::size_t& written) {
  std::size_t j = 0;
  written = 0;
  // Branch-free: the candidate is written either way and kept only when below the bound (half
  // the B16 primes sit just above a power of two, where half the candidates are rejected).
  for (; j < words && written < room; ++j) {
    const std::uint64_t x = v[j] & mask;
    out[written] = x;
    written += x < bound ? 1 : 0;
  }
  return j;
}
}  // namespace

void Prng::uniform_fill(std::uint64_t bound, std::uint64_t* out, std::size_t n) {
  const bool wide = detail::chacha_avx512_available(), avx2 = detail::chacha_avx2_available();
  std::size_t k = 0;
  // The batch path starts on a block boundary; a partial block is finished one word at a time.
  while (k < n && (pos_ < 16 || !(wide || avx2) || bound <= 1)) out[k++] = uniform(bound);
  if (k == n) return;
  const int bits = 64 - __builtin_clzll(bound - 1);
  const std::uint64_t mask = bits == 64 ? ~0ull : ((1ull << bits) - 1);
  const std::size_t blocks = wide ? 16 : 8, words = 8 * blocks;
  // Little-endian: the 64-bit words are the 32-bit word pairs (lo, hi) next_u64 reads.
  alignas(64) std::uint64_t v[128];
  while (k < n) {
    std::size_t got = 0, used = 0;
    if (wide) {
      detail::chacha_blocks16_avx512(key_state_, counter_, v);
      used = detail::accept_avx512(v, words, mask, bound, out + k, n - k, got);
    } else {
      detail::chacha_blocks8_avx2(key_state_, counter_, v);
      used = accept_portable(v, words, mask, bound, out + k, n - k, got);
    }
    k += got;
    if (used == words) {
      counter_ += blocks;
      continue;
    }
    // Stopped at 32-bit word w: leave the state as refill() would have (block_ = the block
    // holding word w, counter_ past it), or at a block boundary with nothing buffered.
    const std::size_t w = 2 * used, b = w / 16;
    if (w % 16 == 0) {
      counter_ += b;
    } else {
      std::memcpy(block_.data(), v + 8 * b, sizeof block_);
      counter_ += b + 1;
      pos_ = static_cast<unsigned>(w - 16 * b);
    }
  }
}

Seed Prng::next_seed() {
  Seed s{};
  for (std::size_t i = 0; i < s.size(); i += 4) {
    const std::uint32_t w = next_u32();
    std::memcpy(s.data() + i, &w, 4);
  }
  return s;
}

}  // namespace hetal::core
