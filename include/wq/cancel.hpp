// SPDX-License-Identifier: BSL-1.0
// wq/cancel.hpp: stopping work items with the kernel's guarantees: cancel_work[_sync],
// cancel_delayed_work[_sync], disable_work[_sync] / enable_work / enable_and_queue_work, and
// mod_delayed_work, which steals a pending instance the way a cancel does and re-queues it.
//
// In the kernel's words:
//   - cancel_work / cancel_delayed_work (rules 28, 31): if the item is pending (armed, queued,
//     or in the middle of being queued by a timer), it is removed so that this instance never
//     runs, and the call returns true; otherwise false. Never waits: a running instance keeps
//     running, and if it re-queues itself it may be pending again on return.
//   - cancel_work_sync / cancel_delayed_work_sync (rules 29, 32): as cancel, and on return the
//     item is neither pending nor running anywhere, even if it re-queues itself (the item is
//     disabled while waiting, so such attempts fail) or was moved to another queue. Returns
//     whether it was pending. Queueing after it returns works normally.
//   - disable_work[_sync] (rule 33): increments the disable count and cancels; while the count
//     is non-zero every queueing call fails (rule 16). enable_work (rule 34) decrements it and
//     returns true iff it reached zero; it queues nothing. Counts nest up to 65535; overflow and
//     underflow are reported and ignored.
//   - mod_delayed_work (rule 20): from any state, re-queues the item on `queue` after the new
//     delay (0 = now) and returns whether it was pending. A disabled item is cancelled and not
//     re-queued. Moving a deadline later costs no timer operation (the timer re-arms lazily).
//
// Ownership: the untyped forms release the queue's reference of a cancelled instance (which
// may destroy a uniquely owned object). The typed forms, `cancel_work<&T::m, Pointer>(obj)`,
// hand it back instead (the Rust proposal `cancel() -> Option<Pointer>`): nothing leaks and
// nothing is released twice.
//
// Thread safety: all functions may be called concurrently on the same item from any thread.
// The _sync forms block; calling one from the item's own work function is misuse
// (errc::cancel_sync_self, diagnostics.hpp): the pending instance is still cancelled, but the
// call does not wait for itself.
#pragma once

#include <wq/config.hpp>

#include <optional>

#include <wq/delayed_work.hpp>
#include <wq/detail/grab.hpp>
#include <wq/work.hpp>
#include <wq/work_pointer.hpp>
#include <wq/workqueue.hpp>

namespace wq {

/// Cancels a pending instance of `item` (rule 28); releases the queue's reference.
/// Returns: whether it was pending.
bool cancel_work(work& item) noexcept;

/// Cancels a pending instance of `item` and waits until it is not running anywhere (rule 29).
/// Returns: whether it was pending.
bool cancel_work_sync(work& item) noexcept;

/// Cancels a pending (armed or queued) delayed item (rule 31). Returns: whether it was pending.
inline bool cancel_delayed_work(delayed_work& item) noexcept { return cancel_work(item); }

/// Cancels a pending delayed item and waits until it is not running (rule 32).
inline bool cancel_delayed_work_sync(delayed_work& item) noexcept {
  return cancel_work_sync(item);
}

/// Increments the disable count and cancels a pending instance (rule 33). Returns: whether it
/// was pending.
bool disable_work(work& item) noexcept;
/// As disable_work, then waits until the item is not running (rule 33).
bool disable_work_sync(work& item) noexcept;
/// Decrements the disable count (rule 34). Returns: whether it reached zero.
bool enable_work(work& item) noexcept;

inline bool disable_delayed_work(delayed_work& item) noexcept { return disable_work(item); }
inline bool disable_delayed_work_sync(delayed_work& item) noexcept {
  return disable_work_sync(item);
}
inline bool enable_delayed_work(delayed_work& item) noexcept { return enable_work(item); }

/// Enables `item` and, if its disable count reached zero, queues it on `queue` (rule 22).
/// Preconditions: `item` owns no reference (C-style or raw-pointer item).
/// Returns: true iff the count reached zero and the item was queued (or was already pending).
bool enable_and_queue_work(workqueue& queue, work& item) noexcept;

/// Re-queues `item` on `queue` after `delay` from whatever state it is in (rule 20).
/// Preconditions: `item` owns no reference (C-style or raw-pointer item); for owning pointers
/// use the typed mod_delayed_work<&T::m>(queue, pointer, delay).
/// Returns: whether the item was pending before the call.
template <class Delay>
  requires wq::delay<Delay>
bool mod_delayed_work(workqueue& queue, delayed_work& item, Delay delay) noexcept;

/// The typed cancel: cancels the pending instance of member `Member` of `obj` and returns the
/// reference the queue held (empty if it was not pending).
/// Preconditions: the item was queued with pointer type `Pointer` (asserted).
template <auto Member, class Pointer>
std::optional<Pointer> cancel_work(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The typed cancel_sync: as the typed cancel_work, then waits until the item is not running.
template <auto Member, class Pointer>
std::optional<Pointer> cancel_work_sync(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The result of the typed mod_delayed_work.
template <class Pointer>
struct [[nodiscard]] mod_result {
  /// Whether the item was pending before the call (the kernel's return value).
  bool was_pending;
  /// queued, or why the item is not pending now (disabled, rejected).
  queue_status status;
  /// The caller's pointer, handed back unless the queue took it (it takes it only when the
  /// item was idle and is now queued).
  Pointer pointer;
};

/// The typed mod_delayed_work: re-queues member `Member` of `*pointer` on `queue` after
/// `delay` (rule 20). If the item was pending, the queue keeps the reference it already holds
/// and `pointer` is handed back; if idle, the queue takes `pointer`.
template <auto Member, class Pointer, class Delay>
  requires wq::delay<Delay>
mod_result<Pointer> mod_delayed_work(workqueue& queue, Pointer pointer, Delay delay) noexcept;

}  // namespace wq

#include <wq/impl/cancel.hpp>
