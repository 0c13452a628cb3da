// SPDX-License-Identifier: BSL-1.0
// wq_bench: wq against what users would otherwise pick, in the same process and run.
// Benchmarks are named <workload>/<system>; bench/report.py turns the JSON into ratios against
// the baseline of each workload. The rules every workload follows (issue 17):
//
//   clock      every benchmark is timed on wall-clock (real) time, the clock report.py reads.
//   warm-up    every system of a workload gets the same untimed warm-up (warm_up below): 256
//              operations of one item, then one operation of the timed size.
//   allocs     every system reports `allocs_per_op`: calls to the malloc family (which operator
//              new, aligned new and Asio's aligned_alloc all reach) from all threads, counted in
//              one untimed pass after the timed loop. In timed loops the counting hooks cost one
//              relaxed load of a flag and a branch per malloc/free (set WQ_BENCH_COUNT_TIMED=1 to
//              count in timed loops too, which is how that cost was measured). tbb allocates
//              through its own scalable allocator (libtbbmalloc), which these hooks cannot see.
//   threads    every burst system must run its items on exactly 2 threads: the item function
//              tallies the threads that run it, the counters `worker_threads` and `busiest_share`
//              report them, and any other count fails the benchmark (SkipWithError).
//   per item   every burst item does the same thing whatever the system: a calibrated spin of
//              its work size, the thread tally, and one atomic countdown the producer waits on.
//
//   burst      items queued from one thread to 2 workers, timed until all have run: wq (a queue
//              owning 2 threads), asio_post (a lambda per item to asio::thread_pool(2)),
//              asio_post_pooled (the same lambdas bound to a recycling allocator), tbb
//              (task_arena(2, 0).enqueue under global_control(max_allowed_parallelism, 3): 2
//              worker slots and 2 workers in the market), libuv (uv_queue_work, pool size 2),
//              stealing_pool (libthread-pool-dev), naive (mutex + condition_variable pool of 2),
//              and two floors, the least one producer and 2 consumers can do with pre-allocated
//              intrusive items and a function pointer per item: floor (one mutex, batch pop;
//              floor_pool below) and floor_lockfree (a lock-free queue, bulk dequeue).
//              1 000 000 items of no work; then per-item work of 100 ns (1 000 000 items), 1 us
//              (100 000) and 10 us (20 000): burst_100ns/..., burst_1us/..., burst_10us/...,
//              every system at every size
//   burst_named  the same burst on a named queue (the shared normal pool, 2 workers), against
//              burst/wq (a queue owning 2 threads) in the same run
//   create     create + destroy a named queue vs create + destroy a strand of an io_context
//   pingpong   queue from one thread, the item signals back: wq vs asio_post
//   pingpong_io  the same on the application's io_context: wq vs asio::post to it
//   io_work_edge  one take + release of outstanding work on an io_context, by itself
//   dedup      queue_work on an item that is already pending (rule 1)
//   debounce   arm, then move the deadline later 1 000 000 times: wq (mod_delayed_work),
//              asio_lazy (the best raw Asio: the deadline is an atomic, a move is a store, the
//              completion re-waits when it comes early), asio_timer (the naive raw Asio:
//              expires_after + async_wait per move, each cancelling the previous wait)
//   armcancel  arm then cancel 100 000 fresh items (never armed before, constructed untimed):
//              wq vs Asio timers cancelled with cancel() (asio_timer) and vs Asio timers
//              cancelled lazily, as wq cancels (asio_lazy: a flag the handler reads, the wait
//              left outstanding); all start a new Asio wait per arm
//   armcancel_reuse  the same on the same 100 000 items every iteration: wq re-arms an item
//              whose Asio wait is still outstanding from the previous arm (no new wait), Asio
//              starts a new wait on a timer whose last wait was cancelled
//   lateness   p50/p99 lateness with 100 000 armed items: wq vs steady_timer
//   rss        heap bytes held per armed delayed item, measured in a fresh process of this
//              program (rss_child): the net malloc_usable_size of every malloc-family block
//              allocated minus every block freed, by all threads, from before the items exist
//              to after the last one is armed, over 100 000 items each allocated by itself with
//              new: the item or timer object itself, the Asio wait operation, the timer queue's
//              heap, and wq's recycled handler blocks (the process is fresh, so none was left
//              over by another workload). Not counted: glibc's 8-byte header per block (the
//              `blocks_per_item` counter says how many) and anything outside malloc (thread
//              stacks; neither system starts a thread in the window). Systems: wq (a
//              delayed_work), asio_timer (Asio's waitable timer bound to an io_context
//              executor, the smallest raw timer and the one wq embeds), steady_timer (the
//              ordinary asio::steady_timer); each wait's handler captures nothing.
//   allocs     allocations per call of wq's queue+run, mod, cancel, cancel_sync, flush_work and
//              flush (counted; the time of this benchmark means nothing)
//   alloc_hooks  what the counting hooks cost per malloc + free pair: straight into glibc (libc),
//              through the hooks with counting off, as in every timed loop (hooked), and with
//              counting on (counting)
#include <wq/detail/handler_memory.hpp>
#include <wq/wq.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <uv.h>
#include <thread_pool/thread_pool.hpp>

#include <malloc.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lateness.hpp"

// ---- allocation counting ----------------------------------------------------------------------
// The malloc family is replaced by forwarders to glibc's own allocator (glibc supports replacing
// malloc this way), so every allocation of the process is seen: operator new and aligned new
// (libstdc++ implements them with malloc and aligned_alloc) and Asio's handler memory
// (std::aligned_alloc). Counting is on only while `g_counting` is set: outside timed loops,
// unless WQ_BENCH_COUNT_TIMED is set. Compiled with -DWQ_BENCH_NO_ALLOC_HOOKS the hooks are left
// out (every allocs_per_op then reads 0): that build measures what the hooks cost.

extern "C" {
void* __libc_malloc(std::size_t size);
void __libc_free(void* p);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t align, std::size_t size);
}

namespace {

std::atomic<bool> g_counting{false};
bool g_count_timed = false;  // WQ_BENCH_COUNT_TIMED: count in timed loops too
std::atomic<std::uint64_t> g_alloc_calls{0};
std::atomic<std::uint64_t> g_alloc_bytes{0};
std::atomic<std::uint64_t> g_free_calls{0};
std::atomic<std::uint64_t> g_free_bytes{0};

// Counts a block that was just allocated (if counting is on).
inline void note_alloc(void* p) noexcept {
  if (g_counting.load(std::memory_order_relaxed) && p != nullptr) [[unlikely]] {
    g_alloc_calls.fetch_add(1, std::memory_order_relaxed);
    g_alloc_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
  }
}

// Counts a block about to be freed (if counting is on).
inline void note_free(void* p) noexcept {
  if (g_counting.load(std::memory_order_relaxed) && p != nullptr) [[unlikely]] {
    g_free_calls.fetch_add(1, std::memory_order_relaxed);
    g_free_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
  }
}

}  // namespace

