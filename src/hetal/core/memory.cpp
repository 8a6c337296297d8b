#include "hetal/core/memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <vector>

namespace hetal::core {

namespace {
constexpr std::size_t kAlign = 64;

struct Block {
  std::size_t size;
  void* ptr;
};

// Free blocks in the order they were freed (front = oldest), indexed by size. Eviction drops
// the least recently freed blocks: the sizes in use keep coming back and stay cached.
struct BlockCache {
  std::mutex mutex;
  std::list<Block> lru;
  std::multimap<std::size_t, std::list<Block>::iterator> by_size;
  std::size_t cached = 0;
  std::size_t in_use = 0;       // bytes of cache-sized blocks handed out and not yet returned
  std::size_t peak_in_use = 0;  // their high-water mark: what the cache may fill up to
  std::size_t limit = [] {
    const char* s = std::getenv("HETAL_POOL_MAX_MB");
    return (s ? std::strtoull(s, nullptr, 10) : 2048ull) << 20;
  }();
  ~BlockCache() {
    for (auto& b : lru) ::operator delete(b.ptr, std::align_val_t(kAlign));
  }
};

// Drops the least recently freed block; returns it for freeing outside the lock.
void* evict_oldest(BlockCache& c) {
  const Block old = c.lru.front();
  auto range = c.by_size.equal_range(old.size);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == c.lru.begin()) {
      c.by_size.erase(it);
      break;
    }
  }
  c.lru.pop_front();
  c.cached -= old.size;
  return old.ptr;
}

BlockCache& cache() {
  static BlockCache c;  // allocator state only: free blocks, no user data
  return c;
}
}  // namespace

void secure_zero(void* p, std::size_t bytes) noexcept {
  if (p && bytes) explicit_bzero(p, bytes);
}

void* pool_allocate(std::size_t bytes) {
  if (bytes < kPoolMinBytes) return ::operator new(bytes, std::align_val_t(kAlign));
  BlockCache& c = cache();
  std::vector<void*> evicted;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.in_use += bytes;
    auto it = c.by_size.find(bytes);
    if (it != c.by_size.end()) {
      void* p = it->second->ptr;
      c.lru.erase(it->second);
      c.by_size.erase(it);
      c.cached -= bytes;
      return p;
    }
    // A miss: free cached blocks of other sizes first, so that blocks in use plus cached
    // blocks never exceed the high-water mark of blocks in use (the cache adds no footprint).
    while (!c.lru.empty() && c.in_use + c.cached > c.peak_in_use)
      evicted.push_back(evict_oldest(c));
    c.peak_in_use = std::max(c.peak_in_use, c.in_use);
  }
  for (void* e : evicted) ::operator delete(e, std::align_val_t(kAlign));
  return ::operator new(bytes, std::align_val_t(kAlign));
}

void pool_deallocate(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (bytes < kPoolMinBytes) {
    ::operator delete(p, std::align_val_t(kAlign));
    return;
  }
  BlockCache& c = cache();
  std::vector<void*> evicted;
  const bool keep = bytes <= c.limit;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.in_use -= bytes;
    if (keep) {
      while (c.cached + bytes > c.limit && !c.lru.empty()) evicted.push_back(evict_oldest(c));
      c.lru.push_back({bytes, p});
      c.by_size.emplace(bytes, std::prev(c.lru.end()));
      c.cached += bytes;
    }
  }
  for (void* e : evicted) ::operator delete(e, std::align_val_t(kAlign));
  if (!keep) ::operator delete(p, std::align_val_t(kAlign));
}

void pool_release() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& b : c.lru) ::operator delete(b.ptr, std::align_val_t(kAlign));
  c.lru.clear();
  c.by_size.clear();
  c.cached = 0;
}

std::size_t pool_cached_bytes() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.cached;
}

std::size_t pool_in_use_bytes() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.in_use;
}

std::size_t pool_peak_in_use_bytes() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.peak_in_use;
}

}  // namespace hetal::core
