// 64-byte aligned storage for limb-major polynomial buffers, recycled through a block cache.
//
// At N = 2^16 every ciphertext limb is 512 KiB; allocating such buffers fresh costs a page fault
// and a kernel page clear per 4 KiB (measured: ~30% of a key switch). Large blocks are therefore
// returned to a process-wide cache of free blocks keyed by size (like SEAL's memory pool) and
// handed out again without touching the kernel. The cache holds only free memory, never data
// that outlives its owner, and is bounded twice by evicting the least recently freed blocks:
// at HETAL_POOL_MAX_MB (default 2048), and so that blocks in use plus cached never exceed the
// high-water mark of blocks in use: a miss first frees cached blocks of other sizes, so the
// cache adds nothing to the process's peak memory (at N = 2^16 it had added ~2.5 GB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace hetal::core {

/// Zeroes memory in a way the compiler cannot elide (for key material).
void secure_zero(void* p, std::size_t bytes) noexcept;

/// Aligned block allocation through the cache (blocks of at least kPoolMinBytes are cached).
void* pool_allocate(std::size_t bytes);
void pool_deallocate(void* p, std::size_t bytes) noexcept;
/// Frees every cached block (e.g. before a memory-hungry phase).
void pool_release() noexcept;
/// Bytes currently held in the cache.
std::size_t pool_cached_bytes() noexcept;
/// Bytes of cache-sized blocks handed out and not returned, and their high-water mark.
std::size_t pool_in_use_bytes() noexcept;
std::size_t pool_peak_in_use_bytes() noexcept;

inline constexpr std::size_t kPoolMinBytes = 64 * 1024;

template <class T, std::size_t Align = 64>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() noexcept = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U, Align>&) noexcept {}
  template <class U>
  struct rebind {
    using other = AlignedAllocator<U, Align>;
  };
  T* allocate(std::size_t n) { return static_cast<T*>(pool_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool_deallocate(p, n * sizeof(T)); }
  /// Default-initialises: growing a buffer does not zero it (callers write every word).
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const AlignedAllocator<U, Align>&) const noexcept {
    return true;
  }
};

using WordVector = std::vector<std::uint64_t, AlignedAllocator<std::uint64_t>>;

}  // namespace hetal::core
