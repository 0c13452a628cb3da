// SPDX-License-Identifier: BSL-1.0
// Grabbing pending instances, cancelling, disabling, and waiting for running instances.
#include <wq/cancel.hpp>

#include <thread>

#include "queue_core.hpp"

namespace wq {
namespace detail {

void backoff(unsigned spins) noexcept {
  if (spins < 64) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

namespace {

// Removes a QUEUED or ARMED item from the list of `core` that holds it. Requires mu held and
// the state naming `core`.
void unlink_locked(queue_core* core, work& w, state_t s, bool cancelling,
                   done_list& done) noexcept {
  auto& st = work_access::state(w);
  if (cancelling) ++core->stats.cancelled;
  forget_sample_locked(core, &w);
  if ((s & st_armed) != 0) {
    core->tm.armed.erase(core->tm.armed.iterator_to(w));
    // The timer wait (IN_FLIGHT) stays outstanding: its completion finds the item not ARMED and
    // lets go of it, or finds it re-armed and re-arms lazily (so mod costs no timer operation).
    st.fetch_and(~st_armed, std::memory_order_relaxed);
    note_work_locked(core);
    return;
  }
  if (list_of(s) != list_kind::deferred) {
    // Deferred items were never counted in a flush color (they are not queued yet).
    if (--core->wl.nr_color[color_of(s)] == 0 && core->wt.queue_flushers > 0)
      core->wt.idle_cv.notify_all();
  }
  switch (list_of(s)) {
    case list_kind::work:
      core->wl.ready.erase(core->wl.ready.iterator_to(w));
      --core->wl.nr_active;
      --core->wl.nr_in_flight;
      break;
    case list_kind::inactive:
      core->wl.inactive.erase(core->wl.inactive.iterator_to(w));
      --core->wl.nr_in_flight;
      break;
    case list_kind::scheduled:
      for (auto& slot : core->wk.slots) {
        for (auto it = slot.scheduled.begin(); it != slot.scheduled.end(); ++it) {
          if (&*it == &w) {
            slot.scheduled.erase(it);
            --core->wl.nr_active;
            --core->wl.nr_in_flight;
            goto unlinked;
          }
        }
      }
      WQ_ASSERT(false, "wq: scheduled item not found on any worker");
    unlinked:
      break;
    case list_kind::deferred: core->lc.deferred.erase(core->lc.deferred.iterator_to(w)); break;
  }
  st.fetch_and(~st_queued, std::memory_order_relaxed);
  bool wake = core->wl.nr_in_flight == 0 && core->wt.drain_waiters > 0;
  // A flush waiting for this (now cancelled) instance waits instead for an older instance
  // still running on this queue, if any (rule 23: on return the item is idle unless queued
  // again); otherwise it has nothing left to wait for.
  if (!core->wt.flushers.empty()) {
    worker_slot* running = nullptr;
    for (auto& slot : core->wk.slots) {
      if (slot.active && slot.current == &w) {
        running = &slot;
        break;
      }
    }
    for (flush_waiter* f : core->wt.flushers) {
      if (f->item != &w || f->started) continue;
      if (running != nullptr) {
        f->started = true;
        f->slot = running;
      } else {
        f->done = true;
        wake = true;
      }
    }
  }
  if (wake) core->wt.idle_cv.notify_all();
  note_work_locked(core);
  if (!core->wt.async_waiters.empty()) check_async_locked(core, done);
}

}  // namespace

grab_result grab_pending(work& w, bool cancelling, grab_info* info) noexcept {
  auto& st = work_access::state(w);
  for (unsigned spins = 0;; ++spins) {
    state_t s = st.load(std::memory_order_acquire);
    if ((s & st_pending) == 0) {
      // Safety (acq_rel): as claim_pending; the caller becomes the owner of PENDING.
      if (st.compare_exchange_weak(s, s | st_pending, std::memory_order_acq_rel,
                                   std::memory_order_relaxed))
        return grab_result::idle;
      continue;
    }
    if ((s & (st_queued | st_armed | st_intake)) != 0) {
      if (queue_core* core = lookup_core(queue_id_of(s))) {
        done_list done;  // completed after lk is released
        std::unique_lock lk(core->mu);
        // An item on the intake becomes QUEUED once the intake is taken. (If it is still
        // INTAKE after this, its producer has not pushed it yet: look again shortly.)
        if ((s & st_intake) != 0 && queue_id_of(s) == core->id()) start_workers_locked(core);
        s = st.load(std::memory_order_acquire);
        if ((s & (st_queued | st_armed)) != 0 && queue_id_of(s) == core->id()) {
          if (info != nullptr) *info = {core->id(), (s & st_armed) != 0};
          unlink_locked(core, w, s, cancelling, done);
          return grab_result::pending;
        }
      }
      if ((s & st_intake) != 0) backoff(spins);
      continue;  // moved meanwhile: look again
    }
    // PENDING alone: being queued by another thread, started by a worker, or held by another
    // canceller. Each window is short and ends without waiting for us.
    backoff(spins);
  }
}

bool wait_not_running(work& w) noexcept {
  const worker_context& me = this_worker();
  bool self = me.current == &w;
  if (self) {
    report(errc::cancel_sync_self,
           "cancel_*_sync/disable_*_sync from the item's own work function cannot wait for "
           "itself: pending instance cancelled, running one (the caller) not waited for");
  }
  // An item may last have run on any queue (rules 12, 29: it may have been moved), so look at
  // every queue's workers. This is the slow path of the _sync operations only.
  for_each_core([&](queue_core* core) {
    std::unique_lock lk(core->mu);
    if (!core->reg.live) return;
    auto running = [&] {
      for (auto& slot : core->wk.slots)
        if (slot.active && slot.current == &w && &slot != me.slot) return true;
      return false;
    };
    if (!running()) return;
    ++core->wt.item_waiters;
    // A refused wait (a cycle of items waiting for each other, ...) is reported: the running
    // instance is then not waited for, as from the item itself.
    (void)wait_until(core, lk, {wait_target::kind::running, core, &w}, "cancel_*_sync",
                     [&] { return !running(); });
    --core->wt.item_waiters;
  });
  return !self;
}

namespace {
// How long a destructor gives a worker to publish that the function it saw running has
// returned (a function may hand its item to another thread just before returning) before it
// calls the destruction misuse.
constexpr auto destroy_grace = std::chrono::seconds(1);

void wait_not_running_elsewhere(work& w) noexcept {
  run_record* mine = claimed_run_record();
  const work_ops* ops = work_access::ops(w).load(std::memory_order_relaxed);
  for (run_record* r = first_run_record(); r != nullptr; r = r->next) {
    // Safety (acquire): pairs with the worker's release stores around the function call.
    if (r == mine || r->item.load(std::memory_order_acquire) != &w) continue;
    if (r->ops.load(std::memory_order_relaxed) != ops) continue;  // another object (rule 11)
    const auto give_up = std::chrono::steady_clock::now() + destroy_grace;
    unsigned spins = 0;
    while (r->item.load(std::memory_order_acquire) == &w &&
           std::chrono::steady_clock::now() < give_up)
      backoff(spins++);
    if (r->item.load(std::memory_order_acquire) != &w) continue;
    report(errc::destroyed_while_running,
           "work item %p destroyed while its function runs on another thread: waiting for it "
           "to return",
           static_cast<const void*>(&w));
    while (r->item.load(std::memory_order_acquire) == &w) backoff(spins++);
  }
}
}  // namespace

void check_destroy(work& w) noexcept {
  // Destroyed by its own running function (rule 4: it may free itself): this thread's record
  // must stop naming the address, or an object built there later would be mistaken for a
  // running one. (The worker restores the outer item's record when the function returns.)
  if (run_record* mine = claimed_run_record();
      mine != nullptr && mine->item.load(std::memory_order_relaxed) == &w) {
    // Safety (release): as the worker's own stores around the call.
    mine->item.store(nullptr, std::memory_order_release);
  }
  // Safety (acquire): a pending bit set by another thread's queueing is seen with its links.
  if ((work_access::state(w).load(std::memory_order_acquire) & st_pending) != 0) {
    report(errc::destroyed_while_pending,
           "work item %p destroyed while pending: the pending instance is cancelled and any "
           "reference the queue held is abandoned",
           static_cast<const void*>(&w));
    // The kernel's debugobjects fix-up: take the instance off its list or timer. A reference
    // the queue held points at the object being destroyed, so it is neither released nor
    // handed back.
    (void)grab_pending(w);
    unclaim_pending(w);
  }
  wait_not_running_elsewhere(w);
}

unsigned disable_inc(work& w) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  for (;;) {
    if (disable_count(s) == disable_max) {
      report(errc::disable_count_overflow, "disable ignored (rule 34)");
      return static_cast<unsigned>(disable_max);
    }
    // Safety (acq_rel): a later claim_pending reads the count in the same RMW chain.
    if (st.compare_exchange_weak(s, s + disable_one, std::memory_order_acq_rel,
                                 std::memory_order_relaxed))
      return static_cast<unsigned>(disable_count(s) + 1);
  }
}

unsigned disable_dec(work& w) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  for (;;) {
    if (disable_count(s) == 0) {
      report(errc::disable_count_underflow,
             "enable of an item that is not disabled ignored (rule 34)");
      return 0;
    }
    if (st.compare_exchange_weak(s, s - disable_one, std::memory_order_acq_rel,
                                 std::memory_order_relaxed))
      return static_cast<unsigned>(disable_count(s) - 1);
  }
}

queue_status requeue_claimed(queue_core* core, std::uint64_t id, work& w,
                             std::chrono::nanoseconds delay, bool count) noexcept {
  if (delay.count() == 0) return link_claimed(core, id, w, nullptr, count);
  return arm_claimed(core, id, static_cast<delayed_work&>(w), delay, nullptr, count);
}

mod_grab grab_for_mod(work& w, std::uint64_t target) noexcept {
  grab_info info;
  mod_grab g;
  g.was_pending = grab_pending(w, false, &info) == grab_result::pending;
  g.moved = g.was_pending && info.armed && info.queue == target;
  g.from = info.queue;
  if (g.was_pending && !g.moved) note_cancelled(info.queue);
  return g;
}

void note_cancelled(std::uint64_t id) noexcept {
  queue_core* core = lookup_core(id);
  if (core == nullptr) return;
  std::lock_guard lk(core->mu);
  if (core->id() == id && core->reg.live) ++core->stats.cancelled;
}

}  // namespace detail

