// SPDX-License-Identifier: BSL-1.0
// wq/rcu_work.hpp: `rcu_work`, a work item queued once an RCU grace period has elapsed (the
// kernel's struct rcu_work, queue_rcu_work and flush_rcu_work; rules 21 and 25), on the
// userspace RCU library (liburcu, Debian's liburcu-dev).
//
// Optional and header-only: libwq does not link liburcu. A program that includes this header
// links the liburcu flavour its readers use (e.g. `-lurcu-memb -lurcu-common`) and names that
// flavour when it constructs an item (`urcu_memb_flavor`, or `rcu_flavor` after including the
// flavour's header). The grace period is that flavour's: readers of another flavour are not
// waited for, which is why the flavour is an explicit argument rather than a build option.
//
// How it works: queue_rcu_work arms the embedded delayed item for `max_delay` on the queue (so
// it is PENDING from that moment, counts as outstanding work on the queue's executor and is
// cancelled with a notice if the queue is destroyed, D5) and hands its rcu_head to the flavour's
// call_rcu; the callback, after the grace period, fires the armed item onto its queue as its
// timer would (or onto the queue's deferred list while it drains, rule 49). An item queued again
// while an earlier callback is still outstanding (possible only after its queue was destroyed)
// waits for a further, full grace period: the head is handed to call_rcu again from that
// callback, never twice at once. An item armed for max_delay has no deadline, so neither a
// timer nor a wq::test_clock can end its grace period early.
//
// Latency: liburcu's call_rcu thread batches callbacks and sleeps about 10 ms between batches,
// so an item runs, and flush_rcu_work returns, some 10 ms after queueing at the soonest, however
// short the grace period (synchronize_rcu itself takes microseconds when no reader is inside).
// Queue many items, then flush them, rather than one flush per item: 10^3 items take one batch.
//
// ThreadSanitizer: liburcu is not instrumented, so TSan cannot see the order its grace periods
// give. wq states its own hand-over to TSan (rcu_work's tests run clean under it); a program's
// own RCU-protected data, read by readers and freed after a grace period, may still be reported
// as racing, and liburcu's internals (e.g. rcu_barrier) want `called_from_lib:liburcu`
// suppressions.
//
// As in the kernel, an rcu_work supports neither cancelling nor disabling (rule 21): the embedded
// item is reachable read-only (`item()`), for work_busy-style queries.
//
// Thread safety: every function may be called concurrently on the same item. queue_rcu_work's
// caller must be a thread registered with the flavour (liburcu's rule for call_rcu); for QSBR,
// online. A work function that reads RCU-protected data runs on a queue's worker, which must be
// registered too (register it once per thread, e.g. from a thread_local guard in the function).
//
// Lifetime: pinned. Destroying an item waits for its outstanding grace-period callback (so the
// callback never touches freed memory), then follows delayed_work's rules (not pending, not
// running; misuse is reported and repaired).
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include <urcu/call-rcu.h>
#include <urcu/flavor.h>

#include <wq/delayed_work.hpp>
#include <wq/work.hpp>
#include <wq/workqueue.hpp>

namespace wq {

/// A work item queued after an RCU grace period of a liburcu flavour (kernel `struct
/// rcu_work`). Construct it with a C-style work function (kernel `INIT_RCU_WORK(&rw, fn)`):
/// `wq::rcu_work rw{wq::fn_ops<&fn>, urcu_memb_flavor};`; the function receives the embedded
/// `work*` and recovers its object with `wq::to_rcu_work`.
///
/// Thread safety: distinct objects: safe. Shared objects: safe through the functions below.
class rcu_work {
 public:
  /// Constructs an idle item that runs `ops` once queued and a grace period of `flavor` has
  /// elapsed. Preconditions: `flavor` (a liburcu flavour object such as `urcu_memb_flavor`)
  /// outlives the item.
  rcu_work(const work_ops& ops, const rcu_flavor_struct& flavor) : item_(ops), flavor_(&flavor) {}

  rcu_work(const rcu_work&) = delete;
  rcu_work& operator=(const rcu_work&) = delete;

