// SPDX-License-Identifier: BSL-1.0
// wq/impl/claim.hpp: claiming an item's PENDING bit (the kernel's
// test_and_set_bit(WORK_STRUCT_PENDING)) and the one claim -> link -> give-back sequence every
// queueing call follows. Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>
#include <wq/impl/work_access.hpp>
#include <wq/queue_status.hpp>

namespace wq::detail {

enum class claim_result { claimed, already_pending, disabled };

/// Tries to make the caller the owner of `w`'s pending instance.
inline claim_result claim_pending(work& w) noexcept {
  auto& st = work_access::state(w);
  // Safety (ordering): a read-modify-write with release semantics even when the bit was already
  // set, so the worker's acq_rel clear of PENDING (which comes later in the modification order)
  // synchronises with it and sees every store made before this call (rule 7). Acquire pairs
  // with the worker's clear so that a successful claim sees the previous run's effects on the
  // item (rule 2).
  const state_t old = st.fetch_or(st_pending, std::memory_order_acq_rel);
  if ((old & st_pending) != 0) return claim_result::already_pending;
  if (disable_count(old) != 0) {
    st.fetch_and(~st_pending, std::memory_order_release);
    return claim_result::disabled;
  }
  return claim_result::claimed;
}

/// Gives up a pending instance claimed with claim_pending that was not linked anywhere.
inline void unclaim_pending(work& w) noexcept {
  work_access::state(w).fetch_and(~st_pending, std::memory_order_release);
}

/// The queueing sequence (rules 1, 3): claims `w`'s PENDING; if claimed, calls `link()`, which
/// returns a queue_status; if that is not queued, calls `give_back()` (the caller takes back
/// what it handed to the item: a reference, a pointer) and then gives up PENDING -- in that
/// order, so nobody can claim the item while it still holds the caller's reference.
/// Returns: already_pending, disabled, or what `link()` returned.
/// Thread safety: any thread. Memory ordering: as claim_pending and unclaim_pending.
template <class Link, class GiveBack>
queue_status claim_and_link(work& w, Link&& link, GiveBack&& give_back) noexcept {
  switch (claim_pending(w)) {
    case claim_result::already_pending: return queue_status::already_pending;
    case claim_result::disabled: return queue_status::disabled;
    case claim_result::claimed: break;
  }
  const queue_status st = link();
  if (st != queue_status::queued) {
    give_back();
    unclaim_pending(w);
  }
  return st;
}

}  // namespace wq::detail
