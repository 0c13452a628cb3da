// SPDX-License-Identifier: BSL-1.0
// Tests of wq/async.hpp: async_flush, async_drain and async_cancel_sync with several completion
// tokens (callback through an io_context, use_future, use_awaitable, deferred).
#include <wq/async.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;

struct async_item {
  wq::work w;
  std::atomic<int> runs{0};
  std::atomic<bool> requeue{false};
  std::atomic<bool> running{false};
  wq::workqueue* queue = nullptr;
  wq_test::latch* gate = nullptr;
  static void run(async_item* self, wq::id<&async_item::w>) noexcept {
    self->running = true;
    if (self->gate != nullptr) (void)self->gate->wait_for();
    self->runs.fetch_add(1);
    self->running = false;
    if (self->requeue.load()) (void)self->queue->enqueue<&async_item::w>(self);
  }
};

}  // namespace

TEST_CASE("async_flush: use_future completes after every item queued before it (rule 26)",
          "[async][flush][rule26]") {
  wq::workqueue q{"async_flush_future"};
  std::vector<async_item> items(1000);
  for (auto& it : items) REQUIRE(q.enqueue<&async_item::w>(&it));
  std::future<void> done = wq::async_flush(q, boost::asio::use_future);  // throws on error
  REQUIRE(done.wait_for(20s) == std::future_status::ready);
  for (auto& it : items) REQUIRE(it.runs.load() == 1);
}

TEST_CASE("async_flush: the initiating call does not block on a running item (rule 26)",
          "[async][flush][rule26]") {
  wq::workqueue q{"async_flush_nonblocking"};
  wq_test::latch gate(1);
  async_item slow;
  slow.gate = &gate;
  REQUIRE(q.enqueue<&async_item::w>(&slow));
  std::promise<void> p;
  auto f = p.get_future();
  wq::async_flush(q, [&](boost::system::error_code ec) {  // returns although `slow` is blocked
    CHECK_FALSE(ec);
    p.set_value();
  });
  REQUIRE(f.wait_for(50ms) == std::future_status::timeout);
  gate.count_down();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  REQUIRE(slow.runs.load() == 1);
}

TEST_CASE("async_flush: a self-requeueing item cannot livelock it, from a coroutine "
          "(rule 26)",
          "[async][flush][rule26][awaitable]") {
  wq::workqueue q{"async_flush_coro"};
  async_item forever;
  forever.queue = &q;
  forever.requeue = true;
  REQUIRE(q.enqueue<&async_item::w>(&forever));
  boost::asio::io_context io;
  int flushes = 0;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        for (int i = 0; i < 50; ++i) {
          co_await wq::async_flush(q, boost::asio::use_awaitable);
          ++flushes;
        }
      },
      boost::asio::detached);
  io.run_for(20s);
  REQUIRE(flushes == 50);
  REQUIRE(forever.runs.load() >= 50);
  (void)wq::cancel_work_sync(forever.w);
  REQUIRE_FALSE(forever.w.is_pending());
}

TEST_CASE("async_drain: completes when the queue is empty; outside queueing is rejected "
          "meanwhile (rule 49)",
          "[async][drain][rule49]") {
  wq::workqueue q{"async_drain"};
  wq_test::latch gate(1);
  async_item slow, other;
  slow.gate = &gate;
  REQUIRE(q.enqueue<&async_item::w>(&slow));
  boost::asio::io_context io;
  bool drained = false;
  wq::async_drain(q, boost::asio::bind_executor(io, [&](boost::system::error_code ec) {
                    drained = !ec;
                  }));
  // The queue is draining while `slow` runs: queueing from outside is refused.
  REQUIRE(q.enqueue<&async_item::w>(&other).status == wq::queue_status::rejected);
  gate.count_down();
  io.run_for(20s);
  REQUIRE(drained);
  REQUIRE(slow.runs.load() == 1);
  // The drain is over: queueing works again.
  REQUIRE(q.enqueue<&async_item::w>(&other));
  q.flush();
  REQUIRE(other.runs.load() == 1);
}

TEST_CASE("async_cancel_sync: completes once a self-requeueing item is neither pending nor "
          "running (rules 29, 32)",
          "[async][cancel][rule29][rule32]") {
  wq::workqueue q{"async_cancel"};
  async_item forever;
  forever.queue = &q;
  forever.requeue = true;
  REQUIRE(q.enqueue<&async_item::w>(&forever));
  boost::asio::io_context io;
  std::atomic<bool> completed{false};
  int runs_at_completion = -1;
  wq::async_cancel_sync(forever.w, boost::asio::bind_executor(io, [&](boost::system::error_code,
                                                                       bool) {
                          completed = true;
                          runs_at_completion = forever.runs.load();
                          REQUIRE_FALSE(forever.w.is_pending());
                          REQUIRE_FALSE(forever.running.load());
                        }));
  io.run_for(20s);
  REQUIRE(completed.load());
  // Bounded observation with idle workers: no run after completion.
  std::this_thread::sleep_for(20ms);
  REQUIRE(forever.runs.load() == runs_at_completion);
  // It is enabled again: queueing works.
  forever.requeue = false;
  REQUIRE(q.enqueue<&async_item::w>(&forever));
  q.flush();
}

TEST_CASE("async_cancel_sync: reports whether the item was pending; deferred token",
          "[async][cancel][rule29]") {
  boost::asio::io_context io;  // not run yet: the item stays queued
  wq::workqueue q{io.get_executor(), "async_cancel_pending"};
  async_item item;
  REQUIRE(q.enqueue<&async_item::w>(&item));
  std::optional<bool> was_pending;
  auto op = wq::async_cancel_sync(item.w, boost::asio::deferred);
  std::move(op)(boost::asio::bind_executor(io, [&](boost::system::error_code ec, bool p) {
    if (!ec) was_pending = p;
  }));
  io.run_for(5s);
  REQUIRE(was_pending.has_value());
  REQUIRE(*was_pending);
  REQUIRE(item.runs.load() == 0);
}
