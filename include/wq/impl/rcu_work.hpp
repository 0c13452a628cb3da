// SPDX-License-Identifier: BSL-1.0
// wq/impl/rcu_work.hpp: inline bodies of wq/rcu_work.hpp (header-only, so that libwq does not
// depend on liburcu; the flavour is the caller's).
#pragma once

// Part of <wq/rcu_work.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_RCU_WORK_HPP_DECLARED
#error "<wq/impl/rcu_work.hpp> is part of <wq/rcu_work.hpp>: include <wq/rcu_work.hpp>"
#endif

#include <chrono>

#include <wq/container_of.hpp>
#include <wq/detail/diagnostics.hpp>
#include <wq/detail/rcu_work.hpp>
#include <wq/diagnostics.hpp>
#include <wq/flush.hpp>
#include <wq/jiffies.hpp>
#include <wq/queue_status.hpp>

namespace wq {

namespace detail {
/// The rcu_work whose callback the calling thread is running, if any (to refuse a wait for
/// that callback from inside it, which could never finish).
inline thread_local const void* rcu_callback_running = nullptr;
}  // namespace detail

inline rcu_work::~rcu_work() { (void)wait_for_callback("destroying an rcu_work"); }

inline bool rcu_work::wait_for_callback(const char* what) noexcept {
  std::unique_lock lk(mu_);
  if (!callback_outstanding_) return false;
  if (flavor_->read_ongoing() != 0 || detail::rcu_callback_running == this) {
    detail::report(errc::wait_in_rcu_read_section,
                   "%s: waiting for its RCU grace period from inside a read-side critical "
                   "section or its own RCU callback cannot finish",
                   what);
  }
  bool reported = false;
  while (callback_outstanding_) {
    // Safety: wait_limit() is at least 1 ms; a wake-up without progress only re-checks.
    if (!callback_done_.wait_for(lk, wait_limit(), [this] { return !callback_outstanding_; }) &&
        !reported) {
      reported = true;
      detail::report(errc::rcu_grace_period_stalled,
                     "%s: an RCU grace period has lasted longer than the wait limit (a reader "
                     "is still inside its read-side section); still waiting",
                     what);
    }
  }
  return true;
}

inline void rcu_work::on_grace_period(rcu_head* head) noexcept {
  rcu_work* rw = container_of<&rcu_work::head_>(head);
  // Safety (acquire): pairs with the release store made just before the head was handed to
  // call_rcu. liburcu's queue already orders that hand-over before this call, with fences
  // ThreadSanitizer cannot see; the pair makes the same order visible to it.
  (void)rw->handed_.load(std::memory_order_acquire);
  const void* outer = detail::rcu_callback_running;
  detail::rcu_callback_running = rw;
  {
    std::lock_guard lk(rw->mu_);
    if (rw->grace_again_) {
      // The item was armed again (after its queue was destroyed) while this period ran: the
      // new instance gets a full grace period of its own, starting now. liburcu has dequeued
      // the head before calling us, so handing it back is allowed.
      rw->grace_again_ = false;
      rw->handed_.store(true, std::memory_order_release);
      rw->flavor_->update_call_rcu(&rw->head_, &rcu_work::on_grace_period);
    } else {
      (void)detail::fire_armed_now(rw->item_);
      rw->callback_outstanding_ = false;
      // Under mu_: a destructor woken by this cannot free the item before the unlock.
      rw->callback_done_.notify_all();
    }
  }
  detail::rcu_callback_running = outer;
}

inline bool queue_rcu_work(workqueue& queue, rcu_work& rw) {
  std::lock_guard lk(rw.mu_);
  if (queue.queue_delayed(rw.item_, max_delay) != queue_status::queued) return false;
  if (rw.callback_outstanding_) {
    rw.grace_again_ = true;  // the outstanding callback starts this instance's grace period
  } else {
    rw.callback_outstanding_ = true;
    rw.handed_.store(true, std::memory_order_release);
    rw.flavor_->update_call_rcu(&rw.head_, &rcu_work::on_grace_period);
  }
  return true;
}

inline bool flush_rcu_work(rcu_work& rw) {
  if (rw.flavor_->read_ongoing() != 0 || detail::rcu_callback_running == &rw) {
    detail::report(errc::wait_in_rcu_read_section,
                   "flush_rcu_work from inside a read-side critical section or the item's own "
                   "RCU callback would wait for a grace period that cannot end: refused, "
                   "returns false");
    return false;
  }
  const bool was_pending = rw.item_.is_pending();
  (void)rw.wait_for_callback("flush_rcu_work");
  const bool flushed = flush_work(rw.item_);
  return was_pending || flushed;
}

inline rcu_work* to_rcu_work(work* item) noexcept {
  // Safety: by the precondition `item` is the work base of the delayed_work embedded as item_.
  return container_of<&rcu_work::item_>(to_delayed_work(item));
}

}  // namespace wq
