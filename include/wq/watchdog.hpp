// SPDX-License-Identifier: BSL-1.0
// wq/watchdog.hpp: `watchdog`, a stall detector for every live workqueue in the process (the
// kernel's workqueue lockup detector). From its own thread it looks at the queues every quarter
// of `threshold` and reports through the diagnostic handler (wq/diagnostics.hpp), once per
// stall:
//   - errc::item_stalled: a work function has been running for longer than `threshold`
//     (names the queue, the item and the worker);
//   - errc::queue_stalled: a queue has had items waiting to start, and started none, for longer
//     than `threshold` (e.g. its executor's threads are all blocked, or it is paused — paused
//     queues are not reported).
// A stall is reported again only after it ended (the item finished, the queue started
// something). Detection costs the queues nothing: workers already count the items they start,
// and the watchdog compares those counts under each queue's lock.
//
// Thread safety: construct and destroy from one thread; reports() and check_now() may be called
// from any thread.
#pragma once

#include <wq/config.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

namespace wq {

class watchdog {
 public:
  /// Starts watching. Preconditions: threshold >= 1 ms (smaller values are raised to 1 ms).
  /// Throws: std::system_error if the thread cannot be started, std::bad_alloc.
  explicit watchdog(std::chrono::milliseconds threshold);
  /// Stops watching (joins the thread).
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// Number of stalls reported so far.
  [[nodiscard]] std::uint64_t reports() const noexcept;
  /// Looks at every queue now, as the thread does periodically. Returns the stalls it reported.
  std::size_t check_now();

 private:
  struct state;
  std::unique_ptr<state> state_;
  std::thread thread_;
};

}  // namespace wq
