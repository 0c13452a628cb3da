// SPDX-License-Identifier: BSL-1.0
// wq/work.hpp: `work`, a work item embedded in the object it acts on (the kernel's work_struct,
// Rust's `Work<T, ID>`), plus `id<Member>`, the tag that names one work member of a class.
//
// A `work` is 32 bytes: a Boost.Intrusive list hook (the worklist link), one atomic state word
// (pending, queued, disable count, last queue) and a pointer to a table of noexcept trampolines
// that recover the outer object and hand the owning pointer back to its `run` function.
//
// Thread safety: `work` objects are operated on only through queue functions, which are safe to
// call concurrently from any thread on the same item. `is_pending()` is an advisory, racy read.
//
// Lifetime: a `work` is pinned (neither copyable nor movable). It must not be destroyed while it
// is pending or while its function runs on another thread; doing so is misuse that the
// destructor detects and repairs (diagnostics.hpp): a pending instance is cancelled
// (errc::destroyed_while_pending) and a running one is waited for (errc::destroyed_while_running,
// reported once it has waited 1 s: a function may legally hand its item to another thread as its
// last act, so a shorter overlap is waited for without a report), so no worker touches freed
// memory. The work function may destroy the object that contains the item: after calling it the
// library never touches the item again (rule 4).
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <cstdint>

#include <boost/intrusive/list_hook.hpp>

#include <wq/detail/work.hpp>
#include <wq/detail/work_state.hpp>

namespace wq {

class work;

/// Names one work member of a class in the signature of its run function.
///
/// A class with several work members declares one `run` per member:
/// \code
///   struct session {
///     wq::shared_work flush;
///     wq::shared_work close;
///     static void run(std::shared_ptr<session> self, wq::id<&session::flush>) noexcept;
///     static void run(std::shared_ptr<session> self, wq::id<&session::close>) noexcept;
///   };
/// \endcode
/// The member pointer is the identity: no numeric IDs, no macros (Rust's `const ID: u64`).
///
/// **Declare each `run` after the member it names.** C++ does not allow naming a member before
/// its declaration in a member function signature (the class is incomplete there, and only
/// function bodies see the whole class), so `wq::id<&session::flush>` above `flush` does not
/// compile. The compiler's own error at that declaration comes first and can be confusing
/// (g++ 12: "incomplete type 'session' used in nested name specifier"; clang 14: "no member
/// named 'flush' in 'session'; did you mean 'fflush'?"); wq's error that follows says "no `run`
/// for wq::id<&C::m>" and states this rule.
///
/// The typed API deduces the pointer type from these declarations: each `run` for `id<&C::m>`
/// fixes the `Pointer` that `enqueue<&C::m>` takes and that the typed cancel, disable and flush
/// (`wq::cancel_work<&C::m>(obj)`) hand back.
template <auto Member>
struct id {
  /// The member pointer this tag names.
  static constexpr auto member = Member;
};

/// The type-erased behaviour of a work item: what a worker calls.
///
/// `run` recovers the outer object, takes back the reference the queue held, then marks the
/// instance as started (clears PENDING, rule 2: after the reference is out of the item, so a
/// concurrent queueing call may store a new one) and calls the user's function.
/// `drop` gives up a pending instance without running it (used when a pending instance is
/// cancelled or its queue is destroyed): it reclaims the reference the queue holds, clears the
/// item's PENDING bit, then releases the reference (in that order, so that releasing the last
/// reference may destroy the item). Both must not throw. `name` is for diagnostics.
struct work_ops {
  void (*run)(work* item) noexcept;
  void (*drop)(work* item) noexcept;
  const char* name;
  /// Whether a pending instance holds an owning reference (unique/shared/intrusive pointer).
  /// Operations that may queue an idle item without a pointer (C-style mod_delayed_work,
  /// enable_and_queue_work) refuse items whose ops own a reference.
  bool owning = false;
  /// Whether `run` and `drop` take back a reference that only the typed API stores when it
  /// queues the item: the object of a std::unique_ptr or boost::intrusive_ptr, or the
  /// std::shared_ptr in a shared_work's slot. C-style queueing (queue_work,
  /// queue_delayed_work, workqueue::queue / queue_delayed) of such an item would leave nothing
  /// to take back, so it is refused (queue_status::rejected, errc::untyped_on_owning_item).
  /// Items that own only themselves (wq's boxed closures, which are owning) are queued once
  /// through the C-style path by wq itself and leave this false.
  bool typed_only = false;
  /// Whether these are a C-style work function's (`wq::fn_ops<&f>`): the item was bound to `f`
  /// when it was built. The typed API (enqueue, enqueue_delayed, the typed mod_delayed_work),
  /// which binds the class's `run()`, refuses such an item rather than replace `f`
  /// (queue_status::rejected, errc::typed_on_c_style_item).
  bool c_style = false;
};

/// The C-style work function: receives the embedded item, recovers its container with
/// `wq::container_of`, and must not throw.
using work_func = void (*)(work* item) noexcept;

/// The trampoline table for a C-style work function `F` (kernel `INIT_WORK(&w, F)`):
/// `wq::work w{wq::fn_ops<&my_function>};`
template <work_func F>
inline constexpr const work_ops& fn_ops = detail::fn_ops_holder<F>::value;

/// A work item embedded in the object it acts on.
///
/// Declare one member per kind of work; queue it with `workqueue::enqueue<&T::member>(pointer)`
/// (typed, with ownership) or `queue_work(queue, item)` (C-style, for items constructed with a
/// work function). Queueing an item that is already pending does nothing and returns false
/// (rule 1); the pending bit belongs to the item, not to a queue.
///
/// Work functions are `noexcept` by contract: an exception escaping one calls std::terminate, as
/// an exception escaping an `asio::thread_pool` handler does. This is the policy for every way
/// of queueing a function (typed `run`, C-style function, spawn closure, executor submission).
/// Why not catch it: the kernel has no exceptions to carry over; an escaping exception has left
/// the object the item is embedded in half-updated, and running its next item or destructor on
/// a broken invariant is worse than stopping; no per-queue handler could know whether that
/// object may go on. Catch inside the function instead (docs/bad-input.md).
///
/// Thread safety: distinct objects: safe. Shared objects: safe through the queue functions.
class work {
 public:
  /// Constructs an idle item whose behaviour is bound when it is first queued through the typed
  /// API (`enqueue<&T::member>(pointer)`).
  work() noexcept = default;

