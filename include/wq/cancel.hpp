// SPDX-License-Identifier: BSL-1.0
// wq/cancel.hpp: stopping work items with the kernel's guarantees: cancel_work[_sync] (for
// delayed items too), disable_work[_sync] / enable_work / enable_and_queue_work, and
// mod_delayed_work, which steals a pending instance the way a cancel does and re-queues it. The
// kernel's `_delayed_` spellings of the first ones are in wq/kernel.hpp.
//
// The contracts are on the functions below. Ownership: the untyped forms release the queue's
// reference of a cancelled instance (which may destroy a uniquely owned object); the typed
// forms (`cancel_work<&T::m>(obj)`, ...) hand it back instead (the Rust `cancel() ->
// Option<Pointer>`): nothing leaks and nothing is released twice. They deduce the pointer type
// from the `run` that `T` declares for the member, `static void run(Pointer self,
// wq::id<&T::m>) noexcept`; `cancel_work<&T::m, Pointer>(obj)` names it. wq/async.hpp has
// async_cancel_sync, which never blocks.
#pragma once

#include <wq/config.hpp>

#include <optional>

#include <wq/delayed_work.hpp>
#include <wq/detail/grab.hpp>
#include <wq/detail/run_pointer.hpp>
#include <wq/work.hpp>
#include <wq/work_pointer.hpp>
#include <wq/workqueue.hpp>

