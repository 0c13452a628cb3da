// SPDX-License-Identifier: BSL-1.0
// flush_work and flush_delayed_work: wait for one instance of an item.
#include <wq/flush.hpp>

#include <thread>

#include "queue_core.hpp"

namespace wq {
namespace detail {
namespace {

// Waits, with mu held through `lk`, for the instance described by `f` (registered here).
void wait_for(queue_core* core, std::unique_lock<std::mutex>& lk, flush_waiter& f) {
  core->flushers.push_back(&f);
  core->idle_cv.wait(lk, [&] { return f.done; });
  std::erase(core->flushers, &f);
}

}  // namespace
}  // namespace detail

bool flush_work(work& item) noexcept {
  using namespace detail;
  if (this_worker().current == &item) {
    report(errc::flush_self, "flush_work from the item's own work function would wait for "
                             "itself: not waited for, returns false");
    return false;
  }
  auto& st = work_access::state(item);
  for (unsigned spins = 0;; ++spins) {
    const state_t s = st.load(std::memory_order_acquire);
    if ((s & st_pending) != 0 && (s & (st_queued | st_armed | st_intake)) == 0) {
      backoff(spins);  // in transit (being queued, or started by a worker): let it settle
      continue;
    }
    queue_core* core = lookup_core(queue_id_of(s));
    if (core == nullptr) return false;  // never queued
    std::unique_lock lk(core->mu);
    const state_t now = st.load(std::memory_order_acquire);
    if (now != s) continue;  // changed while we locked: look again
    if (queue_id_of(s) != core->id()) return false;  // its queue is gone: nothing left there
    if ((s & st_intake) != 0) {
      // On the intake: once taken it is QUEUED. Still INTAKE: its producer is mid-push.
      const bool took = take_intake_locked(core);
      start_workers_locked(core);
      if (!took) {
        lk.unlock();
        backoff(spins);
      }
      continue;
    }
    if ((s & st_armed) != 0) return false;           // rule 23: an armed timer is not waited for
    if ((s & st_queued) != 0 && this_worker().core == core && core->max_workers == 1) {
      // §5.3: on a one-worker queue (ordered, max_active 1) the queued instance can only run
      // after the calling item returns: waiting here would deadlock.
      report(errc::wait_needs_this_worker,
             "flush_work of an item queued behind the caller on one-worker queue '%s' would "
             "deadlock: refused, returns false", core->name.c_str());
      return false;
    }
    if ((s & st_queued) != 0 && core->executor != nullptr &&
        core->executor->held_here != nullptr && core->executor->held_here(core->executor->storage)) {
      // §5.3: the queued instance needs the strand this thread is running a handler of.
      report(errc::wait_needs_this_worker,
             "flush_work of an item queued on '%s' from a handler of the strand it runs on "
             "would deadlock: refused, returns false", core->name.c_str());
      return false;
    }
    flush_waiter f;
    f.item = &item;
    if ((s & st_queued) == 0) {
      // Not pending: wait for a running instance, if any.
      for (auto& slot : core->slots) {
        if (slot.active && slot.current == &item) {
          f.started = true;
          f.slot = &slot;
          break;
        }
      }
      if (!f.started) return false;
    }
    try {
      wait_for(core, lk, f);
    } catch (...) {
      return false;  // out of memory registering the waiter: report "did not wait"
    }
    return true;
  }
}

bool flush_delayed_work(delayed_work& item) noexcept {
  using namespace detail;
  auto& st = work_access::state(item);
  const state_t s = st.load(std::memory_order_acquire);
  if ((s & st_armed) != 0) {
    if (queue_core* core = lookup_core(queue_id_of(s))) {
      std::unique_lock lk(core->mu);
      const state_t now = st.load(std::memory_order_acquire);
      if ((now & st_armed) != 0 && queue_id_of(now) == core->id()) {
        // Fire now (rule 24): off the armed list, onto the worklist of the recorded queue. The
        // outstanding timer wait finds the item no longer ARMED and lets go of it.
        core->armed.erase(core->armed.iterator_to(item));
        st.fetch_and(~st_armed, std::memory_order_relaxed);
        post_worker(core, insert_locked(core, item));
        // Wait for exactly this instance, registered before the lock is dropped, so the
        // answer is "had to wait" however fast a worker runs it.
        flush_waiter f;
        f.item = &item;
        try {
          wait_for(core, lk, f);
        } catch (...) {
          return false;
        }
        return true;
      }
    }
  }
  return flush_work(item);
}

}  // namespace wq
