// SPDX-License-Identifier: BSL-1.0
// workqueue.hpp on its own is enough to use a queue's executor with Asio (issue 16: no second
// include for get_executor()). This file must include no other wq header.
#include <wq/workqueue.hpp>

#include <atomic>
#include <thread>

#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

TEST_CASE("workqueue: workqueue.hpp alone gives get_executor() a usable Asio executor",
          "[workqueue]") {
  wq::workqueue q{"include-only"};
  std::atomic<bool> ran{false};
  std::atomic<bool> on_queue{false};
  auto ex = q.get_executor();
  boost::asio::post(ex, [&, ex] {
    on_queue.store(ex.running_in_this_thread(), std::memory_order_relaxed);
    ran.store(true, std::memory_order_release);
  });
  REQUIRE_FALSE(q.flush());  // flush() returns an error_code: none
  CHECK(ran.load(std::memory_order_acquire));
  CHECK(on_queue.load(std::memory_order_relaxed));
}
