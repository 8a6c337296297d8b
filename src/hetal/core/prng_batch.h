// Batched ChaCha20 kernels behind Prng::uniform_fill (prng.cpp), chosen at run time: 16 blocks
// per call with AVX-512 (prng_avx512.cpp), 8 with AVX2 (prng_avx2.cpp), else one block at a
// time. HETAL_NO_AVX512 / HETAL_NO_AVX2 in the environment turn a path off (tests run all
// three on one machine). Every path yields the same stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace hetal::core::detail {

bool chacha_avx512_available();
bool chacha_avx2_available();

/// Blocks counter .. counter + 15 (AVX-512) or + 7 (AVX2) of the stream keyed by `state`,
/// block b's word w at out[16 b + w] (out 64-byte aligned): the stream's next 1 KiB / 512 B.
void chacha_blocks16_avx512(const std::array<std::uint32_t, 16>& state, std::uint64_t counter,
                            void* out);
void chacha_blocks8_avx2(const std::array<std::uint32_t, 16>& state, std::uint64_t counter,
                         void* out);

/// Rejection sampling over the `words` 64-bit words v: the masked values below bound go to
/// out, at most `room` of them (`written`); returns how many words of v were consumed (the
/// AVX2 path uses prng.cpp's portable loop).
std::size_t accept_avx512(const std::uint64_t* v, std::size_t words, std::uint64_t mask,
                          std::uint64_t bound, std::uint64_t* out, std::size_t room,
                          std::size_t& written);

}  // namespace hetal::core::detail
