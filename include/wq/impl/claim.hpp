// SPDX-License-Identifier: BSL-1.0
// wq/impl/claim.hpp: claiming an item's PENDING bit (the kernel's
// test_and_set_bit(WORK_STRUCT_PENDING)) and the one claim -> link -> give-back sequence every
// queueing call follows. Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>
#include <wq/detail/engine.hpp>
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
    st.fetch_and(~(st_pending | st_coalesced), std::memory_order_release);
    return claim_result::disabled;
  }
  return claim_result::claimed;
}

/// Gives up a pending instance claimed with claim_pending that was not linked anywhere.
inline void unclaim_pending(work& w) noexcept {
  work_access::state(w).fetch_and(~(st_pending | st_coalesced), std::memory_order_release);
}

/// After a queueing call found `w` pending: marks the instance COALESCED (work_state.hpp) if it
/// is in transit (neither queued nor armed), so that if it is a claim its queue then refuses,
/// the refusal links it anyway and the instance this call was promised runs. If PENDING was
/// given up meanwhile, claims it instead.
/// Returns: already_pending (marked, or marked already), or claim_pending's result.
/// Thread safety: any thread. Memory ordering: the mark is relaxed: it orders nothing (the
/// failed claim's acq_rel RMW gave rule 7's ordering); the refusal reads it with an RMW.
inline claim_result mark_coalesced(work& w) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & st_pending) == 0) {
      const claim_result r = claim_pending(w);
      if (r != claim_result::already_pending) return r;
      s = st.load(std::memory_order_relaxed);
      continue;
    }
    // A queued or armed instance is no claim a refusal could give up, and the step that takes
    // it off its list or timer clears the mark (unlink_locked, disarm_locked): nothing to mark.
    if ((s & (st_coalesced | st_queued | st_armed)) != 0) return claim_result::already_pending;
    if (st.compare_exchange_weak(s, s | st_coalesced, std::memory_order_relaxed,
                                 std::memory_order_relaxed))
      return claim_result::already_pending;
  }
}

/// Returns: whether `w` is pending on no list and not armed (a claim on its way, a worker
/// starting it) or on an intake, as far as a relaxed load can tell (a hint for
/// wait_transit_as_worker, which decides).
inline bool in_transit(work& w) noexcept {
  return (work_access::state(w).load(std::memory_order_relaxed) & (st_queued | st_armed)) == 0;
}

/// Takes the COALESCED mark off `w`, whose PENDING the caller owns. Returns: whether a queueing
/// call was told already_pending while the caller held the claim. Memory ordering: acq_rel.
inline bool take_coalesced(work& w) noexcept {
  return (work_access::state(w).fetch_and(~st_coalesced, std::memory_order_acq_rel) &
          st_coalesced) != 0;
}

/// Gives up the claimed, unlinked `w` (as unclaim_pending) unless a queueing call marked it
/// COALESCED since the caller last took the mark: then keeps the claim. One compare-exchange
/// decides both, so a call told already_pending always finds the claim still held by its owner.
/// Returns: whether the claim was given up. Memory ordering: release on giving up (as
/// unclaim_pending); finding the mark orders nothing (the take_coalesced that follows does).
inline bool give_up_unless_coalesced(work& w) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & st_coalesced) != 0) return false;
    if (st.compare_exchange_weak(s, s & ~st_pending, std::memory_order_release,
                                 std::memory_order_relaxed))
      return true;
  }
}

/// What a queueing call whose link of its claimed `w` returned `st` does next (rules 1, 7): if
/// the queue refused the claim (rejected) while another queueing call was told already_pending,
/// that call's instance is this one: `link(true)` links it again, accepted by a draining queue
/// as its own chained work is (not by a dying one: a call from a work function waited instead,
/// see wait_transit_as_worker). A claim that stays refused calls `give_back()` (the caller takes
/// back what it handed to the item: a reference, a pointer) and then gives up PENDING -- in that
/// order, so nobody can claim the item while it still holds the caller's reference -- unless a
/// call coalesced into it meanwhile: then `rehand()` hands the item back what give_back took and
/// the claim is linked again as above. `link(true)` must not hand the item anything again.
/// Returns: queued (linked, PENDING kept) or the last refusal (PENDING given up).
/// Thread safety: the caller owns `w`'s PENDING. Memory ordering: as unclaim_pending.
template <class Link, class GiveBack, class Rehand>
queue_status settle_claim(work& w, queue_status st, Link&& link, GiveBack&& give_back,
                          Rehand&& rehand) noexcept {
  while (st != queue_status::queued) {
    if (take_coalesced(w)) {
      st = link(true);
      continue;
    }
    give_back();
    if (give_up_unless_coalesced(w)) break;
    rehand();  // marked between take_coalesced and the give-up: the next take finds it
  }
  return st;
}

/// The queueing sequence (rules 1, 3): claims `w`'s PENDING (a call that finds it pending marks
/// it COALESCED), calls `link(false)`, which returns queued or rejected, and settles the claim
/// (settle_claim, which says what `link(true)`, `give_back` and `rehand` must do).
/// Returns: already_pending, disabled, or what settle_claim returned.
/// Thread safety: any thread. Memory ordering: as claim_pending and unclaim_pending.
template <class Link, class GiveBack, class Rehand>
queue_status claim_and_link(work& w, Link&& link, GiveBack&& give_back, Rehand&& rehand) noexcept {
  claim_result c = claim_pending(w);
  // A call from a work function waits out a transit (wait_transit_as_worker); every other
  // caller marks the instance it coalesced into.
  while (c == claim_result::already_pending && in_transit(w) && wait_transit_as_worker(w))
    c = claim_pending(w);
  if (c == claim_result::already_pending) c = mark_coalesced(w);
  switch (c) {
    case claim_result::already_pending: return queue_status::already_pending;
    case claim_result::disabled: return queue_status::disabled;
    case claim_result::claimed: break;
  }
  return settle_claim(w, link(false), link, give_back, rehand);
}

}  // namespace wq::detail