#ifndef WQ_BENCH_NO_ALLOC_HOOKS
// glibc's malloc, counted.
extern "C" void* malloc(std::size_t size) noexcept {
  void* p = __libc_malloc(size);
  note_alloc(p);
  return p;
}
// glibc's free, counted.
extern "C" void free(void* p) noexcept {
  note_free(p);
  __libc_free(p);
}
// glibc's calloc, counted.
extern "C" void* calloc(std::size_t n, std::size_t size) noexcept {
  void* p = __libc_calloc(n, size);
  note_alloc(p);
  return p;
}
// glibc's realloc, counted as freeing the old block and allocating the new one.
extern "C" void* realloc(void* p, std::size_t size) noexcept {
  const bool counting = g_counting.load(std::memory_order_relaxed);
  const std::size_t old = counting && p != nullptr ? malloc_usable_size(p) : 0;
  void* q = __libc_realloc(p, size);
  if (counting && (q != nullptr || size == 0) && p != nullptr) {
    g_free_calls.fetch_add(1, std::memory_order_relaxed);
    g_free_bytes.fetch_add(old, std::memory_order_relaxed);
  }
  note_alloc(q);
  return q;
}
// glibc's memalign, counted.
extern "C" void* memalign(std::size_t align, std::size_t size) noexcept {
  void* p = __libc_memalign(align, size);
  note_alloc(p);
  return p;
}
// aligned_alloc (Asio's and aligned new's way in) on glibc's memalign, counted.
extern "C" void* aligned_alloc(std::size_t align, std::size_t size) noexcept {
  void* p = __libc_memalign(align, size);
  note_alloc(p);
  return p;
}
// posix_memalign on glibc's memalign, counted.
extern "C" int posix_memalign(void** out, std::size_t align, std::size_t size) noexcept {
  if (align == 0 || align % sizeof(void*) != 0 || (align & (align - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(align, size);
  if (p == nullptr) return ENOMEM;
  note_alloc(p);
  *out = p;
  return 0;
}
// valloc on glibc's memalign, counted.
extern "C" void* valloc(std::size_t size) noexcept {
  void* p = __libc_memalign(static_cast<std::size_t>(sysconf(_SC_PAGESIZE)), size);
  note_alloc(p);
  return p;
}
#endif

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
/// The raw Asio timer of the timer baselines: Asio's waitable timer bound to an io_context
/// executor (8 bytes) rather than any_io_executor: the smallest and cheapest raw timer, and the
/// one wq's delayed_work embeds.
using raw_timer = asio::basic_waitable_timer<clock_type, asio::wait_traits<clock_type>,
                                             asio::io_context::executor_type>;

constexpr int timer_items = 100'000;

/// Allocation totals since the start (only what was counted).
struct alloc_totals {
  std::uint64_t calls = 0;
  std::uint64_t bytes = 0;
  std::uint64_t frees = 0;
  std::uint64_t freed_bytes = 0;
};

/// The totals counted so far.
alloc_totals alloc_snapshot() noexcept {
  return {
      g_alloc_calls.load(std::memory_order_relaxed), g_alloc_bytes.load(std::memory_order_relaxed),
      g_free_calls.load(std::memory_order_relaxed), g_free_bytes.load(std::memory_order_relaxed)};
}

/// Runs `op` once with allocation counting on (untimed) and returns the calls it made to the
/// malloc family, from every thread.
template <class Op>
std::uint64_t count_allocs(Op&& op) {
  const std::uint64_t before = g_alloc_calls.load(std::memory_order_relaxed);
  g_counting.store(true, std::memory_order_relaxed);
  op();
  g_counting.store(g_count_timed, std::memory_order_relaxed);
  return g_alloc_calls.load(std::memory_order_relaxed) - before;
}

/// Sets `allocs_per_op` from a counted pass of `op`, which does `ops` operations.
template <class Op>
void report_allocs(benchmark::State& state, double ops, Op&& op) {
  const auto n = static_cast<double>(count_allocs(std::forward<Op>(op)));
  state.counters["allocs_per_op"] = benchmark::Counter(n / ops);
}

/// Checks that the hooks see every way this program allocates: operator new, aligned new and
/// std::aligned_alloc (Asio's). False if one is missed.
bool alloc_counting_works() {
  const std::uint64_t n = count_allocs([] {
    void* a = ::operator new(24);
    benchmark::DoNotOptimize(a);
    ::operator delete(a);
    void* b = ::operator new (64, std::align_val_t{64});
    benchmark::DoNotOptimize(b);
    ::operator delete (b, std::align_val_t{64});
    void* c = std::aligned_alloc(64, 128);
    benchmark::DoNotOptimize(c);
    std::free(c);
  });
  return n == 3;
}

// What the hooks cost: a malloc + free pair of 64 bytes straight into glibc (mode 0), through
// the hooks with counting off as in every timed loop (1), and with counting on (2).
void alloc_hooks(benchmark::State& state, int mode) {
  const bool was = g_counting.load(std::memory_order_relaxed);
  if (mode == 2) g_counting.store(true, std::memory_order_relaxed);
  for (auto _ : state) {
    void* p = mode == 0 ? __libc_malloc(64) : std::malloc(64);
    benchmark::DoNotOptimize(p);
    if (mode == 0)
      __libc_free(p);
    else
      std::free(p);
  }
  g_counting.store(was, std::memory_order_relaxed);
}

// ---- warm-up ----------------------------------------------------------------------------------

/// The warm-up every system of a workload gets before its timed loop, untimed and uncounted:
/// 256 operations of one item (round trips that fill per-thread caches of recycled memory on
/// every thread involved), then one operation of the timed size. `op(n)` does an operation of
/// n items.
template <class Op>
void warm_up(Op&& op, int timed_size) {
  for (int i = 0; i < 256; ++i) op(1);
  op(timed_size);
}

// ---- per-item work ----------------------------------------------------------------------------

double g_spin_ns_per_iter = 1.0;  // calibrated in main

/// Spins `iters` iterations of a dependent multiply-add chain the compiler cannot remove.
[[gnu::noinline]] void spin(std::uint64_t iters) noexcept {
  std::uint64_t x = iters;
  for (std::uint64_t i = 0; i < iters; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    benchmark::DoNotOptimize(x);
  }
}

/// Loop iterations of spin() that take about `ns` nanoseconds on this machine.
std::uint64_t spin_iters_for(std::uint64_t ns) {
  return static_cast<std::uint64_t>(static_cast<double>(ns) / g_spin_ns_per_iter + 0.5);
}

/// Measures spin()'s cost per iteration: the fastest of 9 runs of 2^20 iterations.
void calibrate_spin() {
  double best = 1e30;
  for (int i = 0; i < 9; ++i) {
    const auto t0 = clock_type::now();
    spin(1u << 20);
    const std::chrono::duration<double, std::nano> d = clock_type::now() - t0;
    best = std::min(best, d.count() / static_cast<double>(1u << 20));
  }
  g_spin_ns_per_iter = best;
}

// ---- which threads ran the items --------------------------------------------------------------

/// A thread's count of burst items, on its own cache line.
struct alignas(64) thread_slot {
  std::uint64_t items = 0;
};

/// The threads that ran burst items since the last tally_reset().
struct thread_tally {
  std::mutex mu;
  std::atomic<unsigned> gen{1};         // bumped by tally_reset(): every thread registers again
  int threads = 0;                      // guarded by mu
  std::array<thread_slot, 64> slots{};  // slot i is written only by the thread that took it
};

thread_tally g_tally;
thread_local unsigned tl_tally_gen = 0;
thread_local thread_slot* tl_tally_slot = nullptr;
thread_local thread_slot tl_overflow_slot;  // a 65th thread still counts in `threads`

/// Counts one item for the calling thread (registering it on its first item since the reset).
void tally_thread() noexcept {
  const unsigned gen = g_tally.gen.load(std::memory_order_relaxed);
  if (tl_tally_gen != gen) [[unlikely]] {
    std::lock_guard lk(g_tally.mu);
    const int i = g_tally.threads++;
    tl_tally_slot = i < static_cast<int>(g_tally.slots.size())
                        ? &g_tally.slots[static_cast<std::size_t>(i)]
                        : &tl_overflow_slot;
    tl_tally_slot->items = 0;
    tl_tally_gen = gen;
  }
  ++tl_tally_slot->items;
}

/// Forgets the threads seen so far. Call only while no item runs.
void tally_reset() {
  std::lock_guard lk(g_tally.mu);
  g_tally.threads = 0;
  for (auto& s : g_tally.slots) s.items = 0;
  g_tally.gen.fetch_add(1, std::memory_order_relaxed);
}

/// How many threads ran items since the reset, and the largest share one of them ran.
struct thread_report {
  int threads = 0;
  double busiest_share = 0;
};

/// Reads the tally. Call only once every item since the reset has run (and been waited for).
thread_report tally_read() {
  std::lock_guard lk(g_tally.mu);
  std::uint64_t total = 0;
  std::uint64_t most = 0;
  for (const auto& s : g_tally.slots) {
    total += s.items;
    most = std::max(most, s.items);
  }
  const double share = total == 0 ? 0.0 : static_cast<double>(most) / static_cast<double>(total);
  return {g_tally.threads, share};
}

// ---- burst ------------------------------------------------------------------------------------

/// Counts down from n; the thread that reaches zero wakes the waiter.
class countdown {
 public:
  void reset(int n) noexcept {
    left_.store(n, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
  }
  void hit() noexcept {
    if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      done_.store(1, std::memory_order_release);
      done_.notify_one();
    }
  }
  void wait() noexcept { done_.wait(0, std::memory_order_acquire); }

 private:
  std::atomic<int> left_{0};
  std::atomic<int> done_{0};
};

/// What every burst item does when it runs, whatever the system: its calibrated work, the tally
/// of the thread running it, and the countdown the producer waits on.
struct burst_sink {
  countdown done;
  std::uint64_t spin_iters = 0;
  void run() noexcept {
    if (spin_iters != 0) spin(spin_iters);
    tally_thread();
    done.hit();
  }
};

/// Items per burst for a work size: a million, fewer where the work alone would take seconds.
int burst_items_for(std::uint64_t work_ns) {
  return work_ns <= 100 ? 1'000'000 : work_ns <= 1'000 ? 100'000 : 20'000;
}

/// Runs a burst benchmark. `burst(n)` queues n items from this thread (the sink's countdown
/// reset to n) and returns once all have run. Every system gets this same sequence: warm-up,
/// timed loop with the thread tally, thread check, counted pass.
template <class Burst>
void run_burst(benchmark::State& state, int items, Burst&& burst) {
  warm_up(burst, items);
  tally_reset();
  for (auto _ : state) burst(items);
  const thread_report t = tally_read();
  state.SetItemsProcessed(state.iterations() * items);
  state.counters["items"] = benchmark::Counter(items);
  state.counters["worker_threads"] = benchmark::Counter(t.threads);
  state.counters["busiest_share"] = benchmark::Counter(t.busiest_share);
  report_allocs(state, items, [&] { burst(items); });
  if (t.threads != 2) {
    const std::string msg = "ran its items on " + std::to_string(t.threads) +
                            " threads, not the 2 every burst system must use";
    std::fprintf(stderr, "wq_bench: ERROR: a burst benchmark %s\n", msg.c_str());
    state.SkipWithError(msg.c_str());
  }
}

struct burst_item {
  wq::work w{wq::fn_ops<&burst_item::fn>};
  burst_sink* sink = nullptr;
  static void fn(wq::work* item) noexcept { wq::container_of<&burst_item::w>(item)->sink->run(); }
};

// Bursts of pre-allocated wq items on `q` (a queue whose workers are 2 threads).
void run_burst_wq(benchmark::State& state, wq::workqueue& q, std::uint64_t work_ns) {
  const int n = burst_items_for(work_ns);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  std::vector<burst_item> items(static_cast<std::size_t>(n));
  for (auto& it : items) it.sink = &sink;
  run_burst(state, n, [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) (void)wq::queue_work(q, items[static_cast<std::size_t>(i)].w);
    sink.done.wait();
  });
}

// A queue owning a pool of 2 threads (every burst system gets 2 workers).
void burst_wq(benchmark::State& state, std::uint64_t work_ns) {
  wq::workqueue q{"burst", {.threads = 2}};
  run_burst_wq(state, q, work_ns);
}

// A named queue on the shared normal pool, held to exactly 2 workers like the others
// (concurrency and max_threads 2: no spare worker starts if one is descheduled past the
// threshold on this 3-threads-on-2-cores run). The pool also has its manager thread, which
// looks at the pool (every 1-5 ms) while items wait for a worker; its cost is in the figure.
void burst_wq_named(benchmark::State& state) {
  const wq::pool_options old =
      wq::set_pool_options(wq::pool_kind::normal, {.concurrency = 2, .max_threads = 2});
  {
    wq::workqueue q{"burst-named"};
    run_burst_wq(state, q, 0);
  }
  (void)wq::set_pool_options(wq::pool_kind::normal, old);
}

// A lambda per item posted to asio::thread_pool(2) (Asio allocates each through its recycling
// allocator).
void burst_asio_post(benchmark::State& state, std::uint64_t work_ns) {
  asio::thread_pool pool(2);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  burst_sink* s = &sink;
  run_burst(state, burst_items_for(work_ns), [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) asio::post(pool, [s] { s->run(); });
    sink.done.wait();
  });
  pool.join();
}

// The same posts with recycled handler memory: each lambda bound to a pooling allocator (wq's
// handler pool: size classes in a per-thread cache over a process-wide free list, the
// allocator wq's own handlers use), as an Asio user who finds the allocation in a profile
// writes it (asio::bind_allocator). The producer is not a thread of the pool, so without it
// Asio's own recycling, which caches per running thread, never gives the producer a block
// back and each post allocates.
void burst_asio_post_pooled(benchmark::State& state, std::uint64_t work_ns) {
  asio::thread_pool pool(2);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  burst_sink* s = &sink;
  const wq::detail::handler_allocator<void> alloc{};
  run_burst(state, burst_items_for(work_ns), [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) asio::post(pool, asio::bind_allocator(alloc, [s] { s->run(); }));
    sink.done.wait();
  });
  pool.join();
}

