#include "hetal/core/memory.h"

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <vector>

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
  if (bytes >= kPoolMinBytes && bytes <= cache().limit) {
    BlockCache& c = cache();
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      // Make room by evicting the largest cached blocks: a full cache of sizes that are no
      // longer requested must not stop the sizes in use now from being recycled.
      while (c.cached + bytes > c.limit && !c.free_blocks.empty()) {
        auto last = std::prev(c.free_blocks.end());
        c.cached -= last->first;
        evicted.push_back(last->second);
        c.free_blocks.erase(last);
      }
      c.free_blocks.emplace(bytes, p);
      c.cached += bytes;
    }
    for (void* e : evicted) ::operator delete(e, std::align_val_t(kAlign));
    return;
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
