// SPDX-License-Identifier: BSL-1.0
// src/rcu_work.cpp: the one compiled piece of rcu_work (wq/rcu_work.hpp is header-only, on the
// caller's liburcu flavour): firing an armed item from an RCU callback, without a queue in hand
// and without waiting. The rest of rcu_work is an ordinary delayed item armed for max_delay.
//
// Lock rules: the queue's mutex only, through lookup_core (a pin) and a re-check of the state word
// under it, as flush_delayed_work does; the caller holds no wq lock.
#include <wq/delayed_work.hpp>
#include <wq/detail/rcu_work.hpp>
#include <wq/impl/claim.hpp>

#include <mutex>

#include "engine/lifecycle.hpp"
#include "engine/queue_core.hpp"
#include "engine/registry.hpp"

namespace wq::detail {

bool fire_armed_now(delayed_work& item) noexcept {
  auto& st = work_access::state(item);
  const state_t s = st.load(std::memory_order_acquire);
  if ((s & st_armed) == 0) return false;
  const core_pin pin = lookup_core(queue_id_of(s));  // outlives lk (declared first)
  queue_core* core = pin.get();
  if (core == nullptr) return false;
  std::unique_lock lk(core->mu);
  const state_t now = st.load(std::memory_order_acquire);
  // The id check rejects a core reused by another queue since `s` was read: the item was
  // cancelled by its queue's destroy() meanwhile, and nothing is armed for it any more.
  if ((now & st_armed) == 0 || queue_id_of(now) != core->id()) return false;
  // The grace period is this item's deadline: queued as its timer firing would be (deferred
  // while the queue drains, rule 49). The Asio wait it leaves outstanding finds it no longer
  // ARMED and lets go of it.
  queue_expired_locked(core, item, /*wait_done=*/false);
  return true;
}

}  // namespace wq::detail