// TBB's task_arena with 2 slots and none reserved for a master (the producing thread never
// joins the arena), and the process's worker limit raised so that the market has 2 workers to
// give it (by default it keeps cores - 1 = 1 on this machine, counting on the master).
void burst_tbb(benchmark::State& state, std::uint64_t work_ns) {
  oneapi::tbb::global_control workers(oneapi::tbb::global_control::max_allowed_parallelism, 3);
  oneapi::tbb::task_arena arena(2, 0);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  burst_sink* s = &sink;
  run_burst(state, burst_items_for(work_ns), [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) arena.enqueue([s] { s->run(); });
    sink.done.wait();
  });
}

// uv_queue_work with the pool size 2 (UV_THREADPOOL_SIZE, set in main before libuv starts it);
// this thread runs the loop that collects the completions, as a libuv program must.
void burst_libuv(benchmark::State& state, std::uint64_t work_ns) {
  uv_loop_t loop{};
  uv_loop_init(&loop);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  const int n = burst_items_for(work_ns);
  std::vector<uv_work_t> reqs(static_cast<std::size_t>(n));
  for (auto& r : reqs) r.data = &sink;
  run_burst(state, n, [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) {
      uv_queue_work(
          &loop, &reqs[static_cast<std::size_t>(i)],
          [](uv_work_t* w) { static_cast<burst_sink*>(w->data)->run(); }, [](uv_work_t*, int) {});
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    sink.done.wait();
  });
  uv_loop_close(&loop);
}

// A work-stealing pool of 2 threads (libthread-pool-dev's ThreadPool::Submit).
void burst_stealing_pool(benchmark::State& state, std::uint64_t work_ns) {
  thread_pool::ThreadPool pool(2);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  burst_sink* s = &sink;
  run_burst(state, burst_items_for(work_ns), [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) (void)pool.Submit([s] { s->run(); });
    sink.done.wait();
  });
}

/// The pool people write first: one mutex, one condition variable, std::function tasks.
class naive_pool {
 public:
  explicit naive_pool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~naive_pool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard lk(mu_);
      tasks_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  // A worker: takes one task at a time and runs it outside the lock.
  void loop() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        f = std::move(tasks_.front());
        tasks_.pop_front();
      }
      f();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// The naive pool of 2 threads, a std::function per item.
void burst_naive(benchmark::State& state, std::uint64_t work_ns) {
  naive_pool pool(2);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  burst_sink* s = &sink;
  run_burst(state, burst_items_for(work_ns), [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) pool.post([s] { s->run(); });
    sink.done.wait();
  });
}

