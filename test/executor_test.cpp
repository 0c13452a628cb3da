// SPDX-License-Identifier: BSL-1.0
// Tests for wq/executor.hpp: a workqueue's executor meets Asio's executor requirements (post,
// dispatch, defer, bind_executor, co_spawn, any_io_executor) and keeps the queue's rules:
// ordering on an ordered queue (rule 39), max_active (rule 37), flush/drain waiting for
// submitted functions (rules 26, 49), refusal after destroy (rule 50).
//
// Worker threads never call Catch2 macros; they record into atomics the test thread checks.
#include <wq/executor.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <wq/async.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/workqueue.hpp>

#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

namespace asio = boost::asio;
using wq::queue_flags;
using wq_test::latch;
using wq_test::must_happen;

static_assert(asio::execution::is_executor<wq::queue_executor>::value);
static_assert(std::is_convertible_v<wq::queue_executor, asio::any_io_executor>);
// As Asio's I/O objects, a queue names the type of its executor.
static_assert(std::is_same_v<wq::workqueue::executor_type,
                             decltype(std::declval<const wq::workqueue&>().get_executor())>);

TEST_CASE("executor: asio::post runs the function as a work item of the queue", "[executor]") {
  wq::workqueue q{"exec", {.threads = 2}};
  latch done{1};
  std::atomic<bool> on_queue{false};
  auto ex = q.get_executor();
  asio::post(ex, [&] {
    on_queue.store(ex.running_in_this_thread() && wq::current_work() != nullptr);
    done.count_down();
  });
  REQUIRE(done.wait_for(must_happen));
  CHECK(on_queue.load());
  CHECK_FALSE(ex.running_in_this_thread());
}

TEST_CASE("executor: the execution context is the queue's pool or its executor's context",
          "[executor]") {
  asio::io_context io;
  wq::workqueue on_io{io.get_executor(), "on-io"};
  CHECK(&asio::query(on_io.get_executor(), asio::execution::context) ==
        static_cast<asio::execution_context*>(&io));
  wq::ordered_workqueue on_strand{asio::make_strand(io), "on-strand"};
  CHECK(&asio::query(on_strand.get_executor(), asio::execution::context) ==
        static_cast<asio::execution_context*>(&io));
  wq::workqueue owned{"owned"};
  asio::execution_context& ctx = asio::query(owned.get_executor(), asio::execution::context);
  CHECK(&ctx != static_cast<asio::execution_context*>(&io));
}

TEST_CASE("executor: copies compare equal, blocking.possibly by default, never on request",
          "[executor]") {
  wq::workqueue a{"a", {.threads = 1}};
  wq::workqueue b{"b", {.threads = 1}};
  CHECK(a.get_executor() == a.get_executor());
  CHECK_FALSE(a.get_executor() == b.get_executor());
  CHECK(asio::query(a.get_executor(), asio::execution::blocking) ==
        asio::execution::blocking.possibly);
  auto never = asio::require(a.get_executor(), asio::execution::blocking.never);
  CHECK(asio::query(never, asio::execution::blocking) == asio::execution::blocking.never);
  CHECK_FALSE(never == a.get_executor());
}

TEST_CASE("executor: dispatch from one of the queue's items runs inline, post and defer queue",
          "[executor]") {
  wq::workqueue q{"dispatch", {.threads = 1}};
  auto ex = q.get_executor();
  std::atomic<int> order{0};
  std::atomic<int> dispatched_at{-1};
  std::atomic<int> posted_at{-1};
  std::atomic<int> deferred_at{-1};
  latch done{1};
  asio::post(ex, [&] {
    asio::post(ex, [&] { posted_at.store(order.fetch_add(1)); });
    asio::defer(ex, [&] {
      deferred_at.store(order.fetch_add(1));
      done.count_down();
    });
    asio::dispatch(ex, [&] { dispatched_at.store(order.fetch_add(1)); });  // inline: first
    order.fetch_add(1);
  });
  REQUIRE(done.wait_for(must_happen));
  CHECK(q.drain() == std::error_code{});
  CHECK(dispatched_at.load() == 0);
  CHECK(posted_at.load() == 2);
  CHECK(deferred_at.load() == 3);
}

