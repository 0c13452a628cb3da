// SPDX-License-Identifier: BSL-1.0
// src/engine/engine.hpp: what the engine's facade (engine.cpp) offers the library's own
// public-API files besides its entry points (wq/detail/engine.hpp).
#pragma once

#include <wq/delayed_work.hpp>

#include "../virtual_time.hpp"

namespace wq::detail {

/// Effects: gives an armed item a real timer wait for `deadline` (stored as its deadline):
/// starts one if none is outstanding, else makes sure the outstanding one completes no later
/// than `deadline` (its completion re-arms lazily). Requires: the mutex of the queue it is
/// ARMED for. Memory ordering: acq_rel on the state (as arm_locked, timers.hpp).
void arm_real_wait_locked(delayed_work& dw, clock_point deadline) noexcept;

/// Effects: the execution context of the queue `core` (with id `id`) is being shut down or
/// destroyed: unless it already knows, the queue drops its queued, inactive, deferred and armed
/// items unrun (references released, notice items_dropped), refuses all queueing from now on,
/// ends its outstanding work on the context and destroys its executor copy, so nothing of the
/// queue touches the context again. Does nothing if the queue is gone (stale `id`).
/// Requires: called by the context's watch service, while the context is still whole; no wq
/// lock held. Thread safety: any thread; takes the queue's mutex.
void executor_context_gone(queue_core* core, std::uint64_t id) noexcept;

}  // namespace wq::detail
