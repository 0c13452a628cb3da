// SPDX-License-Identifier: BSL-1.0
// src/context_watch.hpp: tells a queue that the execution context of its executor (the
// application's io_context, thread_pool, ...) is being shut down or destroyed, through an Asio
// service of that context: Asio shuts a context's services down, newest first, before the
// scheduler destroys the handlers it still holds, so the queue hears it while the context is
// still whole and never touches it again.
//
// State and lock rules: one watch_list per context, shared by the service and the queues
// registered with it; its mutex guards the set of cores. Lock order: a queue's mutex before the
// list's (unwatch_context runs under the queue's mutex, at retirement); the service takes the
// list's mutex alone, copies the set, and only then each queue's mutex, reaching each queue by
// its id through the registry (a pin: the queue may have retired and been freed meanwhile).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/execution_context.hpp>

namespace wq::detail {

struct queue_core;

/// The queues registered with one context, and its completion gate
/// (wq/detail/completion_gate.hpp). Outlives the context: queues destroyed after it, and
/// operations still holding the gate, find it (marked gone, closed) through their shared
/// reference.
struct watch_list {
  std::mutex mu;
  std::unordered_map<queue_core*, std::uint64_t> cores;  // mu: core -> its id when registered
  bool gone = false;                                     // mu: the context was shut down
  // A (seq_cst): hand-offs inside the gate now, and whether the shutdown closed it (see
  // enter_context_gate). Never under mu.
  std::atomic<int> handing_off{0};
  std::atomic<bool> closed{false};
};

/// Returns: the watch list of `ctx`, made with its watch service on first use (the service
/// closes its gate and tells its queues when `ctx` shuts down). Thread safety: any thread.
/// Throws: std::bad_alloc.
std::shared_ptr<watch_list> watch_list_of(boost::asio::execution_context& ctx);

/// Effects: registers the queue `core` (with id `id`) with the watch service of `ctx` (created
/// on first use), so that shutting `ctx` down drops the queue's items (executor_context_gone)
/// instead of leaving armed timers to post into a destroyed context later.
/// Requires: the queue is being created (not yet shared); `ctx` is the context of its
/// executor and is not a pool wq owns. Thread safety: any thread (use_service is).
/// Throws: std::bad_alloc.
void watch_context(boost::asio::execution_context& ctx, queue_core* core, std::uint64_t id);

/// Effects: unregisters `core` from its context's watch, if any (the queue retires).
/// Requires: the queue's mutex held. Never touches the context, which may be gone.
void unwatch_context_locked(queue_core* core) noexcept;

}  // namespace wq::detail
