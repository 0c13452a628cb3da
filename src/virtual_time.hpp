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

}  // namespace wq::detail