/// The floor of a burst: what a competent engineer writes to hand pre-allocated items from one
/// producer to n consumer threads and nothing more. Intrusive nodes (a link and a function
/// pointer, no allocation); one mutex over a singly linked FIFO; a consumer takes a batch per
/// lock (half of what is queued, 1 to 64 items, so that 2 consumers share a burst of slow items
/// evenly) and runs it outside the lock; the producer signals the condition variable only when
/// a consumer is idle and none is already being woken.
class floor_pool {
 public:
  struct node {
    node* next = nullptr;
    void (*fn)(node*) = nullptr;
  };

  explicit floor_pool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~floor_pool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  floor_pool(const floor_pool&) = delete;
  floor_pool& operator=(const floor_pool&) = delete;

  /// Queues `n` (not queued already); a consumer will call n->fn(n).
  void push(node* n) noexcept {
    n->next = nullptr;
    bool wake = false;
    {
      std::lock_guard lk(mu_);
      if (tail_ != nullptr)
        tail_->next = n;
      else
        head_ = n;
      tail_ = n;
      ++size_;
      if (idle_ > waking_) {
        ++waking_;
        wake = true;
      }
    }
    if (wake) cv_.notify_one();
  }

 private:
  // A consumer: takes a batch under the lock, runs it outside.
  void loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      while (head_ == nullptr) {
        if (stop_) return;
        ++idle_;
        cv_.wait(lk);
        --idle_;
        if (waking_ > 0) --waking_;
      }
      const std::size_t take = std::clamp<std::size_t>(size_ / 2, 1, 64);
      node* first = head_;
      node* last = first;
      for (std::size_t i = 1; i < take; ++i) last = last->next;
      head_ = last->next;
      if (head_ == nullptr) tail_ = nullptr;
      size_ -= take;
      lk.unlock();
      // Each link is read before its node runs: once run, a node may be queued again.
      for (node* n = first;;) {
        node* next = n->next;
        const bool end = n == last;
        n->fn(n);
        if (end) break;
        n = next;
      }
      lk.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  node* head_ = nullptr;  // guarded by mu_
  node* tail_ = nullptr;  // guarded by mu_
  std::size_t size_ = 0;  // guarded by mu_
  int idle_ = 0;          // consumers waiting on cv_; guarded by mu_
  int waking_ = 0;        // of those, signalled and not yet awake; guarded by mu_
  bool stop_ = false;     // guarded by mu_
  std::vector<std::thread> threads_;
};

struct floor_item {
  floor_pool::node node{nullptr, &floor_item::fn};
  burst_sink* sink = nullptr;
  static void fn(floor_pool::node* n) noexcept {
    // Safety: `node` is the first member of a standard-layout floor_item.
    reinterpret_cast<floor_item*>(n)->sink->run();
  }
};
static_assert(std::is_standard_layout_v<floor_item>);

// The floor of a burst: pre-allocated intrusive items through floor_pool(2).
void burst_floor(benchmark::State& state, std::uint64_t work_ns) {
  floor_pool pool(2);
  const int n = burst_items_for(work_ns);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  std::vector<floor_item> items(static_cast<std::size_t>(n));
  for (auto& it : items) it.sink = &sink;
  run_burst(state, n, [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) pool.push(&items[static_cast<std::size_t>(i)].node);
    sink.done.wait();
  });
}

// The lock-free floor: the same pre-allocated items through a lock-free MPMC queue
// (moodycamel::BlockingConcurrentQueue, Debian's libconcurrentqueue-dev) to 2 consumer
// threads: the producer enqueues with a producer token, each consumer takes up to 16 items per
// dequeue and runs them, and sleeps on the queue's semaphore when it is empty. No claim, no
// order between the consumers, no flush: less than wq must do, as floor_pool. The report's
// floor is the faster of the two.
void burst_floor_lockfree(benchmark::State& state, std::uint64_t work_ns) {
  moodycamel::BlockingConcurrentQueue<floor_item*> q;
  std::atomic<bool> stop{false};
  std::vector<std::thread> consumers;
  for (int t = 0; t < 2; ++t)
    consumers.emplace_back([&] {
      moodycamel::ConsumerToken token(q);
      std::array<floor_item*, 16> batch{};
      while (!stop.load(std::memory_order_relaxed)) {
        // A timed wait (100 us), so that the stop flag is seen once the benchmark ends.
        const std::size_t n =
            q.wait_dequeue_bulk_timed(token, batch.data(), batch.size(), std::int64_t{100});
        for (std::size_t i = 0; i < n; ++i) batch[i]->node.fn(&batch[i]->node);
      }
    });
  moodycamel::ProducerToken producer(q);
  const int n = burst_items_for(work_ns);
  burst_sink sink;
  sink.spin_iters = spin_iters_for(work_ns);
  std::vector<floor_item> items(static_cast<std::size_t>(n));
  for (auto& it : items) it.sink = &sink;
  run_burst(state, n, [&](int k) {
    sink.done.reset(k);
    for (int i = 0; i < k; ++i) (void)q.enqueue(producer, &items[static_cast<std::size_t>(i)]);
    sink.done.wait();
  });
  stop.store(true, std::memory_order_relaxed);
  for (auto& t : consumers) t.join();
}

// ---- create: a queue per session costs what a strand costs -----------------------------------

// Creates and destroys a named queue (what a per-session queue costs): no thread starts.
void create_wq_named(benchmark::State& state) {
  auto op = [](int n) {
    for (int i = 0; i < n; ++i) {
      wq::workqueue q{"session"};
      benchmark::DoNotOptimize(&q);
    }
  };
  warm_up(op, 1000);  // the registry's free list
  for (auto _ : state) op(1);
  report_allocs(state, 1000, [&] { op(1000); });
}

// Creates and destroys a strand over an io_context: Asio's per-session serialiser.
void create_strand(benchmark::State& state) {
  asio::io_context io;
  auto op = [&io](int n) {
    for (int i = 0; i < n; ++i) {
      auto s = asio::make_strand(io);
      benchmark::DoNotOptimize(&s);
    }
  };
  warm_up(op, 1000);
  for (auto _ : state) op(1);
  report_allocs(state, 1000, [&] { op(1000); });
}

// ---- pingpong ---------------------------------------------------------------------------------

struct ping_item {
  wq::work w{wq::fn_ops<&ping_item::fn>};
  std::atomic<int> pong{0};
  static void fn(wq::work* item) noexcept {
    auto* self = wq::container_of<&ping_item::w>(item);
    self->pong.store(1, std::memory_order_release);
    self->pong.notify_one();
  }
};

// Context switches of the whole process (every thread), voluntary and not.
long context_switches() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_nvcsw + u.ru_nivcsw;
}

// Runs the timed loop of a ping-pong, one round trip per iteration, and reports the context
// switches per round trip (issue 17's target: 2.0, asio::post's count: the item's thread wakes,
// then the waiting thread).
template <class Op>
void time_round_trips(benchmark::State& state, Op& op) {
  const long before = context_switches();
  for (auto _ : state) op(1);
  const long after = context_switches();
  state.counters["switches_per_round_trip"] = benchmark::Counter(
      static_cast<double>(after - before) / static_cast<double>(state.iterations()));
}

// Round trips through a queue owning 2 threads.
void pingpong_wq(benchmark::State& state) {
  wq::workqueue q{"ping", {.threads = 2}};
  ping_item item;
  auto op = [&](int n) {
    for (int i = 0; i < n; ++i) {
      item.pong.store(0, std::memory_order_relaxed);
      (void)wq::queue_work(q, item.w);
      item.pong.wait(0, std::memory_order_acquire);
    }
  };
  warm_up(op, 1);
  time_round_trips(state, op);
  report_allocs(state, 1000, [&] { op(1000); });
}

