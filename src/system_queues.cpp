// SPDX-License-Identifier: BSL-1.0
// The lazily created system queues and their shutdown at exit.
#include <wq/system_queues.hpp>

namespace wq {
namespace {

// Each system queue is heap-allocated and never freed, so references to it stay valid during
// static destruction. A function-local static guard, constructed right after the queue, shuts
// it down at exit (destroy(): runs what is queued, cancels armed timers, joins threads);
// afterwards queueing is rejected instead of touching joined threads.
struct system_queue {
  workqueue* queue;
  explicit system_queue(workqueue* q) : queue(q) {}
  system_queue(const system_queue&) = delete;
  system_queue& operator=(const system_queue&) = delete;
  ~system_queue() { queue->destroy(); }
};

}  // namespace

workqueue& system_wq() {
  static system_queue q{new workqueue("events")};  // Safety: leaked on purpose (see above).
  return *q.queue;
}

workqueue& system_highpri_wq() {
  static system_queue q{new workqueue("events_highpri", queue_flags::highpri)};
  return *q.queue;
}

workqueue& system_long_wq() {
  static system_queue q{new workqueue("events_long", queue_flags::long_running)};
  return *q.queue;
}

workqueue& system_unbound_wq() {
  static system_queue q{new workqueue("events_unbound", queue_flags::unbound, max_max_active)};
  return *q.queue;
}

}  // namespace wq
