// SPDX-License-Identifier: BSL-1.0
// The lazily created system queues and their shutdown at exit.
#include <wq/system_queues.hpp>

#include <wq/cancel.hpp>
#include <wq/executor.hpp>

namespace wq {
namespace {

// Each system queue is heap-allocated and never freed, so references to it stay valid during
// static destruction (and LeakSanitizer sees it reachable from the guard). A function-local
// static guard, constructed right after the queue, shuts it down at exit (destroy(): runs what
// is queued, cancels armed timers, joins threads); afterwards queueing is rejected instead of
// touching joined threads. If the queue's construction throws (no memory, no threads), the
// guard is not constructed and the next call tries again.
//
// When exit() is called from one of the queue's own items, static destruction runs on that
// worker: the queue cannot wait for itself (§5.2), so the guard leaves it running instead of
// reporting a misuse the program did not commit; its other items may still run while the
// process ends, as on any thread pool.
struct system_queue {
  workqueue* queue;
  explicit system_queue(workqueue* q) : queue(q) { detail::queue_access::mark_system(*q); }
  system_queue(const system_queue&) = delete;
  system_queue& operator=(const system_queue&) = delete;
  ~system_queue() {
    if (queue->get_executor().running_in_this_thread()) return;
    (void)queue->destroy();
  }
};

}  // namespace

workqueue& system_wq() {
  static system_queue q{new workqueue("events")};  // Safety: leaked on purpose (see above).
  return *q.queue;
}

workqueue& system_highpri_wq() {
  static system_queue q{new workqueue("events_highpri", {.flags = queue_flags::highpri})};
  return *q.queue;
}

workqueue& system_long_wq() {
  static system_queue q{new workqueue("events_long", {.flags = queue_flags::long_running})};
  return *q.queue;
}

workqueue& system_unbound_wq() {
  static system_queue q{new workqueue(
      "events_unbound", {.flags = queue_flags::unbound, .max_active = max_max_active})};
  return *q.queue;
}

workqueue& system_percpu_wq() {
  static system_queue q{new workqueue("events")};
  return *q.queue;
}

workqueue& system_dfl_wq() {
  static system_queue q{new workqueue(
      "events_unbound", {.flags = queue_flags::unbound, .max_active = max_max_active})};
  return *q.queue;
}

workqueue& system_dfl_long_wq() {
  static system_queue q{new workqueue(
      "events_dfl_long",
      {.flags = queue_flags::unbound | queue_flags::long_running, .max_active = max_max_active})};
  return *q.queue;
}

workqueue& system_freezable_wq() {
  static system_queue q{new workqueue("events_freezable")};
  return *q.queue;
}

workqueue& system_power_efficient_wq() {
  static system_queue q{new workqueue("events_power_efficient")};
  return *q.queue;
}

workqueue& system_freezable_power_efficient_wq() {
  static system_queue q{new workqueue("events_freezable_pwr_efficient")};
  return *q.queue;
}

}  // namespace wq
