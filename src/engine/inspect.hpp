// SPDX-License-Identifier: BSL-1.0
// src/engine/inspect.hpp: reading a queue's state for people (layer 6): the statistics
// snapshot behind workqueue::stats() and the text of workqueue::dump(). Reads every mechanism's
// state; only dump_locked changes any (it links what producers left on the intake, so that
// those items show as waiting). Every function requires the core's mutex held.
#pragma once

#include <wq/stats.hpp>

#include <cstddef>
#include <string>

#include "queue_core.hpp"

namespace wq::detail {

/// Returns: the counters of the queue `core` named `name` (items still on the intake are not
/// counted: the caller links them first if it wants them). Requires: mu held. Throws:
/// std::bad_alloc (copying the name).
queue_stats snapshot_stats_locked(const queue_core* core, const std::string& name);

/// Returns: whether the queue's statistics are all zero (it never saw an item), so a snapshot
/// of them carries nothing but the name. Requires: mu held.
bool stats_empty_locked(const queue_core* core) noexcept;

/// Returns: whether items wait beyond max_active (the inactive list is not empty: the kernel's
/// workqueue_congested, rule 51). Requires: mu held.
bool congested_locked(const queue_core* core) noexcept;

/// Effects: names the item worker `slot` of `core` runs with `desc` (set_worker_desc) for dump().
/// Returns: false if out of memory for the text (nothing changed). Requires: mu held.
bool describe_locked(worker_slot& slot, const char* desc) noexcept;

/// Effects: appends to `out` the dump of the live queue `core` named `name` (workqueue::dump):
/// counters, the pool or executor it runs on, running items, then at most `limit` each of the
/// waiting, inactive and armed items, after linking the intake. Requires: mu held, `core` live.
/// Throws: std::bad_alloc.
void dump_locked(queue_core* core, const std::string& name, std::size_t limit, std::string& out);

}  // namespace wq::detail
