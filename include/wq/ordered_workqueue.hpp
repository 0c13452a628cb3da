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

/// A workqueue with max_active 1 and FIFO order (rule 39).
class ordered_workqueue : public workqueue {
 public:
  /// Creates an ordered queue on the shared unbound pool (wq/pool.hpp): no thread starts.
  /// Throws: std::bad_alloc.
  explicit ordered_workqueue(std::string_view name) : workqueue(name, queue_flags::ordered, 1, 0) {}

  /// Creates an ordered queue on `ex`: on `ex` itself if it is a `boost::asio::strand`
  /// (sharing its serialisation), on a new strand of `ex` otherwise.
  template <class Executor>
  requires boost::asio::execution::executor<Executor> ordered_workqueue(const Executor& ex,
                                                                        std::string_view name)
      : workqueue(ex, name, queue_flags::ordered, 1) {}

  /// Ordered queues refuse changes of max_active (rule 38); see workqueue::set_max_active.
  using workqueue::set_max_active;
};

/// Returns a new ordered queue on the shared unbound pool (kernel `alloc_ordered_workqueue`).
[[nodiscard]] inline std::unique_ptr<ordered_workqueue> alloc_ordered_workqueue(
    std::string_view name) {
  return std::make_unique<ordered_workqueue>(name);
}

}  // namespace wq
