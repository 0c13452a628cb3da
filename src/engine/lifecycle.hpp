// SPDX-License-Identifier: BSL-1.0
// src/engine/lifecycle.hpp: the engine's sequences over a queue's life (layer 6, with
// engine.hpp the only code that acts across mechanisms): taking items off the queue unrun
// (cancel, abandon), expiry of delayed items, pause, drain and destroy, orphans and retirement.
// The lifecycle state is queue_core::lc (lifecycle_state); every function requires the core's
// mutex held.
#pragma once

#include <mutex>
#include <vector>

#include <wq/detail/async_waiter.hpp>

#include "queue_core.hpp"

namespace wq::detail {

/// Effects: completes the async waiters whose condition now holds (onto `done`, completed by
/// the caller once it has released mu) and ends the drains among them. Requires: mu held.
void complete_waiters_locked(queue_core* core, done_list& done) noexcept;

/// Effects: removes the QUEUED or ARMED item `w` (state `s`) from the list of `core` that
/// holds it, uncounting it, counting it cancelled if `cancelling`, and waking or completing
/// what that satisfies. Returns: true, or false (nothing done) if a worker that took `w` ahead
/// has just taken it to run it: its state then soon shows it started (look again).
/// Requires: mu held, the state naming `core`.
bool unlink_locked(queue_core* core, work& w, state_t s, bool cancelling, done_list& done) noexcept;

/// Effects: queues an item of `core` whose deadline has come, exactly as its timer firing
/// would: off the armed list, then onto the queue (or the deferred list while the queue
/// drains, rule 49). `wait_done`: the caller is the item's Asio wait completing, so IN_FLIGHT
/// is cleared too; otherwise (the test clock, flush_delayed_work) an outstanding wait keeps
/// IN_FLIGHT and later finds the item no longer ARMED. Requires: mu held, `dw` ARMED for `core`.
void queue_expired_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept;
/// Effects: as queue_expired_locked(core, dw, true) (the caller is the item's wait completing),
/// except that no worker is started: the caller, which may link more expired items of the
/// queue first, starts the workers they need with start_workers_deferred_locked before it
/// releases mu and posts them once it has (workers.hpp), so that the threads it wakes do not
/// block on mu while the timer thread still holds it.
/// Returns: whether the item was linked on the worklist (false: on the deferred list of a
/// draining queue). Requires: mu held, `dw` ARMED for `core`.
bool link_expired_locked(queue_core* core, delayed_work& dw) noexcept;

/// Effects: unpauses a paused queue and starts its workers (drain and destroy could not finish
/// on a paused queue). Requires: mu held.
void unpause_locked(queue_core* core) noexcept;
/// Effects: pauses the queue (rule 45): queued items stay queued, none starts until
/// unpause_locked; blocked waits that need queued items to run re-check (and refuse). Requires:
/// mu held.
void pause_locked(queue_core* core) noexcept;
/// Effects: queues the delayed items that fired during a drain, and the functions submitted
/// through the queue's executor that it held. Requires: mu held.
void queue_deferred_locked(queue_core* core) noexcept;
/// Effects: holds `w`, a claimed item boxing a function submitted through the queue's executor
/// from outside the queue while it drains (link_submitted), on the deferred list: QUEUED for
/// queue `id`, not in flight (the drain does not wait for it), queued when the last drain ends
/// or when destroy begins. The queue holds outstanding work on its executor meanwhile.
/// Requires: mu held, the queue draining and not dying, `id` the queue's.
void hold_deferred_locked(queue_core* core, work& w, std::uint64_t id) noexcept;
/// Effects: starts one drain (sync or async, rule 49): from now on only chained queueing is
/// accepted, and what producers left on the intake is linked. Requires: mu held.
void begin_drain_locked(queue_core* core) noexcept;
/// Effects: ends one drain (sync or async); the last one queues the deferred items and reopens
/// the intake. Requires: mu held.
void end_drain_locked(queue_core* core) noexcept;

/// Effects: starts destroying: refuses outside queueing, unpauses, unlinks armed items and
/// queues deferred ones. Returns: the armed items unlinked (the caller releases their
/// references once it has released mu). Requires: mu held. Throws: std::bad_alloc.
std::vector<work*> begin_destroy_locked(queue_core* core);

/// Effects: sets max_active (already clamped, rule 38) and the workers it allows; starts
/// waiting items it lets run. Returns: `ma`. Requires: mu held.
int set_max_active_locked(queue_core* core, int ma) noexcept;

/// Returns: whether nothing of the queue is in flight (queued, inactive or running).
/// Requires: mu held.
bool drained_locked(const queue_core* core) noexcept;
/// Returns: drained_locked, and no worker handler of the queue is still inside the engine (so
/// its executor may be joined or its core retired). Requires: mu held.
bool quiescent_locked(const queue_core* core) noexcept;
/// Returns: whether nothing is in flight but (if `caller_runs_here`) the calling item, and
/// nothing waits deferred by a drain: the queue may be destroyed at once. Requires: mu held.
bool idle_but_caller_locked(const queue_core* core, bool caller_runs_here) noexcept;

/// Effects: flush_delayed_work's firing (rule 24): takes the ARMED `dw` off the armed list
/// and queues it now; the outstanding timer wait later finds it no longer ARMED (on the
/// application's io_context it is cancelled: see disarm_locked). Requires: mu held, `dw` ARMED
/// for `core`.
void fire_now_locked(queue_core* core, delayed_work& dw) noexcept;
/// Effects: queues now the item `w`, deferred by a drain of `core` (a flush from one of the
/// queue's own items needs it to run, as chained work). Requires: mu held, `w` deferred.
void requeue_deferred_locked(queue_core* core, work& w) noexcept;

/// Effects: marks the queue orphaned: its destroyer went; the last of its items to finish
/// retires it. Requires: mu held.
void mark_orphaned_locked(queue_core* core) noexcept;
/// Effects: marks the queue orphaned and, if nothing is in flight, finishes it now
/// (finish_orphan_locked). Requires: mu held through `lk`.
void orphan_locked(queue_core* core, core_lock& lk, done_list& done) noexcept;
/// Effects: retires the queue now if nothing is in flight; otherwise marks it orphaned (items
/// running elsewhere: the last one retires it). Requires: mu held through `lk`.
void retire_or_orphan_locked(queue_core* core, core_lock& lk, done_list& done) noexcept;

/// Effects: the queue's executor will never run its items (it destroyed a worker handler
/// unrun, or nobody runs it when the queue is destroyed): takes every item the queue holds
/// (queued, inactive, handed over, deferred, armed) off its lists into `out`, fixing the
/// counts, and refuses queueing from then on. The caller drops them (releasing their
/// references) once it has released mu. Requires: mu held.
void abandon_locked(queue_core* core, work_list& out, done_list& done) noexcept;

/// Effects: completes `destroyers` (async_destroy waiters that left the core's list, their
/// results set) with mu released, letting handlers bound to the queue's own executor in as its
/// last items (chained work; lc.orphan_busy is set meanwhile, so finish_orphan_locked waits
/// for this thread), and likewise any async_destroy registered meanwhile (from one of those
/// handlers). Returns: with mu held again, whether nothing is in flight, so the caller
/// finishes the queue; false: the last of those items does. Requires: mu held through `lk`,
/// lc.destroy_notified set, lc.orphan_busy clear, no wq mutex held besides.
bool complete_destroyers_locked(queue_core* core, core_lock& lk, done_list& destroyers) noexcept;

/// Effects: retires an orphaned core that has gone idle, having its pool joined elsewhere;
/// its async_destroy waiters complete once that is done (onto `done`, or from this thread
/// with mu released). Requires: mu held through `lk` (see retire_core).
void finish_orphan_locked(queue_core* core, core_lock& lk, done_list& done) noexcept;

/// Effects: marks a live core retired (generation bumped, intake closed under the new tag)
/// and recycles it when no handle refers to it. Waiters still registered (async_destroy)
/// move onto `done`. Requires: mu held through `lk`, which is unlocked on return if the core
/// was recycled.
void retire_core(queue_core* core, core_lock& lk, done_list& done) noexcept;

}  // namespace wq::detail
