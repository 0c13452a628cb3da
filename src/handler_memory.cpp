// SPDX-License-Identifier: BSL-1.0
// The recycling block pool behind detail::handler_allocator.
#include <wq/detail/handler_memory.hpp>

#include <array>
#include <cstddef>
#include <mutex>
#include <new>

namespace wq::detail {
namespace {

constexpr std::array<std::size_t, 3> class_sizes{128, 256, 512};
constexpr std::size_t thread_cache_capacity = 32;

struct free_block {
  free_block* next;
};

// Process-wide free lists. Immortal: allocated once and never destroyed, so that thread-local
// caches flushed after static destruction still find them.
struct global_pool {
  std::mutex mu;
  std::array<free_block*, class_sizes.size()> heads{};  // guarded by mu
};

global_pool& pool() {
  static global_pool* p = new global_pool;  // Safety: intentionally leaked (see above).
  return *p;
}

// Per-thread cache. Trivially destructible, so it stays usable (and bypassed once `dead`) for
// code that runs after this thread's thread_local destructors, such as static destructors on
// the main thread.
struct thread_cache {
  std::array<free_block*, class_sizes.size()> heads{};
  std::array<std::size_t, class_sizes.size()> counts{};
  bool dead = false;
};

thread_local thread_cache cache;

// Returns the cache's blocks to the global pool when the thread exits.
struct cache_flusher {
  ~cache_flusher() {
    auto& g = pool();
    std::lock_guard lk(g.mu);
    for (std::size_t c = 0; c < cache.heads.size(); ++c) {
      while (free_block* b = cache.heads[c]) {
        cache.heads[c] = b->next;
        b->next = g.heads[c];
        g.heads[c] = b;
      }
      cache.counts[c] = 0;
    }
    cache.dead = true;
  }
};

thread_local cache_flusher flusher;

thread_cache* live_cache() noexcept {
  if (cache.dead) return nullptr;
  (void)&flusher;  // odr-use: registers the flusher for this thread
  return &cache;
}

int class_of(std::size_t size, std::size_t align) noexcept {
  if (align > alignof(std::max_align_t)) return -1;
  for (std::size_t c = 0; c < class_sizes.size(); ++c)
    if (size <= class_sizes[c]) return static_cast<int>(c);
  return -1;
}

}  // namespace

void* handler_allocate(std::size_t size, std::size_t align) {
  const int c = class_of(size, align);
  if (c < 0) return ::operator new (size, std::align_val_t{align});
  const auto ci = static_cast<std::size_t>(c);
  thread_cache* tc = live_cache();
  if (tc != nullptr) {
    if (free_block* b = tc->heads[ci]) {
      tc->heads[ci] = b->next;
      --tc->counts[ci];
      return b;
    }
  }
  {
    auto& g = pool();
    std::lock_guard lk(g.mu);
    if (free_block* b = g.heads[ci]) {
      g.heads[ci] = b->next;
      return b;
    }
  }
  return ::operator new(class_sizes[ci]);
}

void handler_deallocate(void* p, std::size_t size, std::size_t align) noexcept {
  const int c = class_of(size, align);
  if (c < 0) {
    ::operator delete (p, std::align_val_t{align});
    return;
  }
  const auto ci = static_cast<std::size_t>(c);
  // Safety: the block is at least class_sizes[ci] bytes and max_align_t-aligned, so it can hold
  // the free-list link; nobody else references it any more.
  auto* b = ::new (p) free_block{nullptr};
  thread_cache* tc = live_cache();
  if (tc != nullptr && tc->counts[ci] < thread_cache_capacity) {
    b->next = tc->heads[ci];
    tc->heads[ci] = b;
    ++tc->counts[ci];
    return;
  }
  auto& g = pool();
  std::lock_guard lk(g.mu);
  b->next = g.heads[ci];
  g.heads[ci] = b;
}

void handler_reserve(std::size_t size, std::size_t count) {
  const int c = class_of(size, alignof(std::max_align_t));
  if (c < 0) return;  // served by operator new anyway
  const auto ci = static_cast<std::size_t>(c);
  auto& g = pool();
  for (std::size_t i = 0; i < count; ++i) {
    auto* b = ::new (::operator new(class_sizes[ci])) free_block{nullptr};
    std::lock_guard lk(g.mu);
    b->next = g.heads[ci];
    g.heads[ci] = b;
  }
}

}  // namespace wq::detail
