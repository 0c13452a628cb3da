// SPDX-License-Identifier: BSL-1.0
// Queue kinds and small helpers shared by wq's queue tests.
//
// The kinds are the queues a contract suite runs against (TEMPLATE_TEST_CASE over them): a named
// queue on the shared pool, a queue owning a private thread pool, an ordered queue on the shared
// unbound pool, a queue on a user's io_context run by two threads of the test, and an ordered
// queue on a strand of a user's asio::thread_pool.
// Each kind owns everything its queue runs on and tears it down in the right order: the queue
// first (which drains it), then the executor.
//
// The helpers: `fn_item` and `fn_delayed_item`, raw-pointer items running a std::function;
// `concurrency_probe`, which tracks how many items run at once. (io_runner is in
// support/io.hpp; warning_catcher, which can also open a latch when a given diagnostic arrives,
// and poll_until are in support/test_support.hpp.)
//
// Thread safety: the helpers are thread-safe where stated; a kind object is used by one test.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <wq/ordered_workqueue.hpp>
#include <wq/workqueue.hpp>

#include "support/io.hpp"
#include "support/test_support.hpp"

namespace wq_test {

/// How long a test waits for something that must NOT happen. A correct library never makes the
/// awaited event happen, so this window only bounds how long a broken one has to show itself;
/// every such wait in the tests has idle threads ready to run the forbidden event at once.
inline constexpr std::chrono::milliseconds must_not_happen{100};

/// A work item queued by raw pointer that runs `body`. The caller keeps it alive until it has
/// run (declare items before the queue, so the queue's destructor drains first).
struct fn_item {
  wq::work w;
  std::function<void(fn_item&)> body;
  explicit fn_item(std::function<void(fn_item&)> b) : body(std::move(b)) {}
  static void run(fn_item* self, wq::id<&fn_item::w>) noexcept { self->body(*self); }
};

/// A delayed work item queued by raw pointer that runs `body`; same lifetime rule as fn_item.
struct fn_delayed_item {
  wq::delayed_work d;
  std::function<void(fn_delayed_item&)> body;
  explicit fn_delayed_item(std::function<void(fn_delayed_item&)> b) : body(std::move(b)) {}
  static void run(fn_delayed_item* self, wq::id<&fn_delayed_item::d>) noexcept {
    self->body(*self);
  }
};

/// Queues `item` on `q` by raw pointer; returns the status.
inline wq::queue_status enqueue(wq::workqueue& q, fn_item& item) {
  return q.enqueue<&fn_item::w>(&item).status;
}

/// Arms `item` on `q` by raw pointer; returns the status.
template <class Delay>
wq::queue_status enqueue_delayed(wq::workqueue& q, fn_delayed_item& item, Delay delay) {
  return q.enqueue_delayed<&fn_delayed_item::d>(&item, delay).status;
}

/// Tracks the number of items inside enter()/leave() and its maximum. Thread-safe.
struct concurrency_probe {
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  std::atomic<int> entered{0};
  void enter() noexcept {
    const int now = running.fetch_add(1) + 1;
    int seen = max_running.load();
    while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
    }
    entered.fetch_add(1);
  }
  void leave() noexcept { running.fetch_sub(1); }
};

// ---- the queue kinds -----------------------------------------------------------------------

/// `wq::workqueue{"c"}`: a named queue on the shared normal pool (wq/pool.hpp), max_active 1024.
struct shared_pool_kind {
  static constexpr bool ordered = false;
  wq::workqueue q{"c"};
  wq::workqueue& queue() noexcept { return q; }
};

/// `wq::workqueue{"c", none, 0, 2}`: owns a private thread pool of 2 threads.
struct private_pool_kind {
  static constexpr bool ordered = false;
  wq::workqueue q{"c", {.threads = 2}};
  wq::workqueue& queue() noexcept { return q; }
};

/// `wq::ordered_workqueue{"c"}`: on the shared unbound pool; FIFO, one item at a time.
struct ordered_kind {
  static constexpr bool ordered = true;
  wq::ordered_workqueue q{"c"};
  wq::workqueue& queue() noexcept { return q; }
};

/// A queue on a user's io_context run by two threads of the test.
struct io_context_kind {
  static constexpr bool ordered = false;
  io_runner runner{2};
  wq::workqueue q{runner.context(), "c"};
  wq::workqueue& queue() noexcept { return q; }
};

/// An ordered queue on a strand of a user's asio::thread_pool(2).
struct user_strand_kind {
  static constexpr bool ordered = true;
  boost::asio::thread_pool pool{2};
  wq::ordered_workqueue q{boost::asio::make_strand(pool), "c"};
  wq::workqueue& queue() noexcept { return q; }
};

}  // namespace wq_test
