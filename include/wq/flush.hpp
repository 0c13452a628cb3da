// SPDX-License-Identifier: BSL-1.0
// wq/flush.hpp: waiting for work items: flush_work and flush_delayed_work.
//
// The contracts are on the functions below. A flush moves no reference: the pending instance
// keeps the one it holds and hands it to run.
#pragma once

#include <wq/config.hpp>

#include <wq/delayed_work.hpp>
#include <wq/detail/run_pointer.hpp>
#include <wq/work.hpp>
#include <wq/work_pointer.hpp>

namespace wq {

/// Waits until the last queueing instance of `item` has finished (rule 23).
///
/// Effects: a pending instance is waited for until it has run, an instance that is only running
/// until it returns. An armed delayed item is neither queued nor running: returns false at once
/// (use flush_delayed_work). From an item of a draining queue, a delayed item of that queue
/// whose timer fired during the drain is queued now, as chained work, and waited for.
/// Returns: true if it had to wait (the item was pending or running at the call), false if it
/// was idle. Postcondition: the item is idle unless queued again after the call started.
/// Throws: nothing.
/// Thread safety: any thread; blocks. Misuse that would deadlock returns false at once and is
/// reported (diagnostics.hpp): from the item's own function (errc::flush_self, §5.1); from an
/// item running on a one-worker queue (ordered or max_active 1), for another item queued on
/// that queue, which can only run after the caller returns (errc::wait_needs_this_worker,
/// §5.3). A wait that could never end is refused the same way, within bounded time: running
/// items that flush each other (errc::wait_cycle), an item on a queue that stays paused
/// (errc::wait_on_paused_queue), on a stopped or unrun executor (errc::executor_stopped,
/// errc::executor_not_running).
/// Complexity: O(1) plus the wait.
bool flush_work(work& item) noexcept;

/// Fires an armed delayed item now and waits for it (rule 24).
///
/// Effects: if the timer is armed, queues the item now on the queue recorded when it was armed
/// (its outstanding timer wait then finds it no longer armed), then waits as flush_work. From
/// an item of a one-worker queue, an item armed on that queue is queued but not waited for
/// (errc::wait_needs_this_worker, returns false).
/// Returns, Throws, Thread safety: as flush_work.
bool flush_delayed_work(delayed_work& item) noexcept;

/// The typed flush_work (rule 23): waits for the last queued instance of member `Member` of
/// `obj` to finish.
///
/// Preconditions (compile-time): as for `enqueue<Member>` with pointer type `Pointer`.
/// Effects: as `flush_work(obj.*Member)`.
/// Returns: true if it had to wait, false if the item was idle (or only armed).
/// Thread safety: as flush_work(work&).
template <auto Member, class Pointer>
bool flush_work(typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The typed flush_work with the pointer type deduced from `T`'s `run`:
/// `wq::flush_work<&session::flush>(*s)`. As `flush_work<Member, Pointer>(obj)`.
template <auto Member, class T>
bool flush_work(T& obj) noexcept;

/// The typed flush_delayed_work (rule 24): queues the armed delayed member `Member` of `obj` now
/// on its recorded queue, then waits for it.
///
/// Preconditions (compile-time): as for `enqueue_delayed<Member>` with pointer type `Pointer`
/// (`Member` names a delayed item).
/// Effects: as `flush_delayed_work(obj.*Member)`.
/// Returns: true if it had to wait.
/// Thread safety: as the typed flush_work.
template <auto Member, class Pointer>
bool flush_delayed_work(typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The typed flush_delayed_work with the pointer type deduced from `T`'s `run`.
template <auto Member, class T>
bool flush_delayed_work(T& obj) noexcept;

}  // namespace wq

#define WQ_DETAIL_FLUSH_HPP_DECLARED  // impl/flush.hpp checks it
#include <wq/impl/flush.hpp>
