// SPDX-License-Identifier: BSL-1.0
// src/pool_manager.hpp: the pool manager, one thread for all shared worker pools (private to
// the library; the mechanism is described in worker_pool.hpp).
//
// The thread is started by the first kick and never stops; it sleeps until kicked or until the
// next look a pool asked for, then runs each existing pool's manage() pass and starts the
// workers it counted. Its state is immortal (leaked on purpose) so that it may be kicked during
// static destruction.
//
// Lock rules: the manager's mutex (ML) is a leaf, never held with a pool's mutex (PL): manage()
// takes PL after ML is released.
#pragma once

#include <wq/config.hpp>

#include <cstdint>

#include <time.h>

namespace wq::detail {

/// Effects: asks the manager for a pass now, starting its thread on first use (or after an
/// earlier start failed). Returns: false if the thread could not be started (reported as
/// errc::worker_post_failed); the caller then lets a later call ask again.
/// Thread safety: any thread, holding no pool mutex.
bool kick_pool_manager() noexcept;

/// Returns the CPU time of the thread whose clock is `c`, in nanoseconds (0 if unreadable).
/// Thread safety: any thread.
std::int64_t thread_cpu_time_ns(clockid_t c) noexcept;

/// Returns whether the kernel reports thread `tid` of this process sleeping (S) or in
/// uninterruptible wait (D), from /proc/self/task/<tid>/stat; false if unknown.
/// Thread safety: any thread. Cost: one small /proc read (the manager calls it only for a worker
/// whose CPU time stood still for a millisecond inside one item).
bool thread_sleeping(int tid) noexcept;

}  // namespace wq::detail
