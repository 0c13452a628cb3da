// SPDX-License-Identifier: BSL-1.0
// src/worker_pool.hpp: the process-wide worker pools (cmwq) behind wq/pool.hpp and
// wq/blocking_region.hpp (private to the library).
//
// Mechanism. A pool runs `pool_task`s: a queue's worker slot embeds one and submits it where it
// would post a worker handler to an executor, so submitting allocates nothing. Workers are
// threads; each has a `pool_thread` record. Concurrency management (rule 42) counts the workers
// that are `running` (executing tasks, or between them, and not blocked); a waiting task starts
// on a worker only while fewer than `concurrency` are running (unbound pools: whenever a worker
// is idle). A worker leaves `running` while it is blocked (blocking_region, wq's waits), on a
// long_running queue's item, or when the manager finds it inside one item past the threshold
// (`intensive`); it comes back at the end of that region or item.
//
// The manager: one thread for all pools, started by the first submit. It starts workers (never
// the submitting thread: it may hold a queue's lock) and, while a pool has tasks waiting and no
// worker to take them, looks every millisecond at the running workers inside an item: one whose
// CPU time did not advance for a millisecond and that the kernel reports sleeping (state S or D
// in /proc) is blocked, as the kernel's scheduler would tell its workqueue code; one whose item
// progress mark did not move for the threshold is CPU-intensive. It sleeps otherwise.
//
// Lock rules. Each pool has one mutex (PL below), a leaf: nothing else is locked under it. The
// manager's mutex (ML) is a leaf too and never held with PL. Fields tagged "T:" belong to the
// worker thread itself.
//
// Lifetime. Pools are created on first use and never destroyed (like wq's timer thread), so a
// queue destroyed during static destruction still has workers to drain it; worker threads are
// detached and never joined: at exit they are idle (the system queues drained at their shutdown),
// or run items of queues the program never destroyed, as threads of any leaked pool would.
#pragma once

#include <wq/flags.hpp>
#include <wq/pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include <time.h>

#include <boost/asio/execution_context.hpp>

namespace wq::detail {

/// Work a pool runs, embedded in the object it runs for. Every task runs the one entry point
/// given to worker_pool::set_task_entry (only the engine's worker slots are tasks), which must
/// not touch the task after it may have been resubmitted or its owner freed. No function
/// pointer per task: 8 bytes less in every queue.
struct pool_task {
  pool_task* next = nullptr;  // PL: the pool's FIFO of waiting tasks
};

class worker_pool;

/// One worker thread of a pool.
struct pool_thread {
  enum class state : std::uint8_t { running, idle, blocked, intensive };
  worker_pool* pool = nullptr;
  unsigned number = 0;  // for its thread name; immutable
  // T: bumped by the thread at each item start and end; read relaxed by the manager, which only
  // compares it with the value it saw a threshold earlier.
  std::atomic<std::uint64_t> progress{0};
  // T: items this thread is inside now (nested runs count each), written at item start and end;
  // read relaxed by the manager, which judges only a worker inside an item (see manage).
  std::atomic<std::uint32_t> item_depth{0};
  // PL writes; the thread reads it relaxed to decide whether it must take PL at an item's end
  // (a stale `running` only delays its return to running until the next item's end).
  std::atomic<state> st{state::running};
  bool in_task = false;             // PL: executing a task now
  std::uint64_t seen_progress = 0;  // PL (manager): progress at seen_at
  std::chrono::steady_clock::time_point seen_at{};
  std::int64_t seen_cpu_ns = 0;         // PL (manager): the thread's CPU time at seen_at
  clockid_t cpu_clock{};                // the thread's CPU-time clock; immutable once linked
  int tid = 0;                          // its kernel thread id; immutable once linked
  int region_depth = 0;                 // T: nested blocking regions and wq waits
  unsigned long long region_epoch = 0;  // T: bumped when an item ends with a region open
  bool long_item = false;               // T: the current item is a long_running queue's
  pool_thread* prev = nullptr;          // PL: the pool's list of live workers
  pool_thread* next = nullptr;
};

/// A process-wide pool. An Asio execution context, so that executors of queues running on it
/// name a context that stays valid (services such as timers work on it).
class worker_pool : public boost::asio::execution_context {
 public:
  explicit worker_pool(pool_kind kind);
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  [[nodiscard]] pool_kind kind() const noexcept { return kind_; }

  /// Queues `t` to run on a worker (FIFO). Never fails, never allocates, never starts a thread
  /// itself: it wakes an idle worker if concurrency allows, else asks the manager. Any thread,
  /// any lock held (PL is a leaf). Preconditions: `t` is not already queued.
  void submit(pool_task* t) noexcept;

  /// Effects: sets what every pool runs for a task (the engine's run_pool_task; the same value
  /// every time). Requires: called before the first submit(). Thread safety: any thread.
  /// Memory ordering: relaxed (the value never changes; whoever submits was published after
  /// the first call).
  static void set_task_entry(void (*entry)(pool_task*) noexcept) noexcept;

  /// The calling worker blocks (outermost region or wait) / stops blocking. `th` is the calling
  /// thread's record (this_pool_thread()).
  void enter_blocked(pool_thread* th) noexcept;
  void leave_blocked(pool_thread* th) noexcept;
  /// The calling worker's item ended while it was not counted as running (intensive, or a
  /// long_running item): it counts again.
  void item_ended(pool_thread* th) noexcept;

