// SPDX-License-Identifier: BSL-1.0
// Async waiters: registration, completion and withdrawal of async_flush, async_drain,
// async_cancel_sync and async_destroy.
#include <wq/detail/async_waiter.hpp>

#include <algorithm>

#include "queue_core.hpp"

namespace wq::detail {

namespace {

bool running_here(const queue_core* core, const work* item) noexcept {
  for (const auto& slot : core->wk.slots)
    if (slot.active && slot.current == item) return true;
  return false;
}

// Flush phase 1: move the queue past the waiter's epoch once the next color is free (as the
// blocking flush does), so items queued later are not waited for.
void try_bump(queue_core* core, async_waiter* w) noexcept {
  if (w->bumped) return;
  if (core->wl.flush_epoch != w->epoch) {
    w->bumped = true;
  } else if (core->wl.nr_color[(w->epoch + 1) % nr_colors] == 0) {
    core->wl.flush_epoch = w->epoch + 1;
    w->bumped = true;
  }
}

bool satisfied(queue_core* core, async_waiter* w) noexcept {
  switch (w->what) {
    case async_waiter::kind::flush:
      try_bump(core, w);
      return w->bumped && older_colors_drained(core, w->epoch);
    case async_waiter::kind::drain: return core->wl.nr_in_flight == 0;
    case async_waiter::kind::item_idle: return !running_here(core, w->item);
    case async_waiter::kind::destroy:
      return false;  // completed by the retirement of the queue (finish_orphan_locked)
  }
  return false;
}

// Registers `w` with `core`: on its list, among w's cores, counted in w->remaining. Requires
// core->mu. Returns false, changing nothing, if out of memory.
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
  w->remaining.fetch_add(1, std::memory_order_relaxed);
  return true;
}
}  // namespace

bool older_colors_drained(const queue_core* core, std::uint64_t e0) noexcept {
  const std::uint64_t cur = core->wl.flush_epoch;
  for (std::uint64_t k = 0; k < nr_colors && k <= cur; ++k) {
    const std::uint64_t ep = cur - k;
    if (ep <= e0 && core->wl.nr_color[ep % nr_colors] != 0) return false;
  }
  return true;
}

void end_drain_locked(queue_core* core) noexcept {
  // Delayed items whose timer fired during the drain take their turn now.
  if (--core->lc.draining == 0 && !core->lc.dying) {
    queue_deferred_locked(core);
    open_intake_locked(core);
  }
}

void check_async_locked(queue_core* core, done_list& done) noexcept {
  auto& v = core->wt.async_waiters;
  for (std::size_t i = 0; i < v.size();) {
    async_waiter* w = v[i];
    if (!satisfied(core, w)) {
      ++i;
      continue;
    }
    v[i] = v.back();
    v.pop_back();
    if (w->what == async_waiter::kind::drain) end_drain_locked(core);
    done.push(w);  // completed once the caller releases the mutex
  }
}

bool register_async_flush(queue_core* core, std::uint64_t id, async_waiter* w) noexcept {
  done_list done;
  std::lock_guard lk(core->mu);
  if (core->id() != id || !core->reg.live) return false;
  start_workers_locked(core);  // items on the intake were queued before this call
  w->epoch = core->wl.flush_epoch;
  if (!add_waiter_locked(core, w)) return false;  // out of memory: "nothing waited"
  check_async_locked(core, done);
  return true;
}

bool register_async_drain(queue_core* core, std::uint64_t id, async_waiter* w) noexcept {
  done_list done;
  std::lock_guard lk(core->mu);
  if (core->id() != id || !core->reg.live) return false;
  if (!add_waiter_locked(core, w)) return false;
  ++core->lc.draining;
  close_intake_locked(core);  // rule 17: from now on only chained queueing, locked
  start_workers_locked(core);
  check_async_locked(core, done);
  return true;
}

int register_async_item_idle(async_waiter* w) noexcept {
  int n = 0;
  for_each_core([&](queue_core* core) {
    std::lock_guard lk(core->mu);
    if (!core->reg.live || !running_here(core, w->item)) return;
    // Out of memory: this instance is not waited for.
    if (add_waiter_locked(core, w)) ++n;
  });
  return n;
}

bool register_async_destroy_locked(queue_core* core, async_waiter* w) noexcept {
  return add_waiter_locked(core, w);
}

int withdraw_async(async_waiter* w) noexcept {
  int removed = 0;
  for (queue_core* core : w->cores) {
    std::lock_guard lk(core->mu);
    auto& v = core->wt.async_waiters;
    auto it = std::find(v.begin(), v.end(), w);
    if (it == v.end()) continue;  // completed meanwhile (or being completed)
    *it = v.back();
    v.pop_back();
    // A drain that will not complete stops counting; deferred items then run.
    if (w->what == async_waiter::kind::drain) end_drain_locked(core);
    ++removed;
  }
  return removed;
}

void take_destroy_waiters_locked(queue_core* core, done_list& out) noexcept {
  auto& v = core->wt.async_waiters;
  for (std::size_t i = 0; i < v.size();) {
    if (v[i]->what != async_waiter::kind::destroy) {
      ++i;
      continue;
    }
    out.push(v[i]);
    v[i] = v.back();
    v.pop_back();
  }
}

}  // namespace wq::detail