// Round trips through asio::thread_pool(2).
void pingpong_asio_post(benchmark::State& state) {
  asio::thread_pool pool(2);
  std::atomic<int> pong{0};
  auto op = [&](int n) {
    for (int i = 0; i < n; ++i) {
      pong.store(0, std::memory_order_relaxed);
      asio::post(pool, [&pong] {
        pong.store(1, std::memory_order_release);
        pong.notify_one();
      });
      pong.wait(0, std::memory_order_acquire);
    }
  };
  warm_up(op, 1);
  time_round_trips(state, op);
  report_allocs(state, 1000, [&] { op(1000); });
  pool.join();
}

// ---- on the application's io_context -------------------------------------------------------
// A queue built on a user's io_context holds outstanding work on it while it has work (Asio's
// convention): one tracked executor copy taken on the idle-to-busy edge and released on the
// busy-to-idle edge. A ping-pong crosses both edges on every round trip, the worst case; the
// baseline is asio::post to the same io_context, run the same way (one thread, a work guard
// keeping run() alive between round trips, as an application's would be).

struct io_runner {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~io_runner() {
    guard.reset();
    thread.join();
  }
};

// Round trips through a queue on the application's io_context.
void pingpong_io_wq(benchmark::State& state) {
  io_runner r;
  wq::workqueue q{r.io, "ping-io"};
  ping_item item;
  auto op = [&](int n) {
    for (int i = 0; i < n; ++i) {
      item.pong.store(0, std::memory_order_relaxed);
      (void)wq::queue_work(q, item.w);
      item.pong.wait(0, std::memory_order_acquire);
    }
  };
  warm_up(op, 1);
  for (auto _ : state) op(1);
  report_allocs(state, 1000, [&] { op(1000); });
}

// Round trips through asio::post to the same kind of io_context.
void pingpong_io_asio_post(benchmark::State& state) {
  io_runner r;
  std::atomic<int> pong{0};
  auto op = [&](int n) {
    for (int i = 0; i < n; ++i) {
      pong.store(0, std::memory_order_relaxed);
      asio::post(r.io, [&pong] {
        pong.store(1, std::memory_order_release);
        pong.notify_one();
      });
      pong.wait(0, std::memory_order_acquire);
    }
  };
  warm_up(op, 1);
  for (auto _ : state) op(1);
  report_allocs(state, 1000, [&] { op(1000); });
}

// What one edge pair costs by itself: taking and releasing outstanding work on an io_context.
void io_work_edge(benchmark::State& state) {
  asio::io_context io{1};
  for (auto _ : state) {
    auto tracked = asio::prefer(io.get_executor(), asio::execution::outstanding_work.tracked);
    benchmark::DoNotOptimize(tracked);
  }
}

// ---- dedup ------------------------------------------------------------------------------------

// queue_work on an item that stays pending (its queue is paused).
void dedup_wq(benchmark::State& state) {
  wq::workqueue q{"dedup", {.threads = 1}};
  q.pause();  // the item stays pending for the whole run
  burst_item item;
  burst_sink sink;
  item.sink = &sink;
  sink.done.reset(1);
  (void)wq::queue_work(q, item.w);
  auto op = [&](int n) {
    for (int i = 0; i < n; ++i) benchmark::DoNotOptimize(wq::queue_work(q, item.w));
  };
  warm_up(op, 1000);
  for (auto _ : state) op(1);
  report_allocs(state, 1000, [&] { op(1000); });
  q.resume();
  sink.done.wait();
}

// ---- debounce ---------------------------------------------------------------------------------

constexpr int debounce_moves = 1'000'000;
constexpr auto debounce_delay = std::chrono::seconds(10);

struct timed_item {
  wq::delayed_work d{wq::fn_ops<&timed_item::fn>};
  countdown* done = nullptr;
  clock_type::time_point due{};
  std::int64_t late_ns = 0;
  static void fn(wq::work* item) noexcept {
    auto* self = wq::container_of<&timed_item::d>(wq::to_delayed_work(item));
    self->late_ns = (clock_type::now() - self->due).count();
    if (self->done != nullptr) self->done->hit();
  }
};

// Arms an item, then moves its deadline later with mod_delayed_work (a relative delay, as
// every system takes); the final cancel_delayed_work_sync is untimed.
void debounce_wq(benchmark::State& state) {
  wq::workqueue q{"debounce", {.threads = 1}};
  timed_item item;
  auto moves = [&](int n) {
    (void)wq::queue_delayed_work(q, item.d, debounce_delay);
    for (int i = 0; i < n; ++i)
      (void)wq::mod_delayed_work(q, item.d, debounce_delay + std::chrono::microseconds(i));
  };
  auto op = [&](int n) {
    moves(n);
    (void)wq::cancel_delayed_work_sync(item.d);
  };
  warm_up(op, debounce_moves);
  for (auto _ : state) {
    moves(debounce_moves);
    state.PauseTiming();
    (void)wq::cancel_delayed_work_sync(item.d);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * debounce_moves);
  report_allocs(state, debounce_moves, [&] { moves(debounce_moves); });
  (void)wq::cancel_delayed_work_sync(item.d);
}

/// The best raw-Asio debounce: the deadline lives in an atomic, and moving it later is a store.
/// The timer is touched only on the io thread once armed: its completion handler re-waits until
/// the stored deadline when it came early, and otherwise fires. (A move racing the expiry is
/// won by either side, as with mod_delayed_work.)
class lazy_timer {
 public:
  explicit lazy_timer(asio::io_context& io) : timer_(io) {}
  /// Stores the deadline and starts the wait on the io thread.
  void arm(clock_type::time_point due) {
    due_.store(due, std::memory_order_relaxed);
    asio::post(timer_.get_executor(), [this] { wait(); });
  }
  /// Moves the deadline later: a store.
  void move_later(clock_type::time_point due) noexcept {
    due_.store(due, std::memory_order_relaxed);
  }
  /// Cancels the wait (on the io thread) and returns once its completion has run.
  void cancel_sync() {
    stopped_.reset(1);
    asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
    stopped_.wait();
  }
  /// Fired (deadline reached) completions so far.
  int fired() const noexcept { return fired_.load(std::memory_order_relaxed); }

