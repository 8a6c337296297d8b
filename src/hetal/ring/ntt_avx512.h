// AVX-512 NTT stages with run-time dispatch, after Intel HEXL (Boemer et al., WAHC 2021):
//  - IFMA (52-bit multiply-accumulate) Shoup multiplication for primes q < 2^50, with
//    quotients floor(w 2^52 / q) and lazy values below 4q < 2^52;
//  - AVX-512DQ 64-bit Shoup multiplication (high product from four 32x32 products) for the
//    larger primes, quotients floor(w 2^64 / q).
// The portable path (AVX2 where the CPU has it, ntt_avx2.h, else scalar) runs on other CPUs,
// for N < 16, and when HETAL_NO_AVX512 is set in the environment.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hetal::ring::detail {

inline constexpr int kIfmaMaxBits = 50;

bool ifma_available();
bool avx512dq_available();

#define HETAL_DECLARE_NTT_STAGES(SUFFIX)                                                         \
  /* Forward (Cooley-Tukey) stage: m groups of 2t coefficients, t a multiple of 8. */            \
  void forward_stage_##SUFFIX(std::uint64_t* a, std::size_t m, std::size_t t,                    \
                              const std::uint64_t* w, const std::uint64_t* wq, std::uint64_t q); \
  /* Inverse (Gentleman-Sande) stage: h groups of 2t coefficients. */                            \
  void inverse_stage_##SUFFIX(std::uint64_t* a, std::size_t h, std::size_t t,                    \
                              const std::uint64_t* w, const std::uint64_t* wq, std::uint64_t q); \
  /* Last inverse stage with N^-1 merged: x' = (x+y) n_inv, y' = (x-y) n_inv w. */               \
  void inverse_last_stage_##SUFFIX(std::uint64_t* a, std::size_t t, std::uint64_t n_inv,         \
                                   std::uint64_t n_inv_q, std::uint64_t n_inv_w,                 \
                                   std::uint64_t n_inv_w_q, std::uint64_t q);                    \
  /* Stages with t in {1, 2, 4} over all n coefficients; w, wq: this stage's twiddles. */        \
  void forward_small_stage_##SUFFIX(std::uint64_t* a, std::size_t n, std::size_t t,              \
                                    const std::uint64_t* w, const std::uint64_t* wq,             \
                                    std::uint64_t q);                                            \
  void inverse_small_stage_##SUFFIX(std::uint64_t* a, std::size_t n, std::size_t t,              \
                                    const std::uint64_t* w, const std::uint64_t* wq,             \
                                    std::uint64_t q);
HETAL_DECLARE_NTT_STAGES(ifma)
HETAL_DECLARE_NTT_STAGES(dq)
#undef HETAL_DECLARE_NTT_STAGES

}  // namespace hetal::ring::detail
