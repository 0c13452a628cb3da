// SPDX-License-Identifier: BSL-1.0
// The engine's sequences over a queue's life: see lifecycle.hpp.
#include "lifecycle.hpp"

#include <algorithm>
#include <thread>

#include "../context_watch.hpp"
#include "../trace.hpp"
#include "counters.hpp"
#include "intake.hpp"
#include "queueing.hpp"
#include "registry.hpp"
#include "run_records.hpp"
#include "timers.hpp"
#include "waiters.hpp"
#include "workers.hpp"
#include "worklist.hpp"

namespace wq::detail {

void complete_waiters_locked(queue_core* core, done_list& done) noexcept {
  for (int drains = check_async_locked(core, done); drains > 0; --drains) end_drain_locked(core);
}

bool unlink_locked(queue_core* core, work& w, state_t s, bool cancelling,
                   done_list& done) noexcept {
  auto& st = work_access::state(w);
  // An item assigned to a worker is on its list or in the batch it took ahead; unless that
  // worker just took it to run it (then there is nothing to unlink).
  if ((s & st_armed) == 0 && list_of(s) == list_kind::scheduled && !take_scheduled_locked(core, w))
    return false;
  if (cancelling) ++core->stats.cancelled;
  forget_sample(core->stats, &w);
  if ((s & st_armed) != 0) {
    // The timer wait (IN_FLIGHT) stays outstanding: its completion finds the item not ARMED and
    // lets go of it, or finds it re-armed and re-arms lazily (so mod costs no timer operation).
    // Safety: only delayed items are ever ARMED.
    disarm_locked(core, static_cast<delayed_work&>(w), false);
    note_work_locked(core);
    return true;
  }
  // The instance leaves flight, its flush colour and (unless inactive) the active count, as a
  // finished one does. Deferred items were never counted (they are not queued yet).
  bool color_done = false;
  switch (list_of(s)) {
    case list_kind::work:
      core->wl.ready.erase(core->wl.ready.iterator_to(w));
      color_done = uncount(core, color_of(s), true);
      break;
    case list_kind::inactive:
      core->wl.inactive.erase(core->wl.inactive.iterator_to(w));
      color_done = uncount(core, color_of(s), false);
      break;
    case list_kind::scheduled:  // taken off its worker's list or batch above
      color_done = uncount(core, color_of(s), true);
      break;
    case list_kind::deferred: core->lc.deferred.erase(core->lc.deferred.iterator_to(w)); break;
  }
  if (color_done && blocked_for_locked(core, blocked_kind::queue_flush)) wake_blocked_locked(core);
  // The instance leaves the list in transit, owned by the caller: a COALESCED mark made while
  // it was queued goes with it, in the same step, so that only calls told already_pending
  // during this transit make its refusal link it (settle_claim); the earlier ones counted as
  // made before this cancel or move (rule 1).
  st.fetch_and(~(st_queued | st_coalesced), std::memory_order_relaxed);
  wake_after_unlink_locked(core, w);
  note_work_locked(core);
  if (!core->wt.async_waiters.empty()) complete_waiters_locked(core, done);
  return true;
}

namespace {

// Takes an expired item off the armed list; while the queue drains, puts it on the deferred
// list (rule 49). Returns whether the caller must still link it on the queue. Requires: mu.
bool disarm_expired_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept {
  disarm_locked(core, dw, wait_done);
  // Queued now, as the kernel's delayed_work_timer_fn queues (arming was not a queueing).
  WQ_TRACE_QUEUE_WORK(&dw, trace_name(dw), core->name.c_str(), core->id());
  // From here on the item is QUEUED (set by link_on_worklist or below) and may run and be
  // freed once the mutex is released.
  if (core->lc.draining == 0) return true;
  core->lc.deferred.push_back(dw);  // queued when the drain ends
  work_access::state(dw).fetch_or(st_queued, std::memory_order_release);
  set_list(dw, list_kind::deferred);
  return false;
}

}  // namespace

void queue_expired_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept {
  if (disarm_expired_locked(core, dw, wait_done)) queue_locked(core, dw);
}

bool link_expired_locked(queue_core* core, delayed_work& dw) noexcept {
  if (!disarm_expired_locked(core, dw, true)) return false;
  link_locked(core, dw);
  return true;
}

void unpause_locked(queue_core* core) noexcept {
  if (!core->lc.paused) return;
  core->lc.paused = false;
  start_workers_locked(core);
}

void queue_deferred_locked(queue_core* core) noexcept {
  while (!core->lc.deferred.empty()) {
    work& w = core->lc.deferred.front();
    core->lc.deferred.pop_front();
    queue_locked(core, w);
  }
}

void hold_deferred_locked(queue_core* core, work& w, std::uint64_t id) noexcept {
  core->lc.deferred.push_back(w);
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  // Safety (release): publishes the queue id for lock-free readers that validate it under the
  // queue mutex (as set_queued does); the mutex publishes the rest.
  while (!st.compare_exchange_weak(
      s, (with_list(with_queue_id(s, id), list_kind::deferred) | st_queued) & ~st_intake,
      std::memory_order_release, std::memory_order_relaxed)) {
  }
  note_work_locked(core);  // the held function keeps the executor's run() from returning
}

void end_drain_locked(queue_core* core) noexcept {
  // Delayed items whose timer fired during the drain take their turn now.
  if (--core->lc.draining == 0 && !core->lc.dying) {
    queue_deferred_locked(core);
    open_intake_locked(core);
  }
}

std::vector<work*> begin_destroy_locked(queue_core* core) {
  core->lc.dying = true;
  close_intake_locked(core);
  unpause_locked(core);  // a paused queue could never drain
  start_workers_locked(core);
  // Armed delayed items targeting this queue would fire into a dead queue: cancel them now
  // (rule 50b made safe); the caller releases their references outside the lock.
  std::vector<work*> dropped;
  dropped.reserve(core->tm.armed.size());
  cancel_armed_locked(core, [&](work& w) { dropped.push_back(&w); });
  core->stats.cancelled += dropped.size();
  // Items that fired during an earlier drain run as part of this one.
  queue_deferred_locked(core);
  note_work_locked(core);
  return dropped;
}

void abandon_locked(queue_core* core, work_list& out, done_list& done) noexcept {
  core->wk.executor_dead = true;
  core->lc.dying = true;  // refuses all queueing and arming (nothing can run here any more)
  close_intake_locked(core);
  (void)take_back_ahead_locked(core, nullptr);  // onto the ready list, taken below
  auto take = [&](auto& from, bool active) {
    while (!from.empty()) {
      work& w = from.front();
      from.pop_front();
      auto& st = work_access::state(w);
      const state_t s = st.fetch_and(~st_queued, std::memory_order_relaxed);
      uncount(core, color_of(s), active);
      forget_sample(core->stats, &w);
      out.push_back(w);
    }
  };
  take(core->wl.ready, true);
  take(core->wl.inactive, false);
  for (worker_slot& slot : core->wk.slots)
    if (slot.run != nullptr) take(slot.run->scheduled, true);
  while (!core->lc.deferred.empty()) {
    work& w = core->lc.deferred.front();
    core->lc.deferred.pop_front();
    work_access::state(w).fetch_and(~st_queued, std::memory_order_relaxed);
    out.push_back(w);
  }
  cancel_armed_locked(core, [&](work& w) { out.push_back(w); });
  core->stats.cancelled += out.size();
  wake_blocked_locked(core);
  note_work_locked(core);
  if (!core->wt.async_waiters.empty()) complete_waiters_locked(core, done);
}

bool complete_destroyers_locked(queue_core* core, core_lock& lk, done_list& destroyers) noexcept {
  // A handler bound to the queue's own executor (a coroutine running on it) cannot run after
  // it retires: it runs as the queue's last item, submitted as chained work while the queue
  // still exists (orphan_busy with chained_for() naming it lets it in); the queue retires once
  // that has run.
  core->lc.orphan_busy = true;
  queue_core*& chained = chained_for();
  queue_core* const outer = chained;
  chained = core;
  for (;;) {
    lk.unlock();
    destroyers.complete();
    lk.lock();
    // A further async_destroy registered meanwhile (called from one of those handlers, which
    // another worker may run at once): it completes the same way, as one more last item.
    take_destroy_waiters_locked(core, destroyers);
    if (destroyers.empty()) break;
  }
  chained = outer;
  core->lc.orphan_busy = false;
  return core->wl.nr_in_flight == 0;
}

void finish_orphan_locked(queue_core* core, core_lock& lk, done_list& done) noexcept {
  if (core->lc.orphan_busy) return;  // another thread is completing its async_destroy handlers
  if (!core->lc.destroy_notified) {
    core->lc.destroy_notified = true;
    // async_destroy completes now that nothing is in flight.
    done_list destroyers;
    take_destroy_waiters_locked(core, destroyers);
    if (!destroyers.empty() && !complete_destroyers_locked(core, lk, destroyers))
      return;  // the last of their handlers finishes the queue
  }
  core->lc.orphaned = false;
  boost::asio::thread_pool* pool = core->reg.own_pool.get();
  if (pool == nullptr) {
    retire_core(core, lk, done);
    return;
  }
  // The joiner's reference keeps the core (and so the pool it owns) until the join is done.
  add_ref(core);
  retire_core(core, lk, done);
  // This thread may be one of the pool's: another thread must join it.
  try {
    std::thread([core, pool] {
      pool->join();
      drop_ref(core);  // frees the pool if nothing else refers to the queue
    }).detach();
  } catch (...) {
    // No thread for the join: leak the pool (its idle threads) and the core rather than join
    // from here.
    report(errc::worker_post_failed,
           "queue '%s': could not start a thread to join its pool; "
           "the pool is leaked",
           core->name.c_str());
  }
}

void retire_core(queue_core* core, core_lock& lk, done_list& done) noexcept {
  // Waiters left (async_destroy; every other kind is satisfied by an idle queue) complete now.
  for (std::size_t i = 0; i < core->wt.async_waiters.size(); ++i) {
    async_waiter* w = core->wt.async_waiters[i];
    // An async_destroy still listed (none is expected: finish_orphan_locked and
    // complete_destroyers_locked take every one registered before retirement): the same
    // result (D19), so that even then it does not report success for dropped items.
    if (w->what == async_waiter::kind::destroy) w->items_dropped = core->lc.items_dropped;
    done.push(w);
  }
  core->wt.async_waiters.clear();
  core->reg.live = false;
  wake_blocked_locked(core);  // a destroy() waiting for an async_destroy to finish
  // A new generation makes every id naming this queue stale at once.
  core->reg.gen = (core->reg.gen + 1) & core_gen_mask;
  // Closed, and tagged with the new generation: producers holding an old id fall back to the
  // locked path, which refuses them. (Destroy closed and emptied the intake already.)
  retag_intake(core, true);
  unwatch_context_locked(core);
  // A handler claimed before the queue retired may still be being posted without mu.
  wait_posts_done(core, lk);
  core->wk.executor.reset();
  maybe_recycle(core, lk);
}

void pause_locked(queue_core* core) noexcept {
  core->lc.paused = true;
  // Rule 45: no queued item starts from now on, including those workers took ahead.
  watch_locked(core);
  (void)take_back_ahead_locked(core, nullptr);
  wake_blocked_locked(core);  // blocked waits that need queued items refuse now
}

void begin_drain_locked(queue_core* core) noexcept {
  ++core->lc.draining;
  close_intake_locked(core);  // rule 17: from now on only chained queueing, locked
  start_workers_locked(core);
}

int set_max_active_locked(queue_core* core, int ma) noexcept {
  core->wl.max_active = ma;
  // Safety (static_cast): at most ma, a clamped max_active (<= max_max_active, 2048).
  core->wk.max_workers = static_cast<std::uint16_t>(std::max(1, std::min(ma, core->wk.slot_cap)));
  update_saturated(core);
  start_workers_locked(core);
  return ma;
}

bool drained_locked(const queue_core* core) noexcept { return core->wl.nr_in_flight == 0; }

bool quiescent_locked(const queue_core* core) noexcept {
  return core->wl.nr_in_flight == 0 && core->wk.nr_in_handler == 0;
}

bool idle_but_caller_locked(const queue_core* core, bool caller_runs_here) noexcept {
  return core->wl.nr_in_flight <= (caller_runs_here ? 1u : 0u) && core->lc.deferred.empty();
}

void fire_now_locked(queue_core* core, delayed_work& dw) noexcept {
  disarm_locked(core, dw, false);
  WQ_TRACE_QUEUE_WORK(&dw, trace_name(dw), core->name.c_str(), core->id());
  queue_locked(core, dw);
}

void requeue_deferred_locked(queue_core* core, work& w) noexcept {
  core->lc.deferred.erase(core->lc.deferred.iterator_to(w));
  queue_locked(core, w);
}

void mark_orphaned_locked(queue_core* core) noexcept { core->lc.orphaned = true; }

void orphan_locked(queue_core* core, core_lock& lk, done_list& done) noexcept {
  core->lc.orphaned = true;
  // Otherwise the worker that runs the last item in flight finishes it (from an own item, that
  // item itself still counts in nr_in_flight).
  if (core->wl.nr_in_flight == 0) finish_orphan_locked(core, lk, done);
}

void retire_or_orphan_locked(queue_core* core, core_lock& lk, done_list& done) noexcept {
  if (core->wl.nr_in_flight != 0) {
    core->lc.orphaned = true;  // items running elsewhere: the last one retires it
    return;
  }
  retire_core(core, lk, done);
}

}  // namespace wq::detail
