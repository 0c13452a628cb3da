// SPDX-License-Identifier: BSL-1.0
// wq/system_queues.hpp: the process-wide queues every program can use without creating one
// (the kernel's system_wq & co., Rust's `workqueue::system()` & co.).
//
// Each is a separate queue object with the kernel's name and max_active (rule 48), running on
// the shared pool its flags choose (wq/pool.hpp):
//
//   accessor                               name                              pool     max_active
//   system_wq(), system_percpu_wq()        "events"                          normal   1024
//   system_highpri_wq()                    "events_highpri"                  highpri  1024
//   system_long_wq()                       "events_long" (long_running)      normal   1024
//   system_unbound_wq(), system_dfl_wq()   "events_unbound"                  unbound  2048
//   system_dfl_long_wq()                   "events_dfl_long" (long_running)  unbound  2048
//   system_freezable_wq()                  "events_freezable"                normal   1024
//   system_power_efficient_wq()            "events_power_efficient"          normal   1024
//   system_freezable_power_efficient_wq()  "events_freezable_pwr_efficient"  normal   1024
//
// long_running items do not count toward their pool's concurrency (the kernel's CPU-intensive
// items), so they never hold up short ones. "Freezable" is the kernel's system suspend: these
// queues stop starting items while paused (workqueue::pause(), rule 45), which wq never does
// on its own. "Power efficient" chooses per-CPU or unbound by a kernel parameter; user space
// has no such choice to make, so they are per-CPU (normal pool), the kernel's default.
// Not offered: system_bh_wq and system_bh_highpri_wq (WQ_BH, rule 46) run items in softirq
// context on the queueing CPU; user space has neither. The nearest model is an ordered queue on
// the queueing thread's own io_context (`wq::ordered_workqueue q{io.get_executor(), "bh"}`):
// FIFO, on that thread, and its items must not block.
// Items that may wait for other items beyond max_active belong on a queue of their own (rule
// 48's guidance); a saturated system queue is reported by a watchdog (wq/watchdog.hpp).
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
/// Returns the per-CPU system queue ("events"; the kernel's new name for system_wq, a separate
/// object).
[[nodiscard]] workqueue& system_percpu_wq();
/// Returns the default unbound system queue ("events_unbound", max_active 2048; a separate
/// object from system_unbound_wq, as in the kernel).
[[nodiscard]] workqueue& system_dfl_wq();
/// Returns the unbound system queue for long-running items ("events_dfl_long", 2048).
[[nodiscard]] workqueue& system_dfl_long_wq();
/// Returns the freezable system queue ("events_freezable"): see the file comment.
[[nodiscard]] workqueue& system_freezable_wq();
/// Returns the power-efficient system queue ("events_power_efficient").
[[nodiscard]] workqueue& system_power_efficient_wq();
/// Returns the freezable power-efficient system queue ("events_freezable_pwr_efficient").
[[nodiscard]] workqueue& system_freezable_power_efficient_wq();

}  // namespace wq
