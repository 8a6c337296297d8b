#include "hetal/core/memory.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace hetal::core {

namespace {
constexpr std::size_t kAlign = 64;

struct BlockCache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free_blocks;
  std::size_t cached = 0;
  std::size_t limit = [] {
    const char* s = std::getenv("HETAL_POOL_MAX_MB");
    return (s ? std::strtoull(s, nullptr, 10) : 2048ull) << 20;
  }();
  ~BlockCache() {
    for (auto& [size, p] : free_blocks) ::operator delete(p, std::align_val_t(kAlign));
  }
};

BlockCache& cache() {
  static BlockCache c;  // allocator state only: free blocks, no user data
  return c;
}
}  // namespace

void secure_zero(void* p, std::size_t bytes) noexcept {
  if (p && bytes) explicit_bzero(p, bytes);
}

void* pool_allocate(std::size_t bytes) {
  if (bytes >= kPoolMinBytes) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= bytes;
      return p;
    }
  }
  return ::operator new(bytes, std::align_val_t(kAlign));
}

void pool_deallocate(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (bytes >= kPoolMinBytes) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.cached + bytes <= c.limit) {
      c.free_blocks.emplace(bytes, p);
      c.cached += bytes;
      return;
    }
  }
  ::operator delete(p, std::align_val_t(kAlign));
}

void pool_release() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, p] : c.free_blocks) ::operator delete(p, std::align_val_t(kAlign));
  c.free_blocks.clear();
  c.cached = 0;
}

std::size_t pool_cached_bytes() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.cached;
}

}  // namespace hetal::core