namespace wq {

/// Cancels a pending instance of `item` (rule 28).
///
/// Effects: if the item is pending (armed, queued, or being queued by its timer), removes it so
/// that this instance never runs, and releases the queue's reference. Never waits: a running
/// instance keeps running, and if it re-queues itself it may be pending again on return.
/// Returns: whether it was pending. Throws: nothing.
/// Thread safety: any thread, concurrently with any call on the same item.
/// Complexity: O(1) (an item being linked by another thread: until that finishes).
bool cancel_work(work& item) noexcept;

/// Cancels a pending instance of `item` and waits until it is not running anywhere (rule 29).
///
/// Effects: as cancel_work; then waits until no instance runs, on any queue, even if it re-queues
/// itself (it is disabled while this waits, so such attempts fail) or was moved to another queue.
/// Postcondition: the item is neither pending nor running. Queueing after return works normally.
/// Returns: whether it was pending. Throws: nothing.
/// Thread safety: any thread; blocks. From the item's own work function it is misuse
/// (errc::cancel_sync_self, diagnostics.hpp): the pending instance is still cancelled, but the
/// call does not wait for itself. A wait that could never end (running items that sync-cancel
/// each other, errc::wait_cycle) is refused and reported the same way, within bounded time.
/// Complexity: besides the wait, O(threads that ever ran an item) -- not O(queues): each
/// thread's record names the queue it runs an item for. While an item runs another item nested
/// inside its function (it runs another queue's io_context), the outer run is not in the
/// records, and every call looks at every live queue instead: O(live queues).
bool cancel_work_sync(work& item) noexcept;

/// Disables `item` and cancels a pending instance (rule 33).
///
/// Effects: increments the disable count (counts nest up to 65535; an overflow is reported and
/// ignored), then as cancel_work. While the count is non-zero every queueing call fails
/// (rule 16). Returns: whether it was pending. Thread safety: as cancel_work.
bool disable_work(work& item) noexcept;
/// As disable_work, then waits as cancel_work_sync until the item is not running (rule 33).
bool disable_work_sync(work& item) noexcept;
/// Decrements the disable count (rule 34); queues nothing. An underflow is reported and
/// ignored. Returns: whether the count reached zero. Thread safety: any thread.
bool enable_work(work& item) noexcept;

/// Enables `item` and, if its disable count reached zero, queues it on `queue` (rule 22).
/// Preconditions: `item` owns no reference (C-style or raw-pointer item). An item bound with an
/// owning pointer is enabled but not queued (reported as errc::untyped_on_owning_item).
/// Returns: true iff the count reached zero and the item was queued (or was already pending).
bool enable_and_queue_work(workqueue& queue, work& item) noexcept;

/// Does not compile: a `shared_work` / `shared_delayed_work` holds a std::shared_ptr that only
/// the typed API hands over; use `enable_work(item)`, then `queue.enqueue<&T::m>(pointer)`.
template <class Item>
requires detail::shared_item<Item>
bool enable_and_queue_work(workqueue& queue, Item& item) noexcept;

/// Re-queues `item` on `queue` after `delay` (0 = now) from whatever state it is in (rule 20).
/// Effects: a pending instance is stolen the way a cancel does and re-armed (a disabled item is
/// cancelled and not re-queued, rule 20d). Moving a deadline later costs no timer operation
/// (the timer re-arms lazily).
/// Preconditions: `item` owns no reference (C-style or raw-pointer item); for owning pointers
/// use the typed mod_delayed_work<&T::m>(queue, pointer, delay). An item bound with an owning
/// pointer is refused (reported as errc::untyped_on_owning_item, returns false).
/// Returns: whether the item was pending before the call.
template <class Delay>
requires wq::delay<Delay>
bool mod_delayed_work(workqueue& queue, delayed_work& item, Delay delay) noexcept;

/// Does not compile: a `shared_delayed_work` holds a std::shared_ptr that only the typed form
/// `mod_delayed_work<&T::m>(queue, pointer, delay)` hands over.
template <class Item, class Delay>
requires detail::shared_item<Item> && wq::delay<Delay>
bool mod_delayed_work(workqueue& queue, Item& item, Delay delay) noexcept;

// ---- typed forms: the queue's reference handed back ------------------------------------------
//
// Each comes in two forms. `f<&T::m>(obj)` deduces `T` from `obj` and the pointer type from the
// `run` that `T` declares for the member (`static void run(Pointer self, wq::id<&T::m>)
// noexcept`, which must be declared after `m`); `f<&T::m, Pointer>(obj)` names the pointer
// type, and `obj` is then a `work_pointer_traits<Pointer>::element_type`. Both compile only if
// that `run` exists, takes exactly `Pointer` and is noexcept (as for `enqueue`), and both have
// the same contract, written once on the explicit form.

/// The typed cancel (rule 28): cancels the pending instance of member `Member` of `obj` and
/// hands back the reference the queue held.
///
/// Preconditions: a pending instance was queued with pointer type `Pointer` (a typed call with
/// another pointer type is asserted; the reference is then released, not handed back).
/// Effects: as `cancel_work(obj.*Member)`: a pending instance (queued, armed, or being queued
/// by its timer) is removed and will never run; a running instance keeps running.
/// Returns: the queue's reference if the item was pending (for `T*`, the object pointer), or an
/// empty optional if it was not.
/// Thread safety: may be called concurrently with any call on the same item.
template <auto Member, class Pointer>
std::optional<Pointer> cancel_work(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The typed cancel with the pointer type deduced from `T`'s `run`:
/// `auto p = wq::cancel_work<&session::flush>(*s);`
/// Effects and Returns: as `cancel_work<Member, Pointer>(obj)` with `Pointer` the type `T`'s
/// `run` for `wq::id<Member>` takes.
template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> cancel_work(T& obj) noexcept;

/// The typed cancel_sync (rule 29): as the typed cancel_work, then waits until the item is not
/// running anywhere (disabled while it waits, so a self-requeue fails).
///
/// Returns: the queue's reference if the item was pending, or an empty optional.
/// Thread safety: blocks; from the item's own function it is misuse (errc::cancel_sync_self):
/// the pending instance is still cancelled, the caller not waited for.
template <auto Member, class Pointer>
std::optional<Pointer> cancel_work_sync(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The typed cancel_sync with the pointer type deduced from `T`'s `run`:
/// `wq::cancel_work_sync<&session::flush>(*s)`. Effects and Returns: as the explicit form.
template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> cancel_work_sync(T& obj) noexcept;

/// The typed disable (rule 33): increments the disable count of member `Member` of `obj` and
/// cancels a pending instance, handing back the reference the queue held.
///
/// Preconditions: as the typed cancel_work.
/// Effects: as `disable_work(obj.*Member)`: while the count is non-zero every queueing call on
/// the item fails (rule 16); `enable_work(obj.*Member)` decrements it (rule 34). A running
/// instance keeps running.
/// Returns: the queue's reference if the item was pending, or an empty optional.
/// Thread safety: may be called concurrently with any call on the same item.
template <auto Member, class Pointer>
std::optional<Pointer> disable_work(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The typed disable with the pointer type deduced from `T`'s `run`:
/// `wq::disable_work<&session::flush>(*s)`. Effects and Returns: as the explicit form.
template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> disable_work(T& obj) noexcept;

/// The typed disable_sync (rule 33): as the typed disable_work, then waits until the item is
/// not running anywhere.
///
/// Returns: the queue's reference if the item was pending, or an empty optional.
/// Thread safety: blocks; from the item's own function it is misuse (errc::cancel_sync_self).
template <auto Member, class Pointer>
std::optional<Pointer> disable_work_sync(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept;

/// The typed disable_sync with the pointer type deduced from `T`'s `run`. Effects and Returns:
/// as the explicit form.
template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> disable_work_sync(T& obj) noexcept;

/// The result of the typed mod_delayed_work.
template <class Pointer>
struct [[nodiscard]] mod_result {
  /// Whether the item was pending before the call (the kernel's return value).
  bool was_pending;
  /// queued, or why the item is not pending now (disabled, rejected, null_pointer).
  queue_status status;
  /// The caller's pointer, handed back unless the queue took it (it takes it only when the
  /// item was idle and is now queued).
  Pointer pointer;
};

/// The typed mod_delayed_work: re-queues member `Member` of `*pointer` on `queue` after
/// `delay` (rule 20). If the item was pending, the queue keeps the reference it already holds
/// and `pointer` is handed back; if idle, the queue takes `pointer`.
///
/// Returns: see mod_result. A null or moved-from `pointer` changes nothing: `was_pending` false,
/// `status` queue_status::null_pointer, `pointer` handed back, and errc::null_pointer reported
/// (in every build type). An item built with a C-style function (`wq::fn_ops<&f>`) is refused
/// the same way, pending or not: `status` queue_status::rejected, errc::typed_on_c_style_item
/// (the call would replace `f` with `T::run`).
template <auto Member, class Pointer, class Delay>
requires wq::delay<Delay> mod_result<Pointer> mod_delayed_work(workqueue& queue, Pointer pointer,
                                                               Delay delay)
noexcept;

}  // namespace wq

#define WQ_DETAIL_CANCEL_HPP_DECLARED  // impl/cancel.hpp checks it
#include <wq/impl/cancel.hpp>
