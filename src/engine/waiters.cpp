// SPDX-License-Identifier: BSL-1.0
// Who waits on a queue: see waiters.hpp.
#include "waiters.hpp"

#include <vector>

#include "registry.hpp"
#include "workers.hpp"
#include "worklist.hpp"

namespace wq::detail {

namespace {

bool satisfied(queue_core* core, async_waiter* w) noexcept {
  switch (w->what) {
    case async_waiter::kind::flush:
      // Phase 1 as the blocking flush: move the queue past the waiter's epoch once the next
      // color is free, so items queued later are not waited for; then wait for older ones.
      if (!w->bumped) w->bumped = core->wl.colors.try_advance(w->epoch);
      return w->bumped && core->wl.colors.drained_through(w->epoch);
    case async_waiter::kind::drain: return core->wl.nr_in_flight == 0;
    case async_waiter::kind::item_idle: return running_slot_locked(core, w->item) == nullptr;
    case async_waiter::kind::destroy:
      return false;  // completed by the retirement of the queue (finish_orphan_locked)
  }
  return false;
}

}  // namespace

bool add_waiter_locked(queue_core* core, async_waiter* w) noexcept {
  try {
    w->cores.push_back(core);
  } catch (...) {
    return false;
  }
  try {
    core->wt.async_waiters.push_back(w);
  } catch (...) {
    w->cores.pop_back();
    return false;
  }
  watch_locked(core);
  w->remaining.fetch_add(1, std::memory_order_relaxed);
  // The registration holds the core until the operation is over (release_waiter_cores), so a
  // canceller can always lock it (withdraw_async), however early the queue is gone.
  add_ref(core);
  return true;
}

int check_async_locked(queue_core* core, done_list& done) noexcept {
  int drains = 0;
  auto& v = core->wt.async_waiters;
  for (std::size_t i = 0; i < v.size();) {
    async_waiter* w = v[i];
    if (!satisfied(core, w)) {
      ++i;
      continue;
    }
    v.swap_remove(i);
    if (w->what == async_waiter::kind::drain) ++drains;
    done.push(w);  // completed once the caller releases the mutex
  }
  return drains;
}

bool register_async_destroy_locked(queue_core* core, async_waiter* w) noexcept {
  return add_waiter_locked(core, w);
}

void take_destroy_waiters_locked(queue_core* core, done_list& out) noexcept {
  auto& v = core->wt.async_waiters;
  for (std::size_t i = 0; i < v.size();) {
    if (v[i]->what != async_waiter::kind::destroy) {
      ++i;
      continue;
    }
    v[i]->items_dropped = core->lc.items_dropped;  // its result (D19)
    out.push(v[i]);
    v.swap_remove(i);
  }
}

void note_started_locked(queue_core* core, work* w, worker_slot& me) noexcept {
  for (flush_waiter* f = core->wt.flushers; f != nullptr; f = f->next) {
    if (f->item == w && !f->started) {
      f->started = true;
      f->slot = &me;
    }
  }
}

void wake_after_run_locked(queue_core* core, worker_slot& me, unsigned color) noexcept {
  bool wake = false;
  for (const blocked_waiter* b = core->wt.blocked; b != nullptr && !wake; b = b->next)
    wake = (b->kind == blocked_kind::drain && core->wl.nr_in_flight == 0) ||
           b->kind == blocked_kind::item ||
           (b->kind == blocked_kind::queue_flush && core->wl.colors.empty(color));
  for (flush_waiter* f = core->wt.flushers; f != nullptr; f = f->next) {
    if (f->started && f->slot == &me && !f->done) {
      f->done = true;
      wake = true;
    }
  }
  if (wake) wake_blocked_locked(core);
}

void wake_after_unlink_locked(queue_core* core, work& w) noexcept {
  bool wake = core->wl.nr_in_flight == 0 && blocked_for_locked(core, blocked_kind::drain);
  // A flush waiting for this (now cancelled) instance waits instead for an older instance
  // still running on this queue, if any (rule 23: on return the item is idle unless queued
  // again); otherwise it has nothing left to wait for.
  if (core->wt.flushers != nullptr) {
    worker_slot* running = nullptr;
    for (auto& slot : core->wk.slots) {
      if (slot.active && slot.running() == &w) {
        running = &slot;
        break;
      }
    }
    for (flush_waiter* f = core->wt.flushers; f != nullptr; f = f->next) {
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
  if (wake) wake_blocked_locked(core);
}

void wake_blocked_locked(queue_core* core) noexcept {
  for (blocked_waiter* b = core->wt.blocked; b != nullptr; b = b->next) b->wake.wake();
}

bool blocked_for_locked(const queue_core* core, blocked_kind kind) noexcept {
  for (const blocked_waiter* b = core->wt.blocked; b != nullptr; b = b->next)
    if (b->kind == kind) return true;
  return false;
}

blocked_wait::blocked_wait(queue_core* core, blocked_kind kind) noexcept : core_(core) {
  node_.kind = kind;
  node_.next = core->wt.blocked;
  if (node_.next != nullptr) node_.next->prev = &node_;
  core->wt.blocked = &node_;
  watch_locked(core);  // items ahead are counted finished at each one's end while it waits
}

blocked_wait::~blocked_wait() {
  if (node_.prev != nullptr)
    node_.prev->next = node_.next;
  else
    core_->wt.blocked = node_.next;
  if (node_.next != nullptr) node_.next->prev = node_.prev;
}

void blocked_wait::wait_for(core_lock& lk, std::chrono::milliseconds d) {
  node_.wake.arm();  // under mu: a wake_blocked_locked from here on is not lost
  lk.unlock();
  node_.wake.wait_for(d);
  lk.lock();
}

std::uint64_t flush_epoch_locked(const queue_core* core) noexcept {
  return core->wl.colors.epoch();
}

bool flush_may_start_locked(queue_core* core, std::uint64_t e0) noexcept {
  return core->wl.colors.try_advance(e0);
}

bool flushed_through_locked(const queue_core* core, std::uint64_t e0) noexcept {
  return core->wl.colors.drained_through(e0);
}

void add_flusher_locked(queue_core* core, flush_waiter* f) noexcept {
  f->next = core->wt.flushers;
  core->wt.flushers = f;
  watch_locked(core);
}

void remove_flusher_locked(queue_core* core, flush_waiter* f) noexcept {
  for (flush_waiter** p = &core->wt.flushers; *p != nullptr; p = &(*p)->next) {
    if (*p == f) {
      *p = f->next;
      f->next = nullptr;
      return;
    }
  }
}

bool withdraw_waiter_locked(queue_core* core, async_waiter* w) noexcept {
  auto& v = core->wt.async_waiters;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == w) {
      v.swap_remove(i);
      return true;
    }
  }
  return false;
}

}  // namespace wq::detail
