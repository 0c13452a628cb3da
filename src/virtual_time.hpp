// SPDX-License-Identifier: BSL-1.0
// src/virtual_time.hpp: the process-wide virtual time a wq::test_clock installs, and the two
// delayed-item steps the clock drives (private to the library).
//
// The whole cost to arming and firing when no test clock exists is one relaxed load of
// `virtual_now`, made under the target queue's mutex. Reading it there is what makes
// installation and removal safe without any other synchronisation: the clock stores the value
// before it locks each queue to look at its armed items, so an arming that locked the queue
// later reads the new value, and one that locked it earlier has linked its item where the
// clock's walk finds it.
#pragma once

#include <atomic>
#include <chrono>

#include <wq/delayed_work.hpp>

namespace wq::detail {

struct queue_core;

using clock_point = std::chrono::steady_clock::time_point;

/// `virtual_now` holds this while no test_clock is installed.
inline constexpr clock_point no_virtual_time = clock_point::min();

/// The current virtual time while a test_clock is installed, else no_virtual_time. One atomic,
/// so a reader gets "installed" and "what time" from one load, never a mix of two clocks.
/// Written by the test clock only; read with relaxed loads (see the file comment).
extern std::atomic<clock_point> virtual_now;

/// Queues an item of `core` whose deadline has come, exactly as its timer firing would: off the
/// armed list, then onto the queue (or the deferred list while the queue drains, rule 49).
/// `wait_done`: the caller is the item's Asio wait completing, so IN_FLIGHT is cleared too;
/// otherwise (the test clock) an outstanding wait keeps IN_FLIGHT and later finds the item no
/// longer ARMED. Requires core->mu held, the item ARMED for `core`.
void queue_expired_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept;

/// Gives an armed item a real timer wait for `deadline` (stored as its deadline): starts one
/// if none is outstanding, else makes sure the outstanding one completes no later than
/// `deadline` (its completion re-arms lazily). Requires the mutex of the queue it is ARMED for.
void arm_real_wait_locked(delayed_work& dw, clock_point deadline) noexcept;

/// Waits until no arming thread is starting a wait on `dw`'s timer outside the queue's mutex
/// (timer discipline (c), delayed_work.cpp). Every other toucher of the timer calls this first.
void wait_timer_idle(delayed_work& dw) noexcept;

}  // namespace wq::detail