 private:
  // Waits until the stored deadline (on the io thread).
  void wait() {
    timer_.expires_at(due_.load(std::memory_order_relaxed));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        stopped_.hit();
      } else if (clock_type::now() < due_.load(std::memory_order_relaxed)) {
        wait();  // came early: the deadline moved later meanwhile
      } else {
        fired_.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  raw_timer timer_;
  std::atomic<clock_type::time_point> due_{};
  countdown stopped_;
  std::atomic<int> fired_{0};
};

// Arms a lazy_timer, then moves its deadline later by storing now + delay (the same relative
// delay wq is given); the final cancel is untimed.
void debounce_asio_lazy(benchmark::State& state) {
  io_runner r;
  lazy_timer timer(r.io);
  auto moves = [&](int n) {
    timer.arm(clock_type::now() + debounce_delay);
    for (int i = 0; i < n; ++i)
      timer.move_later(clock_type::now() + debounce_delay + std::chrono::microseconds(i));
  };
  auto op = [&](int n) {
    moves(n);
    timer.cancel_sync();
  };
  warm_up(op, debounce_moves);
  for (auto _ : state) {
    moves(debounce_moves);
    state.PauseTiming();
    timer.cancel_sync();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * debounce_moves);
  report_allocs(state, debounce_moves, [&] { moves(debounce_moves); });
  timer.cancel_sync();
  if (timer.fired() != 0) state.SkipWithError("a 10 s deadline fired");
}

// What a raw Asio user writes first to push a deadline later: each expires_after cancels the
// pending wait (its handler then runs with operation_aborted) and async_wait starts a new one.
// The aborted completions are this approach's cost of a move, so they are timed.
void debounce_asio_timer(benchmark::State& state) {
  io_runner r;
  raw_timer timer(r.io);
  countdown completions;
  auto op = [&](int n) {
    completions.reset(n);
    for (int i = 0; i < n; ++i) {
      timer.expires_after(debounce_delay + std::chrono::microseconds(i));
      timer.async_wait([&completions](const boost::system::error_code&) { completions.hit(); });
    }
    timer.cancel();  // the last wait
    completions.wait();
  };
  warm_up(op, debounce_moves);
  for (auto _ : state) op(debounce_moves);
  state.SetItemsProcessed(state.iterations() * debounce_moves);
  report_allocs(state, debounce_moves, [&] { op(debounce_moves); });
}

// ---- armcancel --------------------------------------------------------------------------------
// Timed: the arm calls and the cancel calls, until they return. Untimed: constructing fresh
// items or timers, Asio running the handlers of the cancelled waits (operation_aborted) and
// being waited for, and wq retiring the waits it left outstanding (each item is re-armed for
// 1 us, which cuts its wait short, runs, and is flushed) before the items are destroyed.

constexpr auto armcancel_delay = std::chrono::seconds(10);

/// Arms then cancels the first n of `items` on `q`.
void arm_cancel_wq(wq::workqueue& q, timed_item* items, int n) {
  for (int i = 0; i < n; ++i) (void)wq::queue_delayed_work(q, items[i].d, armcancel_delay);
  for (int i = 0; i < n; ++i) (void)wq::cancel_delayed_work(items[i].d);
}

/// Ends the Asio waits that arm_cancel_wq left outstanding on the first n of `items`.
void retire_waits_wq(wq::workqueue& q, timed_item* items, int n, countdown& ran) {
  ran.reset(n);
  for (int i = 0; i < n; ++i)
    (void)wq::queue_delayed_work(q, items[i].d, std::chrono::microseconds(1));
  ran.wait();
  (void)q.flush();
}

// First arm: fresh wq items every iteration.
void armcancel_wq(benchmark::State& state) {
  wq::workqueue q{"armcancel", {.threads = 2}};
  countdown ran;
  auto fresh = [&](int n) {
    auto items = std::make_unique<timed_item[]>(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) items[static_cast<std::size_t>(i)].done = &ran;
    return items;
  };
  warm_up(
      [&](int n) {
        auto items = fresh(n);
        arm_cancel_wq(q, items.get(), n);
        retire_waits_wq(q, items.get(), n, ran);
      },
      timer_items);
  for (auto _ : state) {
    state.PauseTiming();
    auto items = fresh(timer_items);
    state.ResumeTiming();
    arm_cancel_wq(q, items.get(), timer_items);
    state.PauseTiming();
    retire_waits_wq(q, items.get(), timer_items, ran);
    items.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * timer_items);
  auto items = fresh(timer_items);
  report_allocs(state, timer_items, [&] { arm_cancel_wq(q, items.get(), timer_items); });
  retire_waits_wq(q, items.get(), timer_items, ran);
}

/// Arms then cancels the first n of `timers` (their handlers count down `completions`).
void arm_cancel_asio(std::vector<raw_timer>& timers, int n, countdown& completions) {
  for (int i = 0; i < n; ++i) {
    auto& t = timers[static_cast<std::size_t>(i)];
    t.expires_after(armcancel_delay);
    t.async_wait([&completions](const boost::system::error_code&) { completions.hit(); });
  }
  for (int i = 0; i < n; ++i) timers[static_cast<std::size_t>(i)].cancel();
}

// First arm: fresh Asio timers every iteration, on an io_context run by one thread.
void armcancel_asio_timer(benchmark::State& state) {
  io_runner r;
  countdown completions;
  auto fresh = [&](int n) {
    std::vector<raw_timer> timers;
    timers.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) timers.emplace_back(r.io);
    completions.reset(n);
    return timers;
  };
  warm_up(
      [&](int n) {
        auto timers = fresh(n);
        arm_cancel_asio(timers, n, completions);
        completions.wait();
      },
      timer_items);
  for (auto _ : state) {
    state.PauseTiming();
    auto timers = fresh(timer_items);
    state.ResumeTiming();
    arm_cancel_asio(timers, timer_items, completions);
    state.PauseTiming();
    completions.wait();
    timers.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * timer_items);
  auto timers = fresh(timer_items);
  report_allocs(state, timer_items, [&] { arm_cancel_asio(timers, timer_items, completions); });
  completions.wait();
}

/// A raw Asio timer cancelled lazily, as wq cancels: a flag its handler reads when the wait
/// completes, the wait left outstanding (the best raw Asio for an arm that is usually
/// cancelled, as asio_lazy is for debounce; its cost moves to whoever ends the wait).
struct flagged_timer {
  explicit flagged_timer(asio::io_context& io) : timer(io) {}
  raw_timer timer;
  std::atomic<bool> cancelled{false};
};

/// Arms then cancels (sets the flag of) the first n of `timers`; each handler counts down
/// `completions`, and would run the callback on a deadline reached with the flag clear.
void arm_cancel_asio_lazy(std::deque<flagged_timer>& timers, int n, countdown& completions) {
  for (int i = 0; i < n; ++i) {
    flagged_timer& t = timers[static_cast<std::size_t>(i)];
    t.cancelled.store(false, std::memory_order_relaxed);
    t.timer.expires_after(armcancel_delay);
    t.timer.async_wait([&t, &completions](const boost::system::error_code& ec) {
      if (!ec && !t.cancelled.load(std::memory_order_relaxed)) benchmark::DoNotOptimize(&t);
      completions.hit();
    });
  }
  for (int i = 0; i < n; ++i)
    timers[static_cast<std::size_t>(i)].cancelled.store(true, std::memory_order_relaxed);
}

/// Ends the waits arm_cancel_asio_lazy left outstanding (untimed, as wq's retire_waits_wq).
void retire_waits_asio_lazy(std::deque<flagged_timer>& timers, countdown& completions) {
  for (auto& t : timers) t.timer.cancel();
  completions.wait();
}

// First arm, lazily cancelled: fresh flagged timers every iteration, on an io_context run by
// one thread.
void armcancel_asio_lazy(benchmark::State& state) {
  io_runner r;
  countdown completions;
  auto fresh = [&](int n) {
    std::deque<flagged_timer> timers;
    for (int i = 0; i < n; ++i) timers.emplace_back(r.io);
    completions.reset(n);
    return timers;
  };
  warm_up(
      [&](int n) {
        auto timers = fresh(n);
        arm_cancel_asio_lazy(timers, n, completions);
        retire_waits_asio_lazy(timers, completions);
      },
      timer_items);
  for (auto _ : state) {
    state.PauseTiming();
    auto timers = fresh(timer_items);
    state.ResumeTiming();
    arm_cancel_asio_lazy(timers, timer_items, completions);
    state.PauseTiming();
    retire_waits_asio_lazy(timers, completions);
    timers.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * timer_items);
  auto timers = fresh(timer_items);
  report_allocs(state, timer_items,
                [&] { arm_cancel_asio_lazy(timers, timer_items, completions); });
  retire_waits_asio_lazy(timers, completions);
}

// Re-arm: the same wq items every iteration (their Asio waits stay outstanding).
void armcancel_reuse_wq(benchmark::State& state) {
  wq::workqueue q{"armcancel", {.threads = 2}};
  auto items = std::make_unique<timed_item[]>(timer_items);
  warm_up([&](int n) { arm_cancel_wq(q, items.get(), n); }, timer_items);
  for (auto _ : state) arm_cancel_wq(q, items.get(), timer_items);
  state.SetItemsProcessed(state.iterations() * timer_items);
  report_allocs(state, timer_items, [&] { arm_cancel_wq(q, items.get(), timer_items); });
  countdown ran;
  for (int i = 0; i < timer_items; ++i) items[static_cast<std::size_t>(i)].done = &ran;
  retire_waits_wq(q, items.get(), timer_items, ran);
}

