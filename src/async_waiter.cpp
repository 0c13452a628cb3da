// SPDX-License-Identifier: BSL-1.0
// Async waiters: registration, completion and withdrawal of async_flush, async_drain,
// async_cancel_sync and async_destroy.
#include <wq/detail/async_waiter.hpp>

#include <algorithm>

#include "engine/lifecycle.hpp"
#include "engine/queue_core.hpp"
#include "engine/queueing.hpp"
#include "engine/registry.hpp"
#include "engine/waiters.hpp"
#include "engine/workers.hpp"

namespace wq::detail {

bool register_async_flush(queue_core* core, std::uint64_t id, async_waiter* w) noexcept {
  done_list done;
  std::lock_guard lk(core->mu);
  if (core->id() != id || !core->reg.live) return false;
  start_workers_locked(core);  // items on the intake were queued before this call
  w->epoch = flush_epoch_locked(core);
  if (!add_waiter_locked(core, w)) return false;  // out of memory: "nothing waited"
  complete_waiters_locked(core, done);
  return true;
}

bool register_async_drain(queue_core* core, std::uint64_t id, async_waiter* w) noexcept {
  done_list done;
  std::lock_guard lk(core->mu);
  if (core->id() != id || !core->reg.live) return false;
  if (!add_waiter_locked(core, w)) return false;
  begin_drain_locked(core);
  complete_waiters_locked(core, done);
  return true;
}

int register_async_item_idle(async_waiter* w) noexcept {
  int n = 0;
  for_each_core([&](queue_core* core) {
    std::lock_guard lk(core->mu);
    if (!core->reg.live || running_slot_locked(core, w->item) == nullptr) return;
    // Out of memory: this instance is not waited for.
    if (add_waiter_locked(core, w)) ++n;
  });
  return n;
}

void release_waiter_cores(async_waiter* w) noexcept {
  for (queue_core* core : w->cores) drop_ref(core);
  w->cores.clear();
}

int withdraw_async(async_waiter* w) noexcept {
  int removed = 0;
  for (queue_core* core : w->cores) {
    std::lock_guard lk(core->mu);
    if (!withdraw_waiter_locked(core, w)) continue;  // completed meanwhile (or being completed)
    // A drain that will not complete stops counting; deferred items then run.
    if (w->what == async_waiter::kind::drain) end_drain_locked(core);
    ++removed;
  }
  return removed;
}

}  // namespace wq::detail
