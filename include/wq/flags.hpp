// SPDX-License-Identifier: BSL-1.0
// wq/flags.hpp: `queue_flags`, the kernel's WQ_* flags that mean something in user space, and
// the `max_active` limits (rule 37).
//
//   unbound       WQ_UNBOUND: no concurrency management; items start as soon as a worker is
//                 free, up to max_active at once (per-thread "CPU" affinity does not exist
//                 here). A queue without an executor runs on the unbound pool (wq/pool.hpp).
//                 Without it a queue on a shared pool is concurrency-managed (rule 42); on an
//                 executor it runs at most as many items at once as the machine has cores, and
//                 on a private pool at most as many as its threads, still capped by max_active.
//   highpri       WQ_HIGHPRI: the queue runs on a highpri pool, whose workers run at nice -20
//                 where permitted and are separate from the normal pools, so its items never
//                 wait behind theirs (rule 43).
//   long_running  for items that may run long (system_long_wq): the kernel's CPU-intensive
//                 items; on a shared pool they do not count toward its concurrency, so they
//                 never keep short items from starting.
//
// Ordered queues (the kernel's __WQ_ORDERED, set by alloc_ordered_workqueue) are not a flag
// here: they are their own type, wq::ordered_workqueue (wq/ordered_workqueue.hpp), so that code
// relying on one-at-a-time execution says so in its types.
//
// Where a flag is advisory: only the shared pools (queue_options::threads 0, no executor) act
// on every flag. On a queue with a private pool the threads are the queue's own: `highpri`
// changes nothing (they run at the priority they were created with), `unbound` changes nothing
// (the queue already runs up to max_active items, capped by its threads) and `long_running`
// changes nothing (there is no pool concurrency to keep it out of). On a queue given an
// executor `highpri` and `long_running` change nothing for the same reason (the threads are
// the user's), while `unbound` lifts the cap of one item per core to max_active (rule 41).
// Passing them is never an error: code written for the shared pools runs unchanged.
//
// Thread safety: plain values.
#pragma once

#include <wq/config.hpp>

#include <cstdint>

namespace wq {

/// Flags of a workqueue; combine with `|`. One byte (a queue handle keeps them).
enum class queue_flags : std::uint8_t {
  none = 0,
  unbound = 1u << 0,
  highpri = 1u << 1,
  long_running = 1u << 2,
};

constexpr queue_flags operator|(queue_flags a, queue_flags b) noexcept {
  return static_cast<queue_flags>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr queue_flags operator&(queue_flags a, queue_flags b) noexcept {
  return static_cast<queue_flags>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
/// Returns whether every flag of `which` is set in `set`.
constexpr bool has_flag(queue_flags set, queue_flags which) noexcept {
  return (set & which) == which;
}

/// max_active used when 0 is requested (the kernel's WQ_DFL_ACTIVE).
inline constexpr int default_max_active = 1024;
/// Largest accepted max_active (the kernel's WQ_MAX_ACTIVE); larger values are clamped and
/// reported (errc::max_active_clamped), as are values below 1 other than 0.
inline constexpr int max_max_active = 2048;

/// Returns the max_active a queue actually uses for a requested value: 0 → 1024, otherwise
/// clamped to [1, 2048] (rule 37).
constexpr int clamp_max_active(int requested) noexcept {
  if (requested == 0) return default_max_active;
  if (requested < 1) return 1;
  if (requested > max_max_active) return max_max_active;
  return requested;
}

}  // namespace wq