// Re-arm: the same Asio timers every iteration (each last wait cancelled and completed).
void armcancel_reuse_asio_timer(benchmark::State& state) {
  io_runner r;
  std::vector<raw_timer> timers;
  timers.reserve(timer_items);
  for (int i = 0; i < timer_items; ++i) timers.emplace_back(r.io);
  countdown completions;
  warm_up(
      [&](int n) {
        completions.reset(n);
        arm_cancel_asio(timers, n, completions);
        completions.wait();
      },
      timer_items);
  for (auto _ : state) {
    completions.reset(timer_items);
    arm_cancel_asio(timers, timer_items, completions);
    state.PauseTiming();
    completions.wait();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * timer_items);
  completions.reset(timer_items);
  report_allocs(state, timer_items, [&] { arm_cancel_asio(timers, timer_items, completions); });
  completions.wait();
}

// ---- lateness ---------------------------------------------------------------------------------

using wq_bench_support::report_lateness;

constexpr auto lateness_spread = std::chrono::milliseconds(200);

// 100 000 wq items due over 200 ms; lateness measured when each work function runs.
void lateness_wq(benchmark::State& state) {
  wq::workqueue q{"lateness", {.threads = 2}};
  std::vector<timed_item> items(timer_items);
  countdown done;
  for (auto& it : items) it.done = &done;
  std::vector<std::int64_t> late;
  for (auto _ : state) {
    done.reset(timer_items);
    for (int i = 0; i < timer_items; ++i) {
      // Due `delay` after the call (the kernel's and Asio's expires_after meaning); arming
      // 100 000 items takes milliseconds, so a common start time would count that as lateness.
      const auto delay = lateness_spread * i / timer_items + std::chrono::milliseconds(10);
      items[static_cast<std::size_t>(i)].due = clock_type::now() + delay;
      (void)wq::queue_delayed_work(q, items[static_cast<std::size_t>(i)].d, delay);
    }
    done.wait();
    for (const auto& it : items) late.push_back(it.late_ns);
  }
  report_lateness(state, late);
}

// 100 000 steady_timers due over 200 ms; lateness measured in each wait handler.
void lateness_asio_timer(benchmark::State& state) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  for (int i = 0; i < timer_items; ++i) timers.push_back(std::make_unique<asio::steady_timer>(io));
  std::vector<std::int64_t> late_now(timer_items);
  countdown done;
  std::vector<std::int64_t> late;
  for (auto _ : state) {
    done.reset(timer_items);
    for (int i = 0; i < timer_items; ++i) {
      const auto due =
          clock_type::now() + lateness_spread * i / timer_items + std::chrono::milliseconds(10);
      timers[static_cast<std::size_t>(i)]->expires_at(due);
      timers[static_cast<std::size_t>(i)]->async_wait(
          [&late_now, &done, i, due](const boost::system::error_code&) {
            late_now[static_cast<std::size_t>(i)] = (clock_type::now() - due).count();
            done.hit();
          });
    }
    done.wait();
    late.insert(late.end(), late_now.begin(), late_now.end());
  }
  report_lateness(state, late);
  guard.reset();
  runner.join();
}

// ---- rss --------------------------------------------------------------------------------------

// The work function of the rss items (never run).
void rss_noop(wq::work*) noexcept {}

/// Arms timer_items items of `system` in this (fresh) process and prints the heap bytes, blocks
/// and allocation calls held per armed item, counted from before the items exist to after the
/// last is armed; then exits without cleaning up. Returns 2 for an unknown system.
[[noreturn]] void rss_child(const std::string& system) {
  alloc_totals before;
  alloc_totals after;
  // Everything made before the window is per process or per queue, not per item: the queue or
  // io_context, wq's timer thread, and one item armed and cancelled first in both systems.
  if (system == "wq") {
    auto& q = *new wq::workqueue{"rss", {.threads = 1}};  // never destroyed: the process exits
    {
      wq::delayed_work warm{wq::fn_ops<&rss_noop>};
      (void)wq::queue_delayed_work(q, warm, std::chrono::hours(1));
      (void)wq::cancel_delayed_work_sync(warm);
    }
    auto& items = *new std::vector<std::unique_ptr<wq::delayed_work>>;  // never destroyed
    items.reserve(timer_items);
    g_counting.store(true, std::memory_order_relaxed);
    before = alloc_snapshot();
    for (int i = 0; i < timer_items; ++i) {
      items.push_back(std::make_unique<wq::delayed_work>(wq::fn_ops<&rss_noop>));
      (void)wq::queue_delayed_work(q, *items.back(), std::chrono::hours(1));
    }
    after = alloc_snapshot();
  } else if (system == "asio_timer" || system == "steady_timer") {
    auto& io = *new asio::io_context;  // never destroyed
    auto arm_all = [&](auto tag) {
      using timer = typename decltype(tag)::type;
      {
        timer warm(io, std::chrono::hours(1));
        warm.async_wait([](const boost::system::error_code&) {});
        warm.cancel();
        io.poll();
        io.restart();
      }
      auto& timers = *new std::vector<std::unique_ptr<timer>>;  // never destroyed
      timers.reserve(timer_items);
      g_counting.store(true, std::memory_order_relaxed);
      before = alloc_snapshot();
      for (int i = 0; i < timer_items; ++i) {
        timers.push_back(std::make_unique<timer>(io, std::chrono::hours(1)));
        timers.back()->async_wait([](const boost::system::error_code&) {});
      }
      after = alloc_snapshot();
    };
    if (system == "asio_timer")
      arm_all(std::type_identity<raw_timer>{});
    else
      arm_all(std::type_identity<asio::steady_timer>{});
  } else {
    std::_Exit(2);
  }
  g_counting.store(false, std::memory_order_relaxed);
  const double n = timer_items;
  std::printf("%.3f %.3f %.3f %.3f\n",
              (static_cast<double>(after.bytes - before.bytes) -
               static_cast<double>(after.freed_bytes - before.freed_bytes)) /
                  n,
              (static_cast<double>(after.calls - before.calls) -
               static_cast<double>(after.frees - before.frees)) /
                  n,
              static_cast<double>(after.calls - before.calls) / n,
              static_cast<double>(after.frees - before.frees) / n);
  std::fflush(stdout);
  std::_Exit(0);
}

