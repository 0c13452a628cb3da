// SPDX-License-Identifier: BSL-1.0
// wq/delayed_work.hpp: `delayed_work`, a work item queued after a delay (the kernel's
// delayed_work, Rust's `DelayedWork<T, ID>`). It is a `work` plus one Asio steady timer and the
// deadline it is armed for; the target queue is recorded in the work's state word (rule 54).
//
// By default the timer lives on wq's internal timer thread (an io_context that runs nothing but
// wq's bookkeeping), so an expiry never waits behind user handlers, and the item needs no
// executor of its own: 128 bytes on x86-64 with Boost 1.81. An item may instead take the
// application's own io_context as its timer context (`delayed_work{io}`): its expiries then run
// on that context's threads (and only while it runs), which suits programs that drive time
// themselves or want no extra thread. Such an item must be destroyed before its io_context.
// While armed its wait is outstanding work on that context; once cancelled, disabled or fired
// early (flush_delayed_work) it is not: the wait is cancelled, as a steady_timer's would be,
// and the context's run() returns without waiting for the old deadline.
//
// Thread safety: as for `work`: every operation may be called concurrently on the same item.
//
// Lifetime: pinned. It must not be destroyed while pending or running (misuse, reported and
// repaired: see work.hpp). Destroying an idle item whose timer still has an Asio wait
// outstanding (usual right after a cancellation: on wq's timer thread, cancelling leaves the
// wait for a later re-arm to reuse) does not wait for wq's timer thread: the wait is cancelled and
// orphaned, and its completion, which finds the item's address on wq's list of orphaned waits,
// never touches the object (only if that completion is running at that very moment does the
// destructor wait for it to return). An item on the application's io_context never blocks there
// either (that context may not be running, or may be run by the destroying thread): its outstanding
// completion finds the item gone through a small anchor allocated once with the item.
//
// Races, in the kernel's words:
//   - queue_delayed_work on an item that is pending (armed or already queued) does nothing and
//     returns false; the existing deadline is neither advanced nor postponed (rule 18).
//   - A delay of zero queues the item immediately without touching the timer (rule 19).
//   - The item is queued on the recorded queue no earlier than its deadline; it may be later
//     (timer latency), and then waits like any queued item (rule 53). On an ordered queue it
//     takes its place in the order when the timer fires, not when it was armed (rule 39).
#pragma once

#include <wq/config.hpp>

#include <chrono>

#include <boost/asio/io_context.hpp>

#include <wq/detail/delayed_work.hpp>
#include <wq/work.hpp>

namespace wq {

/// A work item that can be queued after a delay.
///
/// Queue it with `workqueue::enqueue_delayed<&T::member>(pointer, delay)` or, C-style, with
/// `queue_delayed_work(queue, item, delay)`; `enqueue<&T::member>(pointer)` on a delayed member
/// is the same as a delay of zero. A delay is a `wq::jiffies` or any `std::chrono::duration`.
///
/// Thread safety: distinct objects: safe. Shared objects: safe through the queue functions.
class delayed_work : public work {
 public:
  /// Constructs an idle item whose behaviour is bound when it is first queued (typed API).
  delayed_work();

  /// Constructs an idle item that runs `ops` (use `wq::fn_ops<&function>`).
  explicit delayed_work(const work_ops& ops);

  /// Constructs an idle item whose timer runs on `timer_context` (the application's
  /// io_context) instead of wq's timer thread; see the file comment.
  /// Preconditions: `timer_context` outlives the item.
  /// Throws: std::bad_alloc (the anchor).
  explicit delayed_work(boost::asio::io_context& timer_context);
  delayed_work(const work_ops& ops, boost::asio::io_context& timer_context);

  delayed_work(const delayed_work&) = delete;
  delayed_work& operator=(const delayed_work&) = delete;

  /// Preconditions: not pending, not running (see work.hpp for what misuse gets).
  /// Effects: if an Asio wait on wq's timer thread is still outstanding, orphans it (its
  /// completion will not touch this object) and cancels it, waiting only for a completion that
  /// is running at that moment; on an application io_context, detaches it through the anchor.
  /// Must not run on wq's timer thread (no user code runs there). Allocation: one node in the
  /// list of orphaned waits while the wait is outstanding (out of memory: waits for the
  /// completion instead).
  ~delayed_work();

  /// Returns the deadline the item is, or was last, armed for; `time_point::max()` for a delay
  /// of `max_delay` (no deadline: never fired by time, jiffies.hpp). Advisory. A real deadline
  /// is the arming time plus the delay, rounded up to a multiple of 1024 ns (rule 53). While a
  /// wq::test_clock is installed, deadlines are exact on its virtual time (test_clock.hpp).
  [[nodiscard]] std::chrono::steady_clock::time_point deadline() const noexcept {
    const auto at = deadline_.load(std::memory_order_relaxed);
    const auto n = at.time_since_epoch().count();
    // Negative: the deadline with its bits inverted, left by its expiry (the engine's
    // commit_expiry; no deadline is negative, both clocks count from a positive origin).
    return n < 0 ? std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(~n))
                 : at;
  }

 private:
  friend struct detail::work_access;

  // Touched only by the thread that owns the item's PENDING bit while it is in transit, under
  // the mutex of the queue named in the state word while ARMED, or by the arming thread that
  // set wait_starting_ (the timer discipline, src/engine/timers.hpp).
  detail::item_timer timer_;
  // Written under the target queue's mutex while ARMED, except that mod_delayed_work moves it
  // later with a CAS without the mutex, and an expiry commits with a CAS that inverts its bits
  // (src/engine/timers.hpp, commit_expiry); deadline() reads it relaxed (advisory).
  std::atomic<std::chrono::steady_clock::time_point> deadline_{};
  // Non-null for an item on an application io_context. Immutable.
  detail::timer_anchor* anchor_ = nullptr;
  // An arming thread is starting the Asio wait outside the queue's mutex: set under it, cleared
  // (release) once the wait is started. Anyone else waits for it to clear before touching the
  // timer.
  std::atomic<bool> wait_starting_{false};
};

/// Returns the delayed item whose work base is `item` (kernel `to_delayed_work()`). A C-style
/// delayed work function receives a `wq::work*`; it recovers its object with
/// `wq::container_of<&T::d>(wq::to_delayed_work(item))`.
/// Requires: `item` is the work base of a delayed_work (as every item a function given to a
/// delayed_work's constructor receives is). Complexity: O(1), no check.
[[nodiscard]] inline delayed_work* to_delayed_work(work* item) noexcept {
  // Safety: a static_cast down a public non-virtual base, valid by the precondition.
  return static_cast<delayed_work*>(item);
}

}  // namespace wq
