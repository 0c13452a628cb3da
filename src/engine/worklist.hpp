// SPDX-License-Identifier: BSL-1.0
// src/engine/worklist.hpp: the worklist (layer 1): linking queued items (active or inactive,
// rule 37), taking the next runnable one, and the counts drain and flush wait on (flush colors,
// rule 26). The state is queue_core::wl (worklist_state); every function requires the core's
// mutex held.
#pragma once

#include <cstddef>
#include <cstdint>

#include "queue_core.hpp"

namespace wq::detail {

/// Effects: records which list of its queue holds `w` (state bits LIST). Requires: mu held.
/// Memory ordering: relaxed (LIST is read only under the queue mutex, which orders it).
void set_list(work& w, list_kind kind) noexcept;

/// Effects: links the claimed item `w` on the worklist, or on the inactive list behind items
/// already inactive or beyond max_active (rule 37); counts it in flight (telling the executor
/// the queue is busy on the idle-to-busy edge) and in the current flush color; sets QUEUED, its
/// list, color and the queue id in its state word; samples it for the statistics.
/// Requires: mu held; the caller owns w's PENDING claim. Complexity: O(1).
void link_on_worklist(queue_core* core, work& w) noexcept;

/// Returns: the next item a worker may run, taken off the worklist, or off the inactive list
/// if fewer than max_active are active (activation, done here: see has_runnable); nullptr if
/// none. The item is still QUEUED (see mark_started). Requires: mu held.
work* pop_runnable(queue_core* core) noexcept;

/// Effects: puts `w` back at the front of the worklist (a worker handing back an item it took,
/// rule 45). Requires: mu held, `w` counted active.
void push_front_ready(queue_core* core, work& w) noexcept;

/// Effects: an item taken off its list stops being QUEUED; it stays PENDING until its
/// trampoline takes the queue's reference out ("starting": cancellers wait for that).
/// Returns: &w. Requires: mu held. Memory ordering: relaxed (QUEUED is read under mu).
work* mark_started(work& w) noexcept;

/// Effects: an instance of color `color` has left the queue (finished, cancelled or dropped):
/// uncounts it from flight (telling the executor on the busy-to-idle edge), from its color and,
/// if `active`, from the active count. Requires: mu held.
/// Returns: whether that was the last instance of `color` (a flush waiting for it may end).
bool uncount(queue_core* core, unsigned color, bool active) noexcept;

/// Whether a worker could take an item now: one is on the worklist, or one is inactive and
/// fewer than max_active are active. Requires mu held.
///
/// Activation (rule 37) is lazy: an inactive item becomes active when a worker takes it off
/// the inactive list, not when a finishing or cancelled item makes room. Every worklist item
/// is older than every inactive one (an item goes on the worklist only while nothing is
/// inactive), so which items run, in which order, and how many at once are the same as with
/// the kernel's activation on finish; the difference is one list move and one state RMW less
/// per item when a burst overflows max_active.
inline bool has_runnable(const queue_core* core) noexcept {
  return !core->wl.ready.empty() ||
         (!core->wl.inactive.empty() && core->wl.nr_active < core->wl.max_active);
}
/// Returns: the queue's max_active in effect. Requires: mu held.
inline int max_active_locked(const queue_core* core) noexcept { return core->wl.max_active; }

/// How many items a worker could take now (the worklist, and the inactive items max_active
/// leaves room for). Requires mu held.
inline std::size_t nr_runnable(const queue_core* core) noexcept {
  const int room = core->wl.max_active - core->wl.nr_active;
  return core->wl.ready.size() +
         (room > 0 ? std::min(core->wl.inactive.size(), static_cast<std::size_t>(room)) : 0);
}

}  // namespace wq::detail
