// SPDX-License-Identifier: BSL-1.0
// wq/pool.hpp: the process-wide worker pools that queues created without an executor run on
// (the kernel's concurrency-managed workqueues, cmwq), their settings and their state.
//
// A workqueue is a front-end: its items, their order, max_active and flush colours. The threads
// belong to pools. `wq::workqueue q{"name"}` (no executor, no `threads`) runs on the pool its
// flags choose (rules 41-43):
//
//   flags                        pool
//   none, long_running           normal          (the kernel's per-CPU pools)
//   highpri                      highpri         (workers at nice -20 where permitted)
//   unbound, ordered             unbound         (the kernel's unbound pools)
//   unbound|highpri, ordered|hi  unbound_highpri
//
// Pools are created on first use and start their threads lazily: creating a queue starts no
// thread. A pool keeps about one runnable worker per core (`concurrency`): an item waiting in a
// pool starts when fewer than that many workers are running. A worker stops counting as
// running while its thread is blocked: inside a `wq::blocking_region` (wq's own blocking waits
// declare one), on an item of a `long_running` queue (the kernel's CPU-intensive items), when
// it sleeps inside an item (no CPU time for a millisecond and the kernel reports it sleeping:
// a blocking call, a lock, a condition variable, sleep_for; `detect_sleeping`), or after its
// item has used `cpu_intensive_threshold` of CPU time (the kernel's cpu_intensive_thresh_us,
// which counts CPU time too) or slept past it. The pool manager finds the last two; it looks
// every millisecond, and only while items wait for a worker. Then
// another worker starts, so items queued behind a blocked one proceed and items that wait for
// each other all run (up to their queue's max_active and the pool's `max_threads`). Workers
// beyond `concurrency` that stay idle for `idle_timeout` exit.
//
// Unbound pools have no concurrency management in the kernel (items start as soon as
// possible): here an idle worker is woken for any waiting item whatever the number running, and
// a new worker starts once every running one has used `cpu_intensive_threshold` of CPU time
// inside one item, or slept that long in it (1 ms by default for unbound pools, against
// 10 ms), so a burst of short items does not start a thread per item.
//
// Bound: a pool runs at most `max_threads` workers (default 256). Reaching it with items
// waiting is reported once (errc::pool_saturated): items that wait for each other beyond it
// cannot all run (the kernel's saturation case, semantics §5.14).
//
// Thread names: "wq-manager", and "wq-normal-N", "wq-highpri-N", "wq-unbound-N", "wq-unbhi-N"
// (unbound_highpri) for the workers, N as in dump_pools().
//
// Threads: one manager thread for all pools (started with the first worker), plus each pool's
// workers: at most pools-in-use x concurrency while nothing blocks. Queueing never allocates;
// starting a worker does (its record and its thread), a pool event bounded by max_threads.
// What is judged is the item (its work function and its observer's calls): a worker waiting
// for wq's own locks between items, or one the OS has descheduled (runnable, using no CPU
// time) however long, still counts as running. A spare worker would only compete for the same
// CPUs: counting those made a round-robin over 10^5 queues on a 2-core machine start 2-10 spare
// workers and run 1.5-2x slower (docs/benchmarks.md, "Spare workers on a busy machine").
//
// Thread safety: every function here may be called from any thread at any time.
#pragma once

#include <wq/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wq {

/// The process-wide pools (see the file comment for which flags choose which).
enum class pool_kind : std::uint8_t { normal, highpri, unbound, unbound_highpri };
inline constexpr std::size_t nr_pool_kinds = 4;

/// The pool's name as shown by dump_pools() ("normal", "highpri", "unbound", "unbound_highpri").
[[nodiscard]] const char* to_string(pool_kind kind) noexcept;

/// A pool's settings.
struct pool_options {
  /// Workers kept runnable at once; 0 means the number of cores.
  unsigned concurrency = 0;
  /// Inside one item for this much CPU time (or asleep in it this long), a worker no longer
  /// counts as running (rule 42). 0 means the default: 10 ms (1 ms for unbound pools).
  std::chrono::microseconds cpu_intensive_threshold{0};
  /// Workers beyond `concurrency` idle this long exit (the kernel uses 5 minutes).
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  /// Most workers the pool runs at once (>= 1).
  unsigned max_threads = 256;
  /// Treat a worker asleep inside an item (no CPU time for 1 ms, and the kernel reports it
  /// sleeping) as blocked at once, without waiting for the threshold: the kernel's behaviour.
  bool detect_sleeping = true;
};

/// Changes a pool's settings. Takes effect at once for new decisions (running workers are not
/// stopped; a lower max_threads lets extra workers exit as they go idle). Values out of range
/// are clamped: durations to [0, 1 day] (a threshold of 0 means the default), concurrency and
/// max_threads to at most 65536, max_threads to at least 1. Returns the previous settings.
pool_options set_pool_options(pool_kind kind, const pool_options& options) noexcept;
/// Returns a pool's current settings (with defaults resolved).
[[nodiscard]] pool_options get_pool_options(pool_kind kind) noexcept;

/// One pool's state, as dump_pools() shows it.
struct pool_state {
  pool_kind kind = pool_kind::normal;
  bool created = false;        ///< some queue has used this pool
  unsigned threads = 0;        ///< workers alive (running, idle, blocked or CPU-intensive)
  unsigned running = 0;        ///< counted toward concurrency
  unsigned idle = 0;           ///< waiting for work
  unsigned blocked = 0;        ///< inside a blocking_region (or a wq wait)
  unsigned cpu_intensive = 0;  ///< on a long_running item or past the threshold
  unsigned starting = 0;       ///< being started
  std::size_t waiting = 0;     ///< worker handlers of queues waiting for a worker
  unsigned concurrency = 0;
  unsigned max_threads = 0;
  std::uint64_t threads_started = 0;  ///< since the pool was created
  std::uint64_t threads_exited = 0;   ///< idle ones that timed out
  std::uint64_t stalls = 0;           ///< workers found past the threshold
};

/// Returns the state of every pool (one entry per pool_kind, in enum order).
[[nodiscard]] std::vector<pool_state> pool_states();

/// A text dump of every created pool and its workers, one line each (the kernel's
/// show_workqueue_state / wq_monitor): running, idle, blocked, CPU-intensive, waiting.
[[nodiscard]] std::string dump_pools();

}  // namespace wq