TEST_CASE(
    "executor: functions posted to an ordered queue run one at a time in FIFO order "
    "(rule 39)",
    "[executor][rule39]") {
  wq::ordered_workqueue q{"ordered-exec"};
  auto ex = q.get_executor();
  constexpr int n = 2000;
  std::vector<int> seen;  // written only by the queue's items: one at a time (TSan checks)
  seen.reserve(n);
  for (int i = 0; i < n; ++i) asio::post(ex, [&seen, i] { seen.push_back(i); });
  CHECK(q.flush() == std::error_code{});  // rule 26: waits for submitted functions too
  REQUIRE(seen.size() == n);
  bool fifo = true;
  for (int i = 0; i < n; ++i) fifo = fifo && seen[static_cast<std::size_t>(i)] == i;
  CHECK(fifo);
}

TEST_CASE("executor: max_active caps the functions running at once (rule 37)",
          "[executor][rule37]") {
  wq::workqueue q{"capped", {.flags = queue_flags::unbound, .max_active = 2, .threads = 4}};
  wq_test::concurrency_probe probe;
  constexpr int n = 64;
  latch done{n};
  for (int i = 0; i < n; ++i) {
    asio::post(q.get_executor(), [&] {
      probe.enter();
      wq_test::hold_for(std::chrono::microseconds(200));  // a third function may overlap it
      probe.leave();
      done.count_down();
    });
  }
  REQUIRE(done.wait_for(must_happen));
  CHECK(probe.max_running.load() <= 2);
  CHECK(probe.entered.load() == n);
}

TEST_CASE("executor: conversion to any_io_executor keeps the queue's behaviour", "[executor]") {
  wq::workqueue q{"any", {.threads = 2}};
  asio::any_io_executor any = q.get_executor();
  std::promise<bool> ran;
  auto fut = ran.get_future();
  asio::post(any, [&] { ran.set_value(q.get_executor().running_in_this_thread()); });
  REQUIRE(fut.wait_for(must_happen) == std::future_status::ready);
  CHECK(fut.get());
  CHECK(&asio::query(any, asio::execution::context) ==
        &asio::query(q.get_executor(), asio::execution::context));
}

TEST_CASE("executor: bind_executor routes a completion handler onto the queue", "[executor]") {
  asio::io_context io;
  wq::workqueue q{"bound", {.threads = 1}};
  std::atomic<bool> on_queue{false};
  latch done{1};
  asio::post(io, asio::bind_executor(q.get_executor(), [&] {
               on_queue.store(q.get_executor().running_in_this_thread());
               done.count_down();
             }));
  io.run();
  REQUIRE(done.wait_for(must_happen));
  CHECK(on_queue.load());
}

asio::awaitable<int> add_on_queue(int a, int b) {
  auto ex = co_await asio::this_coro::executor;
  (void)ex;
  co_return a + b;
}

asio::awaitable<int> coroutine_on_queue(wq::queue_executor ex, std::atomic<int>* on_queue) {
  int sum = 0;
  for (int i = 0; i < 10; ++i) {
    sum += co_await add_on_queue(i, 1);
    if (ex.running_in_this_thread()) on_queue->fetch_add(1);
    co_await asio::post(asio::use_awaitable);  // yield: resumes through the queue
  }
  co_return sum;
}

TEST_CASE("executor: co_spawn runs a coroutine on the queue", "[executor]") {
  wq::workqueue q{"coro", {.threads = 2}};
  std::atomic<int> on_queue{0};
  auto fut = asio::co_spawn(q.get_executor(), coroutine_on_queue(q.get_executor(), &on_queue),
                            asio::use_future);
  REQUIRE(fut.wait_for(must_happen) == std::future_status::ready);
  CHECK(fut.get() == 55);
  CHECK(on_queue.load() == 10);
}

TEST_CASE(
    "executor: a function submitted to a destroyed queue is destroyed without running "
    "(rule 50)",
    "[executor][rule50]") {
  auto q = std::make_unique<wq::workqueue>("gone", wq::queue_options{.threads = 1});
  auto ex = q->get_executor();
  CHECK(q->destroy() == std::error_code{});
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  std::atomic<bool> ran{false};
  asio::post(ex, [&ran, t = std::move(token)] { ran.store(true); });
  CHECK(watch.expired());  // destroyed at once
  CHECK_FALSE(ran.load());
  q.reset();
  asio::post(ex, [&ran] { ran.store(true); });  // the queue object is gone too: still safe
  CHECK_FALSE(ran.load());
}