  /// Asks the manager for a pass now (starting the manager if an earlier start failed). For a
  /// thread blocked waiting on a queue of this pool whose worker has not started: after a
  /// failed thread start nothing else may ask again. Any thread, any lock but PL held.
  void nudge() noexcept;

  /// A number that changes whenever a worker takes a task or starts or ends an item (for a
  /// blocked waiter's "is anything happening" check; O(workers)). Any thread.
  [[nodiscard]] std::uint64_t progress_mark() const noexcept;

  /// This pool's state (pool_states()).
  [[nodiscard]] pool_state state() const;
  /// Appends a line per worker to `out` (dump_pools()).
  void dump(std::string& out) const;

  /// Returns: how many workers the pool keeps runnable at once (`concurrency`, 0 meaning the
  /// number of cores). Any thread; a relaxed read of a setting.
  [[nodiscard]] unsigned concurrency() const noexcept;

  /// Settings; relaxed atomics: read at each decision, no other data published through them.
  void set_options(const pool_options& o) noexcept;
  [[nodiscard]] pool_options options() const noexcept;

  /// The manager's pass over this pool: marks workers stalled past the threshold, wakes or
  /// starts workers for waiting tasks. Returns how many threads to start now (already counted
  /// as starting) and sets `next_look` to when it wants another pass (max() for none).
  unsigned manage(std::chrono::steady_clock::time_point now,
                  std::chrono::steady_clock::time_point& next_look) noexcept;
  /// Starts one worker the manager counted as starting (see manage). Manager thread only.
  void start_worker() noexcept;

 private:
  friend void pool_item_begin(bool long_running) noexcept;
  void worker_main(pool_thread* me) noexcept;
  // Wakes idle workers for waiting tasks while concurrency allows; returns whether tasks still
  // wait with no worker on the way (the manager must look). Requires PL.
  bool dispatch_locked() noexcept;
  [[nodiscard]] bool may_run_more_locked() const noexcept;
  // dispatch_locked, then whether the caller must kick the manager (sets watched_). Requires PL.
  bool needs_look_locked() noexcept;
  [[nodiscard]] std::chrono::microseconds threshold() const noexcept;
  // kick_pool_manager (pool_manager.hpp) for a caller that set watched_: clears it again if the
  // kick failed, so that a later call asks again.
  void kick_or_unwatch() noexcept;

  const pool_kind kind_;
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;  // idle workers wait here for wakeups_ or exit
  pool_task* head_ = nullptr;        // PL: waiting tasks, FIFO
  pool_task* tail_ = nullptr;        // PL
  std::size_t waiting_ = 0;          // PL: tasks on the FIFO
  pool_thread* threads_ = nullptr;   // PL: live workers
  unsigned nr_threads_ = 0;          // PL: live workers (including starting ones)
  unsigned nr_running_ = 0;          // PL: counted toward concurrency (incl. starting)
  unsigned nr_idle_ = 0;             // PL: idle and not promised a wakeup
  unsigned nr_blocked_ = 0;          // PL
  unsigned nr_intensive_ = 0;        // PL
  unsigned nr_starting_ = 0;         // PL: counted by manage(), not yet running
  unsigned wakeups_ = 0;             // PL: wakeups promised to idle workers
  bool watched_ = false;             // PL: the manager was asked to look
  std::chrono::steady_clock::duration look_interval_{};  // PL (manager): until the next look
  bool saturation_reported_ = false;                     // PL
  bool start_failed_ = false;          // PL: the last worker start failed (reported)
  unsigned next_number_ = 0;           // PL
  std::uint64_t threads_started_ = 0;  // PL
  std::uint64_t threads_exited_ = 0;   // PL
  std::uint64_t stalls_ = 0;           // PL
  std::uint64_t tasks_taken_ = 0;      // PL
  // The pool's options (set_pool_options): plain settings read relaxed, since nothing else is
  // published through them and a reader that sees an old value acts on it one look later.
  std::atomic<unsigned> opt_concurrency_{0};
  std::atomic<std::int64_t> opt_threshold_us_{0};
  std::atomic<std::int64_t> opt_idle_ms_{0};
  std::atomic<unsigned> opt_max_threads_{0};
  std::atomic<bool> opt_detect_sleeping_{true};
};

/// The pool a queue with `flags` runs on (see wq/pool.hpp); an ordered queue runs on an unbound
/// one.
[[nodiscard]] pool_kind pool_kind_for(queue_flags flags, bool ordered) noexcept;
/// The pool of `kind`, created on first use (no thread starts). Throws std::bad_alloc.
worker_pool& pool_of_kind(pool_kind kind);
/// The pool of `kind` if it was created, else nullptr.
worker_pool* existing_pool(pool_kind kind) noexcept;
/// The calling thread's worker record, or nullptr if it is not a pool worker.
pool_thread* this_pool_thread() noexcept;

/// Engine hooks around one item on the calling thread (no-ops off pool workers): the item's
/// start and end advance the progress mark and the item depth (the manager judges a worker
/// only while it is inside an item: its function or its observer's calls); a long_running
/// queue's item does not count toward the pool's concurrency. Calling thread only.
void pool_item_begin(bool long_running) noexcept;
void pool_item_end() noexcept;

}  // namespace wq::detail
