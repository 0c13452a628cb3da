// SPDX-License-Identifier: BSL-1.0
// wq/observer.hpp: `observer`, hooks for the life of each work item on a queue — queued,
// activated, started, finished — the kernel's workqueue tracepoints
// (workqueue_queue_work, workqueue_activate_work, workqueue_execute_start/_end), plus
// `location`, the source position of a queueing call, and `work_name`, an item's name.
//
// Install one observer per queue with `workqueue::set_observer`. Without one, each event costs
// one relaxed atomic load. Hooks are noexcept and run on the thread where the event happens:
//   - on_queued: the queueing thread, when the item becomes pending (queued or armed), with
//     the `location` of the queueing call (every queueing function takes it as a defaulted last
//     argument; mod_delayed_work and enable_and_queue_work report an empty location), before
//     the item is visible to any worker, so that it cannot have run (and been freed) yet. It
//     may run under the queue's internal lock. In one race (another thread starts drain() or
//     destroy() while this call is queueing) it reports an item the queue then refuses, and
//     the queueing call returns queue_status::rejected;
//   - on_activated: under the queue's internal lock, when an item leaves the inactive list
//     because max_active allows it (rule 37). wq activates when a worker takes the item, so
//     this comes right before its on_started (the kernel activates when an earlier item
//     finishes; which items run, and in which order, is the same);
//   Keep both short and do not call into wq from them.
//   - on_started / on_finished: the worker, right before and after the work function, outside
//     any lock. on_finished gets only the item's address: the function may have freed it
//     (rule 4).
// A hook must not call blocking wq functions on the same queue (they could wait for the very
// worker that runs the hook).
//
// Thread safety: hooks may be called concurrently from several threads. set_observer may be
// called at any time; hooks already running on other threads may still be using the previous
// observer, so keep an observer alive until the queue is destroyed.
#pragma once

#include <wq/config.hpp>

#include <string_view>

#include <wq/work.hpp>

namespace wq {

/// The source position of a call, captured by a defaulted argument (like std::source_location,
/// which clang 14 cannot provide with libstdc++ 12).
struct location {
  const char* file = "";
  unsigned line = 0;
  const char* function = "";

  /// The caller's position when used as a default argument.
  static constexpr location current(const char* file = __builtin_FILE(),
                                    unsigned line = __builtin_LINE(),
                                    const char* function = __builtin_FUNCTION()) noexcept {
    return {file, line, function};
  }
};

/// The name of an item: "<class>::<member>" for typed items ("app::session::flush"), the work
/// function's name for C-style ones, or "unbound" for an item never queued through the typed
/// API and built without a function.
[[nodiscard]] const char* work_name(const work& item) noexcept;

/// Receives the events of one queue. Override the hooks you need.
class observer {
 public:
  virtual ~observer() = default;
  /// `item` became pending on `queue` (queued, or armed if `delayed`), called from `where`.
  virtual void on_queued(std::string_view queue, const work& item, bool delayed,
                         const location& where) noexcept {
    (void)queue, (void)item, (void)delayed, (void)where;
  }
  /// `item` left the inactive list (rule 37). Called under the queue's lock.
  virtual void on_activated(std::string_view queue, const work& item) noexcept {
    (void)queue, (void)item;
  }
  /// The work function of `item` is about to run.
  virtual void on_started(std::string_view queue, const work& item) noexcept {
    (void)queue, (void)item;
  }
  /// The work function of the item at `item` (possibly freed) returned; `name` is its name.
  virtual void on_finished(std::string_view queue, const void* item, const char* name) noexcept {
    (void)queue, (void)item, (void)name;
  }
};

}  // namespace wq
