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

#include "support/io.hpp"
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

/// A C-style delayed item whose timer lives on a given io_context; counts its runs.
struct ctx_item {
  explicit ctx_item(boost::asio::io_context& io) : dw(wq::fn_ops<&ctx_item::fn>, io) {}
  std::atomic<int> runs{0};
  wq::delayed_work dw;
  static void fn(wq::work* w) noexcept {
    wq::container_of<&ctx_item::dw>(wq::to_delayed_work(w))->runs.fetch_add(1);
  }
};

}  // namespace wq_test
