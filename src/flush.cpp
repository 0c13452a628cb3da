// SPDX-License-Identifier: BSL-1.0
// flush_work and flush_delayed_work: wait for one instance of an item.
#include <wq/flush.hpp>

#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>
#include <wq/impl/claim.hpp>

#include <thread>

#include "engine/backoff.hpp"
#include "engine/lifecycle.hpp"
#include "engine/queue_core.hpp"
#include "engine/queueing.hpp"
#include "engine/registry.hpp"
#include "engine/run_records.hpp"
#include "engine/timers.hpp"
#include "engine/waiters.hpp"
#include "engine/workers.hpp"
#include "trace.hpp"
#include "wait_graph.hpp"

namespace wq {
namespace detail {
namespace {

// Waits, with mu held through `lk`, for the instance described by `f` (registered here).
// Returns whether it finished (false: the wait was refused and reported, wait_graph.hpp).
// Registering `f` links it through its own `next`: nothing is allocated.
bool wait_for(queue_core* core, core_lock& lk, flush_waiter& f, const char* op) noexcept {
  add_flusher_locked(core, &f);
  const errc why = wait_until(core, lk, {wait_target::kind::item, core, f.item},
                              blocked_kind::other, op, [&] { return f.done; });
  remove_flusher_locked(core, &f);
  return why == errc{};
}

}  // namespace
}  // namespace detail

bool flush_work(work& item) noexcept {
  using namespace detail;
  if (this_worker().current == &item) {
    report(errc::flush_self,
           "flush_work from the item's own work function would wait for "
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
    const core_pin pin = lookup_core(queue_id_of(s));  // outlives lk, and any wait below
    queue_core* core = pin.get();
    if (core == nullptr) return false;  // never queued, or its queue is gone
    std::unique_lock lk(core->mu);
    const state_t now = st.load(std::memory_order_acquire);
    if (now != s) continue;                          // changed while we locked: look again
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
    if ((s & st_armed) != 0) return false;  // rule 23: an armed timer is not waited for
    if ((s & st_queued) != 0 && list_of(s) == list_kind::scheduled &&
        !settle_ahead_locked(core, item)) {
      lk.unlock();
      backoff(spins);  // its worker took it ahead and is starting it now
      continue;
    }
    if ((s & st_queued) != 0 && list_of(s) == list_kind::deferred && this_worker().core == core) {
      // Fired during a drain of the caller's own queue: it would run only once the drain,
      // which waits for the caller, ends. Flushing it from an item of that queue queues it now,
      // as chained work (rule 49 accepts that), so the wait can finish.
      requeue_deferred_locked(core, item);
      // Wait for exactly this instance, registered before the lock is dropped (it may run and
      // finish as soon as it is), as flush_delayed_work does.
      flush_waiter f;
      f.item = &item;
      return wait_for(core, lk, f, "flush_work");
    }
    if ((s & st_queued) != 0 && this_worker().core == core && one_worker_locked(core)) {
      // §5.3: on a one-worker queue (ordered, max_active 1) the queued instance can only run
      // after the calling item returns: waiting here would deadlock.
      report(errc::wait_needs_this_worker,
             "flush_work of an item queued behind the caller on one-worker queue '%s' would "
             "deadlock: refused, returns false",
             core->name.c_str());
      return false;
    }
    if ((s & st_queued) != 0 && strand_held_here(core)) {
      // §5.3: the queued instance needs the strand this thread is running a handler of.
      report(errc::wait_needs_this_worker,
             "flush_work of an item queued on '%s' from a handler of the strand it runs on "
             "would deadlock: refused, returns false",
             core->name.c_str());
      return false;
    }
    flush_waiter f;
    f.item = &item;
    if ((s & st_queued) == 0) {
      // Not pending: wait for a running instance, if any.
      f.slot = running_slot_locked(core, &item);
      if (f.slot == nullptr) return false;
      f.started = true;
    }
    return wait_for(core, lk, f, "flush_work");
  }
}

bool flush_delayed_work(delayed_work& item) noexcept {
  using namespace detail;
  if (this_worker().current == &item) {
    // Even re-armed by itself, the instance it would fire can only run after this one returns.
    report(errc::flush_self,
           "flush_delayed_work from the item's own work function would wait "
           "for itself: not fired, not waited for, returns false");
    return false;
  }
  auto& st = work_access::state(item);
  const state_t s = st.load(std::memory_order_acquire);
  if ((s & st_armed) != 0) {
    if (const core_pin pin = lookup_core(queue_id_of(s))) {
      queue_core* core = pin.get();
      std::unique_lock lk(core->mu);
      const state_t now = st.load(std::memory_order_acquire);
      if ((now & st_armed) != 0 && queue_id_of(now) == core->id()) {
        // Fire now (rule 24): off the armed list, onto the worklist of the recorded queue. The
        // outstanding timer wait finds the item no longer ARMED and lets go of it.
        fire_now_locked(core, item);
        if (this_worker().core == core && one_worker_locked(core)) {
          // §5.3: fired onto the one-worker queue the caller runs on, it can only run after
          // the caller returns (which it then does).
          report(errc::wait_needs_this_worker,
                 "flush_delayed_work of an item armed on one-worker queue '%s', from one of its "
                 "items: queued now, not waited for (it runs after the caller), returns false",
                 core->name.c_str());
          return false;
        }
        // Wait for exactly this instance, registered before the lock is dropped, so the
        // answer is "had to wait" however fast a worker runs it.
        flush_waiter f;
        f.item = &item;
        return wait_for(core, lk, f, "flush_delayed_work");
      }
    }
  }
  return flush_work(item);
}

}  // namespace wq