TEST_CASE(
    "executor: a copy outliving its queue keeps a valid context for timers and strands "
    "(the pool is kept, stopped, until the last copy goes)",
    "[executor][lifetime]") {
  // Issue 13, observed point 4: `steady_timer t{ex}` and `make_strand(ex)` on the copy of a
  // destroyed queue's executor used the freed thread_pool (ASan: heap-use-after-free).
  asio::any_io_executor any;
  std::optional<wq::queue_executor> ex;
  {
    wq::workqueue q{"short-lived", {.threads = 1}};
    ex.emplace(q.get_executor());
    any = q.get_executor();
  }
  asio::execution_context& ctx = asio::query(*ex, asio::execution::context);
  CHECK(&ctx == &asio::query(any, asio::execution::context));
  {
    asio::steady_timer t{any};             // uses the context's timer service
    auto strand = asio::make_strand(*ex);  // uses its strand service
    std::atomic<bool> ran{false};
    asio::post(strand, [&ran] { ran.store(true); });  // refused: the queue is gone
    t.expires_after(std::chrono::hours(1));
    t.cancel();
    CHECK_FALSE(ran.load());
  }
  any = {};
  ex.reset();  // the last copy: the pool goes now (ASan checks nothing leaks or dangles)
}

TEST_CASE(
    "executor: a copy never reaches another queue, however many queues were created and "
    "destroyed since (no wrapping generation)",
    "[executor][workqueue][lifetime][long]") {
  // Issue 13, observed point 5: queue ids carry a 16-bit generation per slot; after 32 768
  // create/destroy cycles a destroyed queue's handle matched an unrelated live queue and
  // queued onto, paused and posted to it. Every cycle checks that neither the destroyed
  // queue's object nor a copy of its executor reaches the new queue.
  struct item {
    wq::work w;
    static void run(item*, wq::id<&item::w>) noexcept {}
  };
  asio::io_context io;
  auto gone = std::make_unique<wq::workqueue>(io, "gone");
  auto ex = gone->get_executor();
  REQUIRE(gone->destroy() == std::error_code{});
  item it;
  int reached = 0;
  constexpr int cycles = 100'000;
  for (int i = 0; i < cycles; ++i) {
    wq::workqueue churn{io, "churn"};  // takes a free slot; never `gone`'s identity
    asio::post(ex, [] {});
    reached += gone->enqueue<&item::w>(&it) ? 1 : 0;
    gone->pause();
    reached += churn.stats().queued != 0 ? 1 : 0;
  }
  CHECK(reached == 0);
  CHECK(io.poll() == 0);  // nothing was ever posted to io for the churned queues
  wq::workqueue live{io, "live"};
  CHECK(live.enqueue<&item::w>(&it));  // the last churned slot is not paused
  io.restart();
  CHECK(io.poll() > 0);
}

TEST_CASE("executor: drain waits for posted functions and their chains (rule 49)",
          "[executor][rule49]") {
  wq::workqueue q{"drain-exec", {.threads = 2}};
  auto ex = q.get_executor();
  std::atomic<int> runs{0};
  std::function<void(int)> chain = [&](int left) {
    runs.fetch_add(1);
    if (left > 0) asio::post(ex, [&chain, left] { chain(left - 1); });
  };
  asio::post(ex, [&] { chain(9); });
  CHECK(q.drain() == std::error_code{});
  CHECK(runs.load() == 10);
}

TEST_CASE(
    "executor: a function posted from outside while the queue drains is held and runs once "
    "the drain ends (rule 49)",
    "[executor][rule49]") {
  // Asio's executors accept what is posted until their context is shut down; a drain (which
  // reopens the queue) refuses outside queueing. A posted function (a completion handler bound to
  // the queue, a coroutine's resumption) is neither refused nor waited for: it is held and queued
  // when the drain ends. It used to be destroyed unrun.
  wq::workqueue q{"drain-hold", {.threads = 2}};
  auto ex = q.get_executor();
  latch gate(1);
  std::atomic<bool> blocker_done{false};
  asio::post(ex, [&] {
    (void)gate.wait_for();
    blocker_done = true;
  });
  std::atomic<bool> drained{false};
  wq::async_drain(q, [&](boost::system::error_code ec) { drained = !ec; });  // begins it now
  std::atomic<int> runs{0};
  std::atomic<bool> ran_after_blocker{false};
  std::atomic<bool> saw_drain_end{false};
  asio::post(ex, [&] {
    ran_after_blocker = blocker_done.load();  // a free worker would have run it at once
    // The drain does not wait for it: had it counted, this wait would never end.
    saw_drain_end = wq_test::poll_until([&] { return drained.load(); });
    runs.fetch_add(1);
  });
  gate.count_down();
  REQUIRE(wq_test::poll_until([&] { return runs.load() == 1; }));
  CHECK(ran_after_blocker.load());
  CHECK(saw_drain_end.load());
  CHECK(q.drain() == std::error_code{});
  CHECK(runs.load() == 1);
}

}  // namespace