  /// Effects: waits until no grace-period callback of this item is outstanding, then destroys
  /// the embedded delayed item (which must not be pending or running: see delayed_work.hpp).
  /// From inside a read-side critical section of its flavour, or from its own callback, that
  /// wait could not finish: reported as errc::wait_in_rcu_read_section (a misuse), then waited
  /// for anyway, since returning would let the callback write into freed memory.
  ~rcu_work();

  /// Returns: whether the item is pending (waiting for its grace period, or queued). Advisory
  /// (kernel `work_pending(&rw->work)`, rule 5).
  [[nodiscard]] bool is_pending() const noexcept { return item_.is_pending(); }

  /// Returns: the embedded item, read-only (kernel `rw->work`): for work_busy and is_running.
  [[nodiscard]] const delayed_work& item() const noexcept { return item_; }

 private:
  friend bool queue_rcu_work(workqueue& queue, rcu_work& rw);
  friend bool flush_rcu_work(rcu_work& rw);
  friend rcu_work* to_rcu_work(work* item) noexcept;

  /// The flavour's callback: fires the armed item, or starts a further grace period for an
  /// item armed again while this callback was outstanding. Runs on liburcu's call_rcu thread.
  static void on_grace_period(rcu_head* head) noexcept;

  /// Blocks until no callback is outstanding, reporting `what` if the caller is inside a
  /// read-side section of the flavour, and errc::rcu_grace_period_stalled (once per call) if
  /// the grace period lasts longer than the wait limit. Returns whether it had to wait.
  bool wait_for_callback(const char* what) noexcept;

  delayed_work item_;
  rcu_head head_{};
  const rcu_flavor_struct* flavor_;
  // Guards the two flags below and hands the head to call_rcu. Lock order: mu_ before any
  // queue's mutex (queueing and firing take that one inside it); never the reverse.
  std::mutex mu_;
  std::condition_variable callback_done_;
  bool callback_outstanding_ = false;  // head_ is with call_rcu
  bool grace_again_ = false;           // re-armed meanwhile: the callback starts another period
  // Stored (release) before each hand-over to call_rcu, loaded (acquire) first thing in the
  // callback: see on_grace_period.
  std::atomic<bool> handed_{false};
};

/// Kernel `queue_rcu_work(wq, rwork)`: arms `rw` on `queue` and starts a grace period of its
/// flavour; the item is queued on `queue` once the period has elapsed (rule 21).
/// Returns: true if the item was idle and is now pending; false if it was already pending (the
/// grace period already started is kept), or `queue` refused it (draining from outside,
/// errc reported by the queue), in which case no grace period starts.
/// Requires: the calling thread is registered with the item's flavour (and online for QSBR).
/// Thread safety: any registered thread; concurrent calls on one item queue it once.
/// Complexity: O(1); allocates nothing (the callback uses the item's own rcu_head).
bool queue_rcu_work(workqueue& queue, rcu_work& rw);

/// Kernel `flush_rcu_work(rwork)`: waits for a grace period the item is waiting for, then for
/// the item to finish (rule 25).
/// Returns: true if the item was pending when called (the kernel's answer) or flush_work had
/// an instance to wait for; false if it was idle, or if the wait was refused.
/// Refused (errc::wait_in_rcu_read_section, returns false at once): from inside a read-side
/// critical section of the item's flavour, or from the item's own grace-period callback; the
/// refusals of flush_work (§5.1 to §5.4) apply to the second half.
/// Thread safety: any thread. Blocks for as long as a reader stays in its section, as
/// synchronize_rcu does; past the wait limit this is reported once
/// (errc::rcu_grace_period_stalled). Takes about 10 ms at the least: liburcu's callback
/// batching (see the file comment).
bool flush_rcu_work(rcu_work& rw);

/// Kernel `to_rcu_work(work)`: the rcu_work whose embedded item is `item`.
/// Requires: `item` is the item a function given to an rcu_work receives. Complexity: O(1).
[[nodiscard]] rcu_work* to_rcu_work(work* item) noexcept;

}  // namespace wq

#define WQ_DETAIL_RCU_WORK_HPP_DECLARED  // impl/rcu_work.hpp checks it
#include <wq/impl/rcu_work.hpp>
