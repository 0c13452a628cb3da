// SPDX-License-Identifier: BSL-1.0
// wq/ordered_workqueue.hpp: `ordered_workqueue`, a workqueue that runs one item at a time in
// queueing order (the kernel's alloc_ordered_workqueue, rule 39), on a strand.
//
// Ordering guarantee, precisely: if queueing call A returns `queued` and happens before
// queueing call B, then A's item finishes before B's item starts. Delayed items take their place in
// the order when their timer fires, not when they were armed. At most one item of the queue runs at
// any time (max_active 1, fixed).
//
// Built on your strand, work items also serialise with the other handlers of that strand (for
// example a socket's handlers), so a session's state needs no lock.
//
// Thread safety: as workqueue.
#pragma once

#include <wq/config.hpp>

#include <string_view>

#include <wq/workqueue.hpp>

namespace wq {

/// A workqueue with max_active 1 and FIFO order (rule 39). The only way to create an ordered
/// queue: code that relies on one-at-a-time execution says so in its types.
class ordered_workqueue : public workqueue {
 public:
  /// Creates an ordered queue on the shared unbound pool (wq/pool.hpp; no thread starts), or
  /// with `options.threads` N on a strand of a private pool of N threads.
  /// `options.max_active` must be 0 or 1 (anything else is reported, errc::max_active_clamped,
  /// and 1 is used). Throws: as workqueue's constructor.
  explicit ordered_workqueue(std::string_view name, const queue_options& options = {})
      : workqueue(name, options, true) {}

  /// Creates an ordered queue on `ex`: on `ex` itself if it is a `boost::asio::strand` (or an
  /// any_io_executor holding one), sharing its serialisation; on a new strand of `ex`
  /// otherwise. Throws: as workqueue's executor constructor.
  template <class Executor>
  requires boost::asio::execution::executor<Executor> ordered_workqueue(
      const Executor& ex, std::string_view name, const queue_options& options = {})
      : workqueue(ex, name, options, true) {}

  /// Creates an ordered queue on a new strand of `ctx.get_executor()`.
  template <class ExecutionContext>
  requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
  ordered_workqueue(ExecutionContext& ctx, std::string_view name, const queue_options& options = {})
      : workqueue(ctx.get_executor(), name, options, true) {}

  /// Ordered queues refuse changes of max_active (rule 38); see workqueue::set_max_active.
  using workqueue::set_max_active;
};

}  // namespace wq
