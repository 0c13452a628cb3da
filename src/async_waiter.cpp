// SPDX-License-Identifier: BSL-1.0
// Async waiters: registration and completion of async_flush, async_drain, async_cancel_sync.
#include <wq/detail/async_waiter.hpp>

#include <algorithm>

#include "queue_core.hpp"

namespace wq::detail {

namespace {

bool running_here(const queue_core* core, const work* item) noexcept {
  for (const auto& slot : core->slots)
    if (slot.active && slot.current == item) return true;
  return false;
}

// Flush phase 1: move the queue past the waiter's epoch once the next color is free (as the
// blocking flush does), so items queued later are not waited for.
void try_bump(queue_core* core, async_waiter* w) noexcept {
  if (w->bumped) return;
  if (core->flush_epoch != w->epoch) {
    w->bumped = true;
  } else if (core->nr_color[(w->epoch + 1) % nr_colors] == 0) {
    core->flush_epoch = w->epoch + 1;
    w->bumped = true;
  }
}

bool satisfied(queue_core* core, async_waiter* w) noexcept {
  switch (w->what) {
    case async_waiter::kind::flush:
      try_bump(core, w);
      return w->bumped && older_colors_drained(core, w->epoch);
    case async_waiter::kind::drain:
      return core->nr_in_flight == 0;
    case async_waiter::kind::item_idle:
      return !running_here(core, w->item);
  }
  return false;
}

}  // namespace

bool older_colors_drained(const queue_core* core, std::uint64_t e0) noexcept {
  const std::uint64_t cur = core->flush_epoch;
  for (std::uint64_t k = 0; k < nr_colors && k <= cur; ++k) {
    const std::uint64_t ep = cur - k;
    if (ep <= e0 && core->nr_color[ep % nr_colors] != 0) return false;
  }
  return true;
}

void end_drain_locked(queue_core* core) noexcept {
  // Delayed items whose timer fired during the drain take their turn now.
  if (--core->draining == 0 && !core->dying) {
    queue_deferred_locked(core);
    open_intake_locked(core);
  }
}

void check_async_locked(queue_core* core) noexcept {
  auto& v = core->async_waiters;
  for (std::size_t i = 0; i < v.size();) {
    async_waiter* w = v[i];
    if (!satisfied(core, w)) {
      ++i;
      continue;
    }
    v[i] = v.back();
    v.pop_back();
    if (w->what == async_waiter::kind::drain) end_drain_locked(core);
    w->complete(w);  // posts the user's handler; never re-enters this core
  }
}

bool register_async_flush(queue_core* core, std::uint64_t id, async_waiter* w) noexcept {
  std::lock_guard lk(core->mu);
  if (core->id() != id || !core->live) return false;
  start_workers_locked(core);  // items on the intake were queued before this call
  w->epoch = core->flush_epoch;
  try {
    core->async_waiters.push_back(w);
  } catch (...) {
    return false;  // out of memory: complete at once (reported as "nothing waited")
  }
  w->remaining.fetch_add(1, std::memory_order_relaxed);
  check_async_locked(core);
  return true;
}

bool register_async_drain(queue_core* core, std::uint64_t id, async_waiter* w) noexcept {
  std::lock_guard lk(core->mu);
  if (core->id() != id || !core->live) return false;
  try {
    core->async_waiters.push_back(w);
  } catch (...) {
    return false;
  }
  ++core->draining;
  close_intake_locked(core);  // rule 17: from now on only chained queueing, locked
  start_workers_locked(core);
  w->remaining.fetch_add(1, std::memory_order_relaxed);
  check_async_locked(core);
  return true;
}

int register_async_item_idle(async_waiter* w) noexcept {
  int n = 0;
  for_each_core([&](queue_core* core) {
    std::lock_guard lk(core->mu);
    if (!core->live || !running_here(core, w->item)) return;
    try {
      core->async_waiters.push_back(w);
    } catch (...) {
      return;  // out of memory: this instance is not waited for
    }
    w->remaining.fetch_add(1, std::memory_order_relaxed);
    ++n;
  });
  return n;
}

}  // namespace wq::detail
