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
// `io_runner`, an io_context run by threads it joins; `concurrency_probe`, which tracks how many items run at
// once; `warning_signal`, a warning handler that opens a latch when a message matches (how a
// test learns that destroy() has started, without sleeping); `poll_until`.
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

#include "support/test_support.hpp"

namespace wq_test {

/// How long a test waits for something that must happen (a failure instead of a hang).
inline constexpr std::chrono::milliseconds must_happen{5000};
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

/// An io_context run by `n` threads until this object is destroyed (declare queues using it
/// after it, so they are destroyed first).
class io_runner {
 public:
  explicit io_runner(unsigned n = 1) {
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { ctx_.run(); });
  }
  ~io_runner() {
    guard_.reset();
    for (auto& t : threads_) t.join();
  }
  io_runner(const io_runner&) = delete;
  io_runner& operator=(const io_runner&) = delete;
  boost::asio::io_context& context() noexcept { return ctx_; }

 private:
  boost::asio::io_context ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      ctx_.get_executor()};
  std::vector<std::thread> threads_;
};

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

/// While alive, every diagnostic is swallowed and one with code `code` counts `fired` down. Installs its own handler (restoring the previous one on destruction); at most one
/// warning_signal or warning_catcher may be alive at a time.
class warning_signal {
 public:
  explicit warning_signal(wq::errc code) : previous_(nullptr) {
    state().code = code;
    state().fired = &fired;
    state().count.store(0);
    previous_ = wq::set_diagnostic_handler(&handler);
  }
  ~warning_signal() {
    wq::set_diagnostic_handler(previous_);
    state().fired = nullptr;
  }
  warning_signal(const warning_signal&) = delete;
  warning_signal& operator=(const warning_signal&) = delete;

  /// Counts down once per matching warning.
  latch fired{1};
  /// Number of matching warnings so far.
  [[nodiscard]] int count() const noexcept { return state().count.load(); }

 private:
  struct shared_state {
    wq::errc code{};               // written before the handler is installed
    latch* fired = nullptr;        // idem
    std::atomic<int> count{0};
  };
  static shared_state& state() {
    static shared_state s;
    return s;
  }
  static void handler(const wq::diagnostic& d) noexcept {
    if (d.code != state().code) return;
    state().count.fetch_add(1);
    state().fired->count_down();
  }
  wq::diagnostic_handler previous_;
};

/// Calls `attempt` until it returns true or `timeout` passes; yields between attempts. Used only
/// where a state change has no notification of its own (e.g. "drain() has started"), never to
/// wait for time to pass. Returns whether `attempt` succeeded.
template <class F>
bool poll_until(F&& attempt, std::chrono::milliseconds timeout = must_happen) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!attempt()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

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
  wq::workqueue q{"c", wq::queue_flags::none, 0, 2};
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
