// SPDX-License-Identifier: BSL-1.0
// wq/wq.hpp: the umbrella header: includes every public wq header.
//
// wq brings the Linux kernel's workqueues to Boost.Asio programs: work items embedded in the
// objects they act on, delayed items with their own timer, queues on any Asio executor with the
// kernel's queueing, ordering and shutdown semantics, and the typed ownership of the kernel's
// Rust bindings. Start with work.hpp and workqueue.hpp.
//
// Thread safety: see each header.
#pragma once

#include <wq/config.hpp>

#include <wq/async.hpp>
#include <wq/blocking_region.hpp>
#include <wq/cancel.hpp>
#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/diagnostics.hpp>
#include <wq/executor.hpp>
#include <wq/flags.hpp>
#include <wq/flush.hpp>
#include <wq/fwd.hpp>
#include <wq/jiffies.hpp>
#include <wq/kernel.hpp>
#include <wq/observer.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/pool.hpp>
#include <wq/post_delayed.hpp>
#include <wq/queue_options.hpp>
#include <wq/queue_status.hpp>
#include <wq/shared_work.hpp>
#include <wq/spawn.hpp>
#include <wq/stats.hpp>
#include <wq/system_queues.hpp>
#include <wq/test_clock.hpp>
#include <wq/watchdog.hpp>
#include <wq/work.hpp>
#include <wq/work_pointer.hpp>
#include <wq/workqueue.hpp>
