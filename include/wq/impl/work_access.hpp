// SPDX-License-Identifier: BSL-1.0
// wq/impl/work_access.hpp: the one friend of the work types, through which the library
// reaches their private fields. Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <atomic>

#include <wq/delayed_work.hpp>
#include <wq/shared_work.hpp>
#include <wq/work.hpp>

namespace wq::detail {

struct work_access {
  using hook_type = decltype(work::hook_);
  static constexpr auto hook_member = &work::hook_;

  static std::atomic<state_t>& state(work& w) noexcept { return w.state_; }
  static std::atomic<const work_ops*>& ops(work& w) noexcept { return w.ops_; }
  static const std::atomic<const work_ops*>& ops(const work& w) noexcept { return w.ops_; }
  static item_timer& timer(delayed_work& d) noexcept { return d.timer_; }
  static std::atomic<std::chrono::steady_clock::time_point>& deadline(delayed_work& d) noexcept {
    return d.deadline_;
  }
  static timer_anchor* anchor(const delayed_work& d) noexcept { return d.anchor_; }
  static std::atomic<bool>& wait_starting(delayed_work& d) noexcept { return d.wait_starting_; }
  static shared_ref_slot& shared_slot(shared_work& w) noexcept { return w.ref_; }
  static shared_ref_slot& shared_slot(shared_delayed_work& w) noexcept { return w.ref_; }
};

/// Marks a dequeued item as started (rule 2): the inline body of begin_run (wq/detail/work.hpp),
/// for the typed trampolines.
inline void begin_run_inline(work& w) noexcept {
  // Safety (acq_rel): acquire pairs with the release RMWs of queueing calls that found the item
  // pending, so their earlier writes are visible to this run (rule 7); release pairs with the
  // next claimer's acquire, publishing that the queue's reference was taken out of the item.
  work_access::state(w).fetch_and(~(st_pending | st_queued | st_coalesced),
                                  std::memory_order_acq_rel);
}

}  // namespace wq::detail
