// SPDX-License-Identifier: BSL-1.0
// wq/system_queues.hpp: the process-wide queues every program can use without creating one
// (the kernel's system_wq & co., Rust's `workqueue::system()` & co.).
//
//   system_wq()          "events": short items; as many threads as cores; max_active 1024.
//   system_highpri_wq()  "events_highpri": its own threads, so its items never wait behind
//                        normal ones.
//   system_long_wq()     "events_long": items that may run long (more threads than cores), so
//                        they do not hold up system_wq.
//   system_unbound_wq()  "events_unbound": no concurrency management, max_active 2048.
//
// Lifetime: each queue is created on first use and is never destroyed, so it may be used from
// any thread at any time, including from static destructors. At process exit (in the order of
// static destruction, at the point where the queue was first used) it is shut down: items
// already queued run, armed delayed items targeting it are cancelled, its threads are joined,
// and later queueing attempts return queue_status::rejected (nothing is lost silently). If exit()
// is called from one of a system queue's own items, that queue is left running instead (it
// cannot wait for itself).
//
// Faults: if a queue cannot be created (std::bad_alloc, or std::system_error when its threads
// cannot be started) the accessor throws and the next call tries again.
// See docs/bad-input.md ("Exit and destruction order") for what static destructors may do.
//
// Thread safety: the accessors are thread-safe; the queues are workqueues (fully thread-safe).
#pragma once

#include <wq/config.hpp>

#include <wq/workqueue.hpp>

namespace wq {

/// Returns the system queue for short items ("events"; kernel system_wq, Rust system()).
[[nodiscard]] workqueue& system_wq();
/// Returns the high-priority system queue ("events_highpri").
[[nodiscard]] workqueue& system_highpri_wq();
/// Returns the system queue for long-running items ("events_long").
[[nodiscard]] workqueue& system_long_wq();
/// Returns the unbound system queue ("events_unbound", max_active 2048).
[[nodiscard]] workqueue& system_unbound_wq();

}  // namespace wq
