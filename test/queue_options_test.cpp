// SPDX-License-Identifier: BSL-1.0
// Tests for wq/queue_options.hpp: the options struct of the queue constructors, its defaults,
// designated initializers, and the refusal of a private pool on a queue given an executor.
#include <wq/queue_options.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <wq/ordered_workqueue.hpp>
#include <wq/workqueue.hpp>

#include "support/test_support.hpp"

TEST_CASE("queue_options: an aggregate whose defaults are a queue without options",
          "[queue_options]") {
  STATIC_REQUIRE(std::is_aggregate_v<wq::queue_options>);
  constexpr wq::queue_options none{};
  STATIC_REQUIRE(none.flags == wq::queue_flags::none);
  STATIC_REQUIRE(none.max_active == 0);
  STATIC_REQUIRE(none.threads == 0);
  constexpr wq::queue_options some{.max_active = 3};
  STATIC_REQUIRE(some.flags == wq::queue_flags::none);
  STATIC_REQUIRE(some.max_active == 3);
  wq::workqueue q{"options", {.flags = wq::queue_flags::unbound, .max_active = 3}};
  CHECK(q.flags() == wq::queue_flags::unbound);
  CHECK(q.max_active() == 3);
  CHECK_FALSE(q.ordered());
}

TEST_CASE(
    "queue_options: threads gives a private pool that runs the queue's items "
    "(rule 37)",
    "[queue_options][rule37]") {
  wq::workqueue q{"private", {.max_active = 8, .threads = 2}};
  CHECK(q.max_active() == 8);
  std::atomic<bool> ran{false};
  boost::asio::post(q.get_executor(), [&] { ran.store(true, std::memory_order_relaxed); });
  CHECK_FALSE(q.flush());
  CHECK(ran.load(std::memory_order_relaxed));
  wq::ordered_workqueue o{"private-ordered", {.threads = 2}};
  CHECK(o.ordered());
  CHECK(o.max_active() == 1);
}

TEST_CASE(
    "queue_options: threads with an executor is refused with std::invalid_argument, "
    "nothing created",
    "[queue_options][bad_input]") {
  boost::asio::io_context io;
  CHECK_THROWS_AS((wq::workqueue{io, "on-io", {.threads = 2}}), std::invalid_argument);
  CHECK_THROWS_AS((wq::workqueue{io.get_executor(), "on-io-ex", {.threads = 1}}),
                  std::invalid_argument);
  CHECK_THROWS_AS((wq::ordered_workqueue{io, "ordered-on-io", {.threads = 1}}),
                  std::invalid_argument);
  try {
    wq::workqueue q{io, "named", {.threads = 1}};
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("'named'") != std::string::npos);
  }
  // The refusals left no outstanding work on the io_context: run() has nothing to wait for and
  // stops at once (a leaked queue or guard would keep it running until the time limit).
  CHECK(io.run_for(std::chrono::seconds(5)) == 0);
  CHECK(io.stopped());
  io.restart();
  // And a queue made afterwards on the same io_context works.
  wq::workqueue q{io, "after"};
  CHECK_FALSE(q.destroy());
}
