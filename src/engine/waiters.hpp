// SPDX-License-Identifier: BSL-1.0
// src/engine/waiters.hpp: who waits on a queue (layer 5): blocked threads (drain,
// flush, an item to stop running; blocked_waiter), flush_work() callers (flush_waiter), and async
// waiters (async_flush, async_drain, async_cancel_sync, async_destroy). This layer tells which
// waits a change satisfied and wakes or collects them; it never ends a drain or retires a queue
// (the engine does, from what it returns). The state is queue_core::wt (waiters_state); every
// function requires the core's mutex held.
#pragma once

#include <wq/detail/async_waiter.hpp>

#include "queue_core.hpp"

namespace wq::detail {

/// Effects: moves the async waiters whose condition now holds onto `done` (completed by the
/// caller once it has released mu). Returns: how many of them were drains (the caller ends
/// that many drains, end_drain_locked). Requires: mu held. Complexity: O(async waiters).
int check_async_locked(queue_core* core, done_list& done) noexcept;

/// Effects: registers `w` with `core`: on its list, among w's cores (with a reference on the
/// core, dropped by release_waiter_cores), counted in w->remaining.
/// Returns: false, changing nothing, if out of memory. Requires: mu held.
bool add_waiter_locked(queue_core* core, async_waiter* w) noexcept;
/// Effects: registers an async_destroy waiter on an orphaned core (as add_waiter_locked).
bool register_async_destroy_locked(queue_core* core, async_waiter* w) noexcept;
/// Effects: moves the core's async_destroy waiters onto `out`, noting on each whether the
/// queue dropped items unrun (its result, D19). Requires: mu held.
void take_destroy_waiters_locked(queue_core* core, done_list& out) noexcept;

/// Effects: `w` has started on worker `me`: flush_work() callers waiting for it now wait for
/// that worker to finish it. Requires: mu held.
void note_started_locked(queue_core* core, work* w, worker_slot& me) noexcept;
/// Effects: the item worker `me` ran (of flush color `color`) has finished: wakes the blocked
/// waiters this may satisfy (drain at nr_in_flight 0, item waiters, a flush whose color
/// drained, flush_work() callers of that instance). Requires: mu held.
void wake_after_run_locked(queue_core* core, worker_slot& me, unsigned color) noexcept;
/// Effects: a queued instance of `w` was taken off the queue unrun (already uncounted): a
/// flush_work() caller waiting for it waits instead for an older instance still running
/// (rule 23), or has nothing left to wait for; wakes the blocked waiters this satisfies.
/// Requires: mu held.
void wake_after_unlink_locked(queue_core* core, work& w) noexcept;

/// Effects: wakes every thread blocked in a wait on `core` (each re-checks what it waits for).
/// Requires: mu held. Complexity: O(blocked threads).
void wake_blocked_locked(queue_core* core) noexcept;

/// Returns: whether a thread waiting for `kind` is blocked on `core`. Requires: mu held.
/// Complexity: O(blocked threads); O(1) when none is.
bool blocked_for_locked(const queue_core* core, blocked_kind kind) noexcept;

/// Links the calling thread on `core`'s blocked threads, as waiting for `kind`, while it exists;
/// wait_for() blocks on its own wake-up word until woken by wake_blocked_locked or `d` passes.
/// Requires: mu held (through the lock given to wait_for) when it is constructed, waits and is
/// destroyed.
class blocked_wait {
 public:
  blocked_wait(queue_core* core, blocked_kind kind) noexcept;
  ~blocked_wait();
  blocked_wait(const blocked_wait&) = delete;
  blocked_wait& operator=(const blocked_wait&) = delete;
  /// Effects: releases `lk` (core's mutex) until woken or `d` passed, then re-acquires it.
  void wait_for(core_lock& lk, std::chrono::milliseconds d);

 private:
  queue_core* core_;
  blocked_waiter node_;
};

/// Returns: the flush epoch now: a flush started now waits for the colours of epochs up to it
/// (rule 26). Requires: mu held.
std::uint64_t flush_epoch_locked(const queue_core* core) noexcept;
/// Effects: lets a flush of epoch `e0` take the next colour if no older instance holds it.
/// Returns: whether it did (false: wait and call again). Requires: mu held.
bool flush_may_start_locked(queue_core* core, std::uint64_t e0) noexcept;
/// Returns: whether every instance queued at epochs <= `e0` has finished. Requires: mu held.
bool flushed_through_locked(const queue_core* core, std::uint64_t e0) noexcept;

/// Effects: registers a flush_work() caller waiting on `core` (linked through f->next).
/// Requires: mu held; `f` not registered.
void add_flusher_locked(queue_core* core, flush_waiter* f) noexcept;
/// Effects: unregisters a flush_work() caller. Requires: mu held. Complexity: O(flush_work()
/// callers waiting on the queue).
void remove_flusher_locked(queue_core* core, flush_waiter* f) noexcept;

/// Effects: takes `w` off `core`'s list of async waiters, if it is still there. Returns:
/// whether it was (false: it completed meanwhile, or is being completed). Requires: mu held.
bool withdraw_waiter_locked(queue_core* core, async_waiter* w) noexcept;

}  // namespace wq::detail
