// SPDX-License-Identifier: BSL-1.0
// Helpers shared by the work item tests: io_context drivers (so a queue on a private io_context
// is always drained, even when an assertion fails), a counted base for ownership tests, and a
// bounded spin on a relaxed flag (for tests that must not create a happens-before edge of
// their own).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/work.hpp>

#include "support/test_support.hpp"

namespace wq_test {

/// Runs `io` to completion when it goes out of scope. Declare it *after* the workqueue that
/// posts to `io`, so that a failed REQUIRE between queueing and running still lets the queue's
/// destructor (which waits for queued items) finish instead of hanging.
class drive_on_exit {
 public:
  explicit drive_on_exit(boost::asio::io_context& io) : io_(io) {}
  drive_on_exit(const drive_on_exit&) = delete;
  drive_on_exit& operator=(const drive_on_exit&) = delete;
  ~drive_on_exit() {
    io_.restart();
    io_.run();
  }

 private:
  boost::asio::io_context& io_;
};

/// Runs the handlers `io` has ready without blocking, even if an earlier run/poll stopped it
/// by running out of work. Returns the number of handlers run.
inline std::size_t poll(boost::asio::io_context& io) {
  io.restart();
  return io.poll();
}

/// An io_context run by one dedicated thread until this object is destroyed; records the id of
/// that thread so tests can tell which executor ran an item.
class io_thread {
 public:
  io_thread() : thread_([this] { io_.run(); }) {}
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;
  ~io_thread() { stop(); }

  boost::asio::io_context& context() noexcept { return io_; }
  [[nodiscard]] std::thread::id id() const noexcept { return thread_.get_id(); }

  /// Lets the thread finish the handlers it has and joins it. Idempotent.
  void stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    thread_.join();
  }

 private:
  boost::asio::io_context io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_{
      io_.get_executor()};
  std::thread thread_;
};

/// Counts constructions and destructions of the derived object in a lifetime_counter.
class counted {
 public:
  explicit counted(lifetime_counter& c) : counter_(c) { counter_.constructed.fetch_add(1); }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  ~counted() { counter_.destroyed.fetch_add(1); }

 private:
  lifetime_counter& counter_;
};

/// Spins (yielding) until `flag` reads true with a relaxed load, for at most `timeout`.
/// Deliberately relaxed: tests use it where any synchronisation of their own would hide a
/// missing happens-before edge in the library from ThreadSanitizer.
[[nodiscard]] inline bool spin_until_set(
    const std::atomic<bool>& flag, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!flag.load(std::memory_order_relaxed)) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::yield();
  }
  return true;
}

/// A C-style delayed item whose timer lives on a given io_context; counts its runs.
struct ctx_item {
  explicit ctx_item(boost::asio::io_context& io) : dw(wq::fn_ops<&ctx_item::fn>, io) {}
  std::atomic<int> runs{0};
  wq::delayed_work dw;
  static void fn(wq::work* w) noexcept {
    wq::container_of<&ctx_item::dw>(static_cast<wq::delayed_work*>(w))->runs.fetch_add(1);
  }
};

}  // namespace wq_test
