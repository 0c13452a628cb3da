// SPDX-License-Identifier: BSL-1.0
// src/engine/intake.hpp: the intake (layer 1): plain queueing from any thread pushes a claimed
// item here without the queue's mutex while the queue accepts it, so producers do not contend
// with workers for the mutex. The state is queue_core::in (intake_state); only a holder of the
// mutex takes items off, and only the queueing layer links them (queueing.hpp).
//
// The word holds the queue's generation in its top 16 bits and the newest item (a Treiber stack
// chained through the items' unused list hooks) or intake_closed in the rest.
#pragma once

#include <atomic>
#include <cstdint>

#include "queue_core.hpp"

namespace wq::detail {

inline constexpr unsigned intake_tag_shift = 48;
inline constexpr std::uintptr_t intake_ptr_mask = (std::uintptr_t{1} << intake_tag_shift) - 1;
inline constexpr std::uintptr_t intake_closed = 1;  // no item is at this address
constexpr std::uintptr_t intake_tag(std::uint32_t gen) noexcept {
  return std::uintptr_t{gen} << intake_tag_shift;
}

/// What try_push did.
enum class push_result {
  pushed,               ///< on the intake: the queueing succeeded
  pushed_needs_worker,  ///< on the intake, but no worker is running or on its way: the caller
                        ///< must lock the queue and start one (workers.hpp)
  not_pushed,           ///< take the locked path
  closed,               ///< take the locked path; on_queued was already reported (a drain or
                        ///< destroy closed the intake while this call pushed)
};

/// Effects: tries to queue the claimed item `w` on queue `id` through its intake, without the
/// mutex; reports the queueing to the observer and the trace before the push (once pushed, the
/// item may run and be freed at any moment). Leaves the claim to the caller, who takes the
/// locked path, if the queue does not accept plain queueing now (destroyed, dying, draining:
/// the intake is closed), has no worker busy (the locked path starts one in the same critical
/// section), or the item's address cannot be tagged.
/// Requires: the caller owns w's PENDING claim; mu not held.
/// Memory ordering: the push is seq_cst and is followed by a seq_cst load of `saturated`: a
/// store-load pair against a worker going idle (take_next in workers.cpp), so either the worker
/// sees the item or this call returns pushed_needs_worker.
push_result try_push(queue_core* core, std::uint64_t id, work& w, const location* where) noexcept;

/// Returns: the items on the intake, oldest first, chained through intake_next, and empties
/// it; nullptr if it is empty or closed. Requires: mu held.
/// Memory ordering: acquire (pairs with the pushes, publishing each item's state and link).
work* take_intake(queue_core* core) noexcept;
/// Effects: closes the intake (no producer can push from now on) and returns what was on it, as
/// take_intake. Requires: mu held.
work* close_intake(queue_core* core) noexcept;
/// Effects: reopens a closed intake. Requires: mu held, the intake closed (so nothing is on it
/// and no producer changes it).
void reopen_intake(queue_core* core) noexcept;
/// Effects: tags the intake with the core's current generation, open or closed, dropping
/// nothing: producers holding an older id then take the locked path, which refuses them.
/// Requires: mu held, the intake empty.
void retag_intake(queue_core* core, bool closed) noexcept;

/// Returns: whether items wait on the intake. `order` is the load's: seq_cst where it pairs with
/// a producer's push (see try_push), relaxed where the mutex orders the answer enough.
inline bool intake_nonempty(const queue_core* core,
                            std::memory_order order = std::memory_order_relaxed) noexcept {
  return (core->in.word.load(order) & intake_ptr_mask) > intake_closed;
}

/// Returns: the next (newer) item of a chain returned by take_intake or close_intake.
work* intake_next(work& w) noexcept;

}  // namespace wq::detail