bool cancel_work(work& item) noexcept {
  if (detail::grab_pending(item) == detail::grab_result::idle) {
    detail::unclaim_pending(item);
    return false;
  }
  // drop() takes the queue's reference out, clears PENDING, then releases the reference.
  detail::work_access::ops(item).load(std::memory_order_relaxed)->drop(&item);
  return true;
}

bool cancel_work_sync(work& item) noexcept {
  detail::disable_inc(item);
  const bool was_pending = cancel_work(item);
  detail::wait_not_running(item);
  detail::disable_dec(item);
  return was_pending;
}

bool disable_work(work& item) noexcept {
  detail::disable_inc(item);
  return cancel_work(item);
}

bool disable_work_sync(work& item) noexcept {
  const bool was_pending = disable_work(item);
  detail::wait_not_running(item);
  return was_pending;
}

bool enable_work(work& item) noexcept { return detail::disable_dec(item) == 0; }

bool enable_and_queue_work(workqueue& queue, work& item) noexcept {
  const work_ops* ops = detail::work_access::ops(item).load(std::memory_order_relaxed);
  if (ops != nullptr && ops->owning) {
    detail::report(errc::untyped_on_owning_item,
                   "enable_and_queue_work: item enabled but not queued; use enable_work and the "
                   "typed enqueue");
    enable_work(item);
    return false;
  }
  if (!enable_work(item)) return false;
  const queue_status st = queue.queue(item);
  return st == queue_status::queued || st == queue_status::already_pending;
}

}  // namespace wq