  /// Constructs an idle item that runs `ops` (use `wq::fn_ops<&function>`).
  explicit work(const work_ops& ops) noexcept : ops_(&ops) {}

  work(const work&) = delete;
  work& operator=(const work&) = delete;

  /// Preconditions: the item is not pending and its function is not running on another
  /// thread. Violations are reported and repaired (see the file comment).
  ~work() { detail::check_destroy(*this); }

  /// Returns whether the item is pending (queued, armed, or being queued). Advisory: the answer
  /// may be stale by the time it is used (kernel `work_pending()`, rule 5).
  [[nodiscard]] bool is_pending() const noexcept {
    // Safety: relaxed is enough for an advisory read; it orders nothing.
    return (state_.load(std::memory_order_relaxed) & detail::st_pending) != 0;
  }

  /// Returns whether the item's work function runs now, on any queue and any thread (kernel
  /// `work_busy() & WORK_BUSY_RUNNING`, rule 5). Advisory, like is_pending(). Thread safety: any
  /// thread. Complexity: O(threads that ever ran a work item).
  [[nodiscard]] bool is_running() const noexcept;

  /// Returns the item's disable count (rules 16, 33, 34). Advisory.
  [[nodiscard]] unsigned disable_count() const noexcept {
    return static_cast<unsigned>(detail::disable_count(state_.load(std::memory_order_relaxed)));
  }

 private:
  friend struct detail::work_access;

  // The worklist link. Guarded by the mutex of the queue named in state_ while QUEUED or ARMED;
  // owned by the thread holding PENDING while in transit.
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::normal_link>>
      hook_;
  // See detail/work_state.hpp for the layout and the state machine.
  std::atomic<detail::state_t> state_{0};
  // Written by the thread that wins PENDING, before the item is linked; read by workers after
  // they unlink it under the queue mutex, which publishes the write. Atomic so that a stale
  // reader (an advisory diagnostic) is not a data race.
  std::atomic<const work_ops*> ops_{nullptr};
};

}  // namespace wq

#define WQ_DETAIL_WORK_HPP_DECLARED  // impl/work.hpp checks it
#include <wq/impl/work.hpp>