/// Runs this program again as `--wq_rss_child=<system>`; returns what it printed, or "" if it
/// failed.
std::string run_rss_child(const std::string& system) {
  std::array<char, 4096> exe{};
  const ssize_t len = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  if (len <= 0) return {};
  int fds[2];
  if (pipe(fds) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::string arg = "--wq_rss_child=" + system;
  char* argv[] = {exe.data(), arg.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe.data(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  std::string out;
  if (rc == 0) {
    std::array<char, 256> buf{};
    for (ssize_t r; (r = read(fds[0], buf.data(), buf.size())) > 0;)
      out.append(buf.data(), static_cast<std::size_t>(r));
  }
  close(fds[0]);
  int status = 0;
  if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return {};
  return out;
}

// Heap bytes per armed item of `system`, counted in a fresh process (see the file comment).
void rss(benchmark::State& state, const std::string& system) {
  for (auto _ : state) {
    const std::string out = run_rss_child(system);
    double bytes = 0, blocks = 0, allocs = 0, frees = 0;
    if (std::sscanf(out.c_str(), "%lf %lf %lf %lf", &bytes, &blocks, &allocs, &frees) != 4) {
      state.SkipWithError("the rss child process failed");
      break;
    }
    state.counters["bytes_per_item"] = benchmark::Counter(bytes);
    state.counters["blocks_per_item"] = benchmark::Counter(blocks);
    state.counters["allocs_per_item"] = benchmark::Counter(allocs);
    state.counters["frees_per_item"] = benchmark::Counter(frees);
  }
}

// ---- allocations per wq call --------------------------------------------------------------------

// Counts the allocations of wq's steady-state calls, each warmed up and then counted over many
// calls: queue_work + run, mod_delayed_work, queue_delayed_work + cancel_delayed_work,
// queue_delayed_work + cancel_delayed_work_sync, queue_work + flush_work, queue_work + flush.
void allocs_wq(benchmark::State& state) {
  wq::workqueue q{"allocs", {.threads = 2}};
  ping_item ping;
  timed_item timed;
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ping.pong.store(0, std::memory_order_relaxed);
      (void)wq::queue_work(q, ping.w);
      ping.pong.wait(0, std::memory_order_acquire);
    }
  };
  auto mod = [&](int n) {  // one arm and one cancel_sync (counted too) per n moves
    (void)wq::queue_delayed_work(q, timed.d, debounce_delay);
    for (int i = 0; i < n; ++i)
      (void)wq::mod_delayed_work(q, timed.d, debounce_delay + std::chrono::microseconds(i));
    (void)wq::cancel_delayed_work_sync(timed.d);
  };
  auto cancel = [&](int n) {
    for (int i = 0; i < n; ++i) {
      (void)wq::queue_delayed_work(q, timed.d, debounce_delay);
      (void)wq::cancel_delayed_work(timed.d);
    }
  };
  auto cancel_sync = [&](int n) {
    for (int i = 0; i < n; ++i) {
      (void)wq::queue_delayed_work(q, timed.d, debounce_delay);
      (void)wq::cancel_delayed_work_sync(timed.d);
    }
  };
  auto flush_work = [&](int n) {
    for (int i = 0; i < n; ++i) {
      (void)wq::queue_work(q, ping.w);
      (void)wq::flush_work(ping.w);
    }
  };
  auto flush = [&](int n) {
    for (int i = 0; i < n; ++i) {
      (void)wq::queue_work(q, ping.w);
      (void)q.flush();
    }
  };
  auto measure = [&](const char* name, auto&& op, int n) {
    warm_up(op, n);
    const auto calls = count_allocs([&] { op(n); });
    state.counters[name] = benchmark::Counter(static_cast<double>(calls) / n);
  };
  // A queue's latency histograms start with 4-bit counts and are made again, wider, when a
  // bucket passes 15 and 255 (and 65 535): a few allocations in a queue's life, not per
  // operation. Run until the first two widenings are behind (a bucket holds 256 samples, 4096
  // queueings at least), so that no counted pass meets one: the next needs 65 535 samples in
  // a bucket, 10^6 queueings, and this benchmark makes about 10^4.
  auto widest = [&] {
    const wq::queue_stats st = q.stats();
    std::uint64_t m = 0;
    for (auto c : st.queue_latency.counts) m = std::max(m, c);
    for (auto c : st.run_time.counts) m = std::max(m, c);
    return m;
  };
  for (int i = 0; i < 4000 && widest() < 256; ++i) run(16);
  if (widest() < 256) state.SkipWithError("the queue's histograms did not reach 16-bit counts");
  for (auto _ : state) {
    measure("allocs_queue_run", run, 1000);
    measure("allocs_mod", mod, 100'000);
    measure("allocs_cancel", cancel, 100'000);
    measure("allocs_cancel_sync", cancel_sync, 100'000);
    measure("allocs_flush_work", flush_work, 1000);
    measure("allocs_flush", flush, 1000);
  }
}

}  // namespace

BENCHMARK(burst_wq_named)->Name("burst_named/wq")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(create_wq_named)->Name("create/wq_named")->UseRealTime();
BENCHMARK(create_strand)->Name("create/strand")->UseRealTime();
BENCHMARK(pingpong_wq)->Name("pingpong/wq")->UseRealTime();
BENCHMARK(pingpong_asio_post)->Name("pingpong/asio_post")->UseRealTime();
BENCHMARK(pingpong_io_wq)->Name("pingpong_io/wq")->UseRealTime();
BENCHMARK(pingpong_io_asio_post)->Name("pingpong_io/asio_post")->UseRealTime();
BENCHMARK(io_work_edge)->Name("io_work_edge/asio")->UseRealTime();
BENCHMARK(dedup_wq)->Name("dedup/wq")->UseRealTime();
BENCHMARK(debounce_wq)->Name("debounce/wq")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(debounce_asio_lazy)
    ->Name("debounce/asio_lazy")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(debounce_asio_timer)
    ->Name("debounce/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(armcancel_wq)
    ->Name("armcancel/wq")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(10);
BENCHMARK(armcancel_asio_timer)
    ->Name("armcancel/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(10);
BENCHMARK(armcancel_asio_lazy)
    ->Name("armcancel/asio_lazy")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(10);
BENCHMARK(armcancel_reuse_wq)
    ->Name("armcancel_reuse/wq")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(armcancel_reuse_asio_timer)
    ->Name("armcancel_reuse/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(lateness_wq)
    ->Name("lateness/wq")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(lateness_asio_timer)
    ->Name("lateness/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_CAPTURE(rss, wq, std::string("wq"))
    ->Name("rss/wq")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_CAPTURE(rss, asio_timer, std::string("asio_timer"))
    ->Name("rss/asio_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_CAPTURE(rss, steady_timer, std::string("steady_timer"))
    ->Name("rss/steady_timer")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(allocs_wq)->Name("allocs/wq")->UseRealTime()->Iterations(1);
BENCHMARK_CAPTURE(alloc_hooks, libc, 0)->Name("alloc_hooks/libc")->UseRealTime();
BENCHMARK_CAPTURE(alloc_hooks, hooked, 1)->Name("alloc_hooks/hooked")->UseRealTime();
BENCHMARK_CAPTURE(alloc_hooks, counting, 2)->Name("alloc_hooks/counting")->UseRealTime();

namespace {

/// Registers the burst workloads of every work size: burst/<system> (no work) and
/// burst_<size>/<system> for wq, every baseline and both floors.
void register_bursts() {
  struct work_size {
    const char* prefix;
    std::uint64_t ns;
  };
  for (const work_size s : {work_size{"burst", 0}, work_size{"burst_100ns", 100},
                            work_size{"burst_1us", 1'000}, work_size{"burst_10us", 10'000}}) {
    const std::string p = s.prefix;
    const std::uint64_t ns = s.ns;
    benchmark::RegisterBenchmark((p + "/wq").c_str(), burst_wq, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/asio_post").c_str(), burst_asio_post, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/naive").c_str(), burst_naive, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/asio_post_pooled").c_str(), burst_asio_post_pooled, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/tbb").c_str(), burst_tbb, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/libuv").c_str(), burst_libuv, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/stealing_pool").c_str(), burst_stealing_pool, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/floor").c_str(), burst_floor, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((p + "/floor_lockfree").c_str(), burst_floor_lockfree, ns)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

}  // namespace

// Runs an rss child if asked to; otherwise checks the hooks, calibrates the spin, and runs the
// benchmarks.
int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]).starts_with("--wq_rss_child="))
    rss_child(std::string(argv[1]).substr(std::string("--wq_rss_child=").size()));
  setenv("UV_THREADPOOL_SIZE", "2", 1);  // before libuv's pool starts
  if (const char* e = std::getenv("WQ_BENCH_COUNT_TIMED"); e != nullptr && *e == '1') {
    g_count_timed = true;
    g_counting.store(true, std::memory_order_relaxed);
  }
#ifndef WQ_BENCH_NO_ALLOC_HOOKS
  if (!alloc_counting_works()) {
    std::fprintf(stderr, "wq_bench: the allocation hooks miss some allocations\n");
    return 1;
  }
#else
  (void)&alloc_counting_works;
#endif
  calibrate_spin();
  benchmark::AddCustomContext("spin_ns_per_iter", std::to_string(g_spin_ns_per_iter));
#ifdef WQ_BENCH_NO_ALLOC_HOOKS
  benchmark::AddCustomContext("alloc_counting", "none (built without the hooks)");
#else
  benchmark::AddCustomContext("alloc_counting",
                              g_count_timed ? "timed loops too" : "untimed passes only");
#endif
  register_bursts();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
