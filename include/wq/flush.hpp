// SPDX-License-Identifier: BSL-1.0
// wq/flush.hpp: waiting for work items: flush_work and flush_delayed_work.
//
// In the kernel's words:
//   - flush_work (rule 23) waits until the last queueing instance of the item has finished.
//     Returns true if it had to wait (the item was pending or running at the call), false if
//     it was idle. On return the item is idle unless someone queued it again after the flush
//     started. A pending instance is waited for until it has run; an only-running instance until
//     it returns. An armed delayed item is neither queued nor running: flush_work returns false
//     at once (use flush_delayed_work).
//   - flush_delayed_work (rule 24): if the timer is armed, the item is queued now on the queue
//     recorded when it was armed ("fires the timer now"), then flushed as by flush_work.
//
// Typed forms, for symmetry with the typed cancel (cancel.hpp): `flush_work<&T::m>(obj)` and
// `flush_delayed_work<&T::m>(obj)` flush the member `m` of `obj`, checking at compile time, as
// `enqueue` does, that `T` declares `static void run(Pointer self, wq::id<&T::m>) noexcept`
// (whose pointer type they deduce); `flush_work<&T::m, Pointer>(obj)` names the pointer type.
// A flush moves no reference: the pending instance keeps the one it holds and hands it to run.
//
// Thread safety: callable from any thread. Misuse that would deadlock returns false at once and
// is reported (diagnostics.hpp): flushing an item from its own work function
// (errc::flush_self, §5.1), or, from an item running on a one-worker queue (ordered or
// max_active 1), flushing another item queued on that same queue, which can only run after the
// caller returns (errc::wait_needs_this_worker, §5.3; flush_delayed_work of an item armed on
// that queue still fires it). A wait that could never end is refused the same way, within
// bounded time: running items that flush each other (errc::wait_cycle), an item queued on a
// queue that stays paused (errc::wait_on_paused_queue), on a stopped or unrun executor
// (errc::executor_stopped, errc::executor_not_running). flush_work from an item of a draining
// queue, of a delayed item whose timer fired during the drain, queues it as chained work.
#pragma once

#include <wq/config.hpp>

#include <wq/delayed_work.hpp>
#include <wq/detail/run_pointer.hpp>
#include <wq/work.hpp>
#include <wq/work_pointer.hpp>

namespace wq {

/// Waits for the last queued instance of `item` to finish (rule 23).
/// Returns: true if it had to wait, false if the item was idle (or only armed).
bool flush_work(work& item) noexcept;

/// Queues an armed delayed item now, then waits for it as flush_work does (rule 24).
/// Returns: true if it had to wait.
bool flush_delayed_work(delayed_work& item) noexcept;

/// The typed flush_work (rule 23): waits for the last queued instance of member `Member` of
/// `obj` to finish.
///
/// Preconditions (compile-time): as for `enqueue<Member>` with pointer type `Pointer`.
/// Effects: as `flush_work(obj.*Member)`.
/// Returns: true if it had to wait, false if the item was idle (or only armed).
/// Thread safety: blocks; misuse that would deadlock returns false at once and is reported (see
/// the file comment).
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
