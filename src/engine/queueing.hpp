// SPDX-License-Identifier: BSL-1.0
// src/engine/queueing.hpp: from the intake to the worklist (layer 2). Everything on the lists is
// older than everything on the intake: a locked queueing takes the intake first, so per
// producer thread items keep their order (rules 37, 39). Every function requires the core's
// mutex held.
#pragma once

#include "queue_core.hpp"

namespace wq::detail {

/// Effects: moves the intake's items onto the lists, oldest first, counting them as queued.
/// Returns: whether there were any. Requires: mu held.
bool take_intake_locked(queue_core* core) noexcept;
/// Effects: closes the intake (dying, draining: from now on queueing takes the locked path,
/// rule 17) and moves what was on it onto the lists. Requires: mu held.
void close_intake_locked(queue_core* core) noexcept;
/// Effects: reopens a closed intake if the queue accepts plain queueing again (live, not dying,
/// not draining). Requires: mu held.
void open_intake_locked(queue_core* core) noexcept;
/// Effects: links the claimed item `w` behind what is on the intake (take_intake_locked, then
/// link_on_worklist). Starts no worker (see queue_locked in workers.hpp). Requires: mu held;
/// the caller owns w's PENDING claim.
void link_locked(queue_core* core, work& w) noexcept;

}  // namespace wq::detail
