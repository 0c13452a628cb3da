// SPDX-License-Identifier: BSL-1.0
// The recycling block pool behind detail::handler_allocator.
//
// State and lock rules: the process-wide lists (global_pool) are guarded by their mutex; each
// thread's cache is its own. Trimming: blocks that stayed on a process-wide list through a whole
// trim period (its low-water mark) were not needed in that period and go back to the heap, down
// to the floor (keep_floor, plus what handler_reserve added), trim_batch blocks per step. The
// check runs on wq's timer thread, armed while some list is above its floor; a list goes above
// it only when more blocks than the floor were freed together (a spike of timer waits or of
// posts), and if delayed items have not started the timer thread by then (a program whose
// timers are all on its own io_context), the first such spike starts it. The timer is armed outside
// the mutex by the one thread that set `trim_armed` under it, and re-armed only by its own
// completion, so its calls never overlap.
#include <wq/detail/handler_memory.hpp>

#include <wq/detail/delayed_work.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include <boost/asio/steady_timer.hpp>

namespace wq::detail {
namespace {

constexpr std::array<std::size_t, 3> class_sizes{128, 256, 512};
constexpr std::size_t thread_cache_capacity = 32;
// Blocks per class always kept on the process-wide list (up to 896 KB for the three classes),
// however long unused.
constexpr std::size_t keep_floor = 1024;
constexpr auto trim_period = std::chrono::seconds(1);
// A trim frees at most this many blocks per step (about 100 us of operator delete), a step every
// trim_step, so that giving back a spike of 10^6 neither holds the pool's mutex nor delays the
// timer thread's completions by more than that.
constexpr std::size_t trim_batch = 4096;
constexpr auto trim_step = std::chrono::milliseconds(10);

struct free_block {
  free_block* next;
};

// Process-wide free lists. Immortal: allocated once and never destroyed, so that thread-local
// caches flushed after static destruction still find them.
struct global_pool {
  std::mutex mu;
  std::array<free_block*, class_sizes.size()> heads{};     // guarded by mu
  std::array<std::size_t, class_sizes.size()> counts{};    // guarded by mu: blocks on heads
  std::array<std::size_t, class_sizes.size()> low{};       // guarded by mu: least count since
                                                           // the last trim
  std::array<std::size_t, class_sizes.size()> reserved{};  // guarded by mu: handler_reserve's
  // Guarded by mu: blocks the last period's check found unused, still to free (in batches).
  std::array<std::size_t, class_sizes.size()> to_free{};
  std::chrono::steady_clock::time_point period_start{};  // guarded by mu: of the current period
  bool trim_armed = false;  // guarded by mu: the trim timer is armed, or being armed
  // Blocks the trim has freed, counted after their operator delete returned; atomic, relaxed
  // (a statistic: handler_blocks_trimmed).
  std::atomic<std::uint64_t> trimmed{0};
  boost::asio::steady_timer* trim_timer = nullptr;  // made by the first arming; immortal
};

global_pool& pool() {
  static global_pool* p = new global_pool;  // Safety: intentionally leaked (see above).
  return *p;
}

// Returns: whether class `c` holds more blocks than it keeps however long unused. Requires
// g.mu held.
bool above_floor(const global_pool& g, std::size_t c) noexcept {
  return g.counts[c] > keep_floor + g.reserved[c];
}

// Pushes `b` on class `c`'s process-wide list. Returns: whether the caller must arm the trim
// (it set trim_armed). Requires g.mu held.
[[nodiscard]] bool push_locked(global_pool& g, std::size_t c, free_block* b) noexcept {
  b->next = g.heads[c];
  g.heads[c] = b;
  ++g.counts[c];
  if (g.trim_armed || !above_floor(g, c)) return false;
  g.trim_armed = true;
  return true;
}

// Pops a block of class `c`, or nullptr. Requires g.mu held.
free_block* pop_locked(global_pool& g, std::size_t c) noexcept {
  free_block* b = g.heads[c];
  if (b == nullptr) return nullptr;
  g.heads[c] = b->next;
  --g.counts[c];
  if (g.counts[c] < g.low[c]) g.low[c] = g.counts[c];
  return b;
}

enum class may_start : bool { no, yes };
void arm_trim(std::chrono::steady_clock::duration delay, may_start start) noexcept;

// The trim check (on wq's timer thread). Once per period it takes each class's low-water mark
// as the blocks to free (down to its floor); it frees them trim_batch at a time, one batch per
// step, so that neither the pool's mutex nor the timer thread is held for long by a large
// trim; it re-arms while a batch is left, or while some class is still above its floor.
void run_trim() noexcept {
  auto& g = pool();
  free_block* doomed = nullptr;
  bool stepping = false;
  bool again = false;
  {
    std::lock_guard lk(g.mu);
    const auto now = std::chrono::steady_clock::now();
    const bool new_period = now - g.period_start >= trim_period;
    if (new_period) g.period_start = now;
    std::size_t budget = trim_batch;
    for (std::size_t c = 0; c < class_sizes.size(); ++c) {
      const std::size_t floor = keep_floor + g.reserved[c];
      const std::size_t above = g.counts[c] > floor ? g.counts[c] - floor : 0;
      if (new_period) {
        g.to_free[c] = g.low[c] < above ? g.low[c] : above;  // unused through the period
        g.low[c] = g.counts[c];
      }
      std::size_t n = g.to_free[c] < above ? g.to_free[c] : above;
      if (n > budget) n = budget;
      for (std::size_t i = 0; i < n; ++i) {
        free_block* b = pop_locked(g, c);
        b->next = doomed;
        doomed = b;
      }
      g.to_free[c] = n == above ? 0 : g.to_free[c] - n;
      budget -= n;
      stepping = stepping || g.to_free[c] > 0;
      again = again || above_floor(g, c);
    }
    g.trim_armed = stepping || again;
  }
  // Blocks of every class were made by ::operator new(size) of their class's size, and sized
  // delete is not required: the unsized form frees them.
  std::uint64_t freed = 0;
  while (doomed != nullptr) {
    free_block* next = doomed->next;
    ::operator delete(doomed);
    doomed = next;
    ++freed;
  }
  if (freed != 0) g.trimmed.fetch_add(freed, std::memory_order_relaxed);
  if (stepping)
    arm_trim(trim_step, may_start::no);  // the timer thread runs: we are on it
  else if (again)
    arm_trim(trim_period, may_start::no);
}

// Arms the trim timer to run `delay` from now, on wq's timer thread; starts that thread if
// delayed items have not and `start` allows it (not from a thread's exit, cache_flusher: a
// thread started there could outlive the process's last orderly point; that thread's blocks
// wait for the next spike). Requires: the caller set trim_armed (so nobody else uses the
// timer), not holding g.mu. On failure (out of memory, no thread) trimming stops until a later
// push arms it again.
void arm_trim(std::chrono::steady_clock::duration delay, may_start start) noexcept {
  auto& g = pool();
  boost::asio::io_context* ctx = started_timer_context();
  if (ctx == nullptr && start == may_start::yes) {
    try {
      ctx = &timer_context();
    } catch (...) {  // std::system_error or std::bad_alloc: no thread, no trim for now
    }
  }
  if (ctx == nullptr) {
    std::lock_guard lk(g.mu);
    g.trim_armed = false;
    return;
  }
  try {
    if (g.trim_timer == nullptr)
      g.trim_timer = new boost::asio::steady_timer(*ctx);  // Safety: immortal
    g.trim_timer->expires_after(delay);
    g.trim_timer->async_wait([](const boost::system::error_code&) { run_trim(); });
  } catch (...) {
    std::lock_guard lk(g.mu);
    g.trim_armed = false;
  }
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
    bool arm = false;
    {
      std::lock_guard lk(g.mu);
      for (std::size_t c = 0; c < cache.heads.size(); ++c) {
        while (free_block* b = cache.heads[c]) {
          cache.heads[c] = b->next;
          arm = push_locked(g, c, b) || arm;
        }
        cache.counts[c] = 0;
      }
      cache.dead = true;
    }
    if (arm) arm_trim(trim_period, may_start::no);
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
    if (free_block* b = pop_locked(g, ci)) return b;
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
  bool arm = false;
  {
    std::lock_guard lk(g.mu);
    arm = push_locked(g, ci, b);
  }
  if (arm) arm_trim(trim_period, may_start::yes);
}

void handler_reserve(std::size_t size, std::size_t count) {
  const int c = class_of(size, alignof(std::max_align_t));
  if (c < 0) return;  // served by operator new anyway
  const auto ci = static_cast<std::size_t>(c);
  auto& g = pool();
  {
    std::lock_guard lk(g.mu);
    g.reserved[ci] += count;  // kept from now on: raised before the blocks come
  }
  bool arm = false;
  for (std::size_t i = 0; i < count; ++i) {
    auto* b = ::new (::operator new(class_sizes[ci])) free_block{nullptr};
    std::lock_guard lk(g.mu);
    arm = push_locked(g, ci, b) || arm;
  }
  if (arm) arm_trim(trim_period, may_start::yes);
}

std::size_t handler_blocks_free() noexcept {
  auto& g = pool();
  std::lock_guard lk(g.mu);
  std::size_t n = 0;
  for (std::size_t c : g.counts) n += c;
  return n;
}

std::uint64_t handler_blocks_trimmed() noexcept {
  return pool().trimmed.load(std::memory_order_relaxed);
}

}  // namespace wq::detail
