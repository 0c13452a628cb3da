// SPDX-License-Identifier: BSL-1.0
// Tests for wq/flush.hpp: flush_work (semantics.md rule 23) and flush_delayed_work (rule 24):
// return values for idle, queued, running and armed items, self-requeueing items (no livelock),
// items cancelled while a flusher waits, misuse from the item's own run (§5.1), and races of
// flushers against requeues.
//
// Determinism: a queued item that must not start sits on a queue whose io_context is run only
// when the test says so; a running item blocks on a gate (support/cancel_items.hpp). A gate or
// context released "after a bounded delay" only makes a missing wait observable; correctness
// never depends on the delay. Calls that could hang if the library were wrong run in a
// std::async and are waited for with a 5 s timeout.
// Worker threads never call Catch2 macros; they record into atomics the test thread checks.
#include <wq/flush.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <wq/cancel.hpp>
#include <wq/delayed_work.hpp>
#include <wq/kernel.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/test_clock.hpp>
#include <wq/workqueue.hpp>

#include "support/cancel_items.hpp"
#include "support/items.hpp"
#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using wq_test::c_delayed;
using wq_test::c_work;
using wq_test::gate;
using wq_test::latch;
using wq_test::must_happen;

TEST_CASE("flush: flush_work of an idle item returns false at once (rule 23)", "[flush][rule23]") {
  boost::asio::io_context io;
  c_work item;
  c_delayed ditem;
  wq::workqueue q{io.get_executor(), "flush-idle"};
  wq_test::drive_on_exit drive{io};

  CHECK_FALSE(wq::flush_work(item.w));  // never queued
  CHECK_FALSE(wq::flush_delayed_work(ditem.d));
  REQUIRE(wq::queue_work(q, item.w));
  wq_test::run_ready(io);
  REQUIRE(item.runs.load() == 1);
  CHECK_FALSE(wq::flush_work(item.w));  // has run
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(wq::cancel_work(item.w));
  CHECK_FALSE(wq::flush_work(item.w));  // cancelled
}

TEST_CASE("flush: flush_work of a queued item returns true after it ran (rule 23)",
          "[flush][rule23]") {
  boost::asio::io_context io;  // run by a helper thread only after a bounded delay
  c_work item;
  wq::workqueue q{io.get_executor(), "flush-queued"};
  wq_test::drive_on_exit drive{io};

  REQUIRE(wq::queue_work(q, item.w));
  std::thread runner([&] {
    std::this_thread::sleep_for(50ms);
    wq_test::run_ready(io);
  });
  const bool waited = wq::flush_work(item.w);
  const int runs_at_return = item.runs.load();
  runner.join();
  CHECK(waited);
  CHECK(runs_at_return == 1);
  CHECK_FALSE(item.w.is_pending());  // idle on return (rule 23)
}

TEST_CASE("flush: flush_work of a running item returns true after the run finished (rule 23)",
          "[flush][rule23]") {
  gate g;
  c_work item;
  item.body = [&](c_work&) { g.pass(); };
  wq::workqueue q{"flush-running"};
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(g.started.wait_for(must_happen));

  SECTION("one flusher") {
    std::thread opener = wq_test::open_later(g, 50ms);
    const bool waited = wq::flush_work(item.w);
    const bool finished_at_return = g.finished.load();
    opener.join();
    CHECK(waited);
    CHECK(finished_at_return);
  }
  SECTION("three concurrent flushers") {
    std::atomic<int> ok{0};
    std::vector<std::thread> flushers;
    for (int i = 0; i < 3; ++i) {
      flushers.emplace_back([&] {
        const bool waited = wq::flush_work(item.w);
        if (waited && g.finished.load()) ok.fetch_add(1);
      });
    }
    std::thread opener = wq_test::open_later(g, 50ms);
    for (auto& t : flushers) t.join();
    opener.join();
    CHECK(ok.load() == 3);
  }
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(g.timed_out.load());
}

// A thread blocked in a wait sleeps until the queue wakes it (its own futex word, on the
// queue's list of blocked threads, marked with what it waits for: the end of a run, a flush
// colour, an empty queue); it also looks again every 50 ms (a slice of the default 1 s wait
// limit), so a lost wake-up would not hang it but would leave it asleep until its next look.
// Each run here goes on for 2 ms after the test thread said it is about to wait: the time from
// the run's end to the wait's return is a wake-up's latency, or most of a slice if the wake-up
// was lost. The rounds take turns among the four kinds of wait, each woken by its own check
// when a run ends (a flush_work by its waiter's mark, cancel_work_sync by any run's end,
// flush() once the colour drains, drain() once nothing is in flight). (A round whose waiter
// did not reach its wait within the 2 ms, on a busy machine, measures a short time either way.)
TEST_CASE(
    "flush: a blocked flush_work or cancel_work_sync or flush or drain returns when the run ends "
    "and not at its next look (rules 23 26 29 49)",
    "[flush][rule23][rule26][rule29][rule49]") {
  using clock = std::chrono::steady_clock;
  std::atomic<bool> started{false};
  std::atomic<bool> waiting{false};
  std::atomic<clock::rep> ended{0};
  c_work item;
  item.body = [&](c_work&) {
    started.store(true);
    const auto limit = clock::now() + must_happen;
    while (!waiting.load() && clock::now() < limit) {
    }
    const auto until = clock::now() + 2ms;
    while (clock::now() < until) {
    }
    ended.store(clock::now().time_since_epoch().count());
  };
  wq::workqueue q{"flush-wakeup"};
  constexpr int kinds = 4;  // flush_work, cancel_work_sync, flush(), drain()
  std::array<std::vector<clock::duration>, kinds> late;
  int flushed = 0;
  for (int round = 0; round < 20 * kinds; ++round) {
    started = false;
    waiting = false;
    ended = 0;
    REQUIRE(wq::queue_work(q, item.w));
    REQUIRE(wq_test::poll_until([&] { return started.load(); }));
    waiting = true;
    const int kind = round % kinds;
    if (kind == 0) {
      flushed += wq::flush_work(item.w) ? 1 : 0;
    } else if (kind == 1) {
      (void)wq::cancel_work_sync(item.w);
    } else if (kind == 2) {
      REQUIRE_FALSE(q.flush());
    } else {
      REQUIRE_FALSE(q.drain());
    }
    const auto back = clock::now();
    REQUIRE(ended.load() != 0);  // every wait returned after the run's end (rules 23 26 29 49)
    late[static_cast<std::size_t>(kind)].push_back(
        back - clock::time_point(clock::duration(ended.load())));
  }
  CHECK(flushed == 20);  // every flush_work found the run in progress (rule 23)
  for (int kind = 0; kind < kinds; ++kind) {
    auto& l = late[static_cast<std::size_t>(kind)];
    std::sort(l.begin(), l.end());
    const auto median = std::chrono::duration_cast<std::chrono::microseconds>(l[l.size() / 2]);
    INFO("wait " << kind << " (flush_work, cancel_work_sync, flush, drain): median from a run's "
                 << "end to the wait's return " << median.count() << " us");
    CHECK(median < 10ms);  // a lost wake-up costs ~48 ms here
  }
}

TEST_CASE(
    "flush: threads blocked on one queue in different waits each return once what it waits "
    "for is done and the ones still waiting stay blocked (rules 23 26 29 49)",
    "[flush][rule23][rule26][rule29][rule49]") {
  // Six threads block on one queue at once (each on its own waiter, linked on the queue):
  // flush_work of `a` twice, flush_work and cancel_work_sync of `b`, flush() and drain(). When
  // b finishes, the two waiting for b return and leave the middle of the queue's list of
  // blocked threads; the other four must still be blocked, and return once a finishes.
  gate ga;
  gate gb;
  c_work a;
  c_work b;
  a.body = [&](c_work&) { ga.pass(); };
  b.body = [&](c_work&) { gb.pass(); };
  wq::workqueue q{"mixed-waits", {.max_active = 2}};
  REQUIRE(wq::queue_work(q, a.w));
  REQUIRE(wq::queue_work(q, b.w));
  REQUIRE(ga.started.wait_for(must_happen));
  REQUIRE(gb.started.wait_for(must_happen));

  struct waiter {
    std::atomic<bool> returned{false};
    std::atomic<bool> saw_done{false};  // what it waited for had finished when it returned
  };
  waiter fa1, fa2, fb, cb, fl, dr;
  std::vector<std::thread> ts;
  ts.emplace_back([&] {
    const bool w = wq::flush_work(a.w);
    fa1.saw_done = w && ga.finished.load();
    fa1.returned = true;
  });
  ts.emplace_back([&] {
    const bool w = wq::flush_work(b.w);
    fb.saw_done = w && gb.finished.load();
    fb.returned = true;
  });
  ts.emplace_back([&] {
    const bool w = wq::flush_work(a.w);
    fa2.saw_done = w && ga.finished.load();
    fa2.returned = true;
  });
  ts.emplace_back([&] {
    (void)wq::cancel_work_sync(b.w);
    cb.saw_done = gb.finished.load();
    cb.returned = true;
  });
  ts.emplace_back([&] {
    const std::error_code e = q.flush();
    fl.saw_done = !e && ga.finished.load() && gb.finished.load();
    fl.returned = true;
  });
  ts.emplace_back([&] {
    const std::error_code e = q.drain();
    dr.saw_done = !e && ga.finished.load() && gb.finished.load();
    dr.returned = true;
  });
  // Open b once every thread had a chance to block (a thread that had not only blocks later;
  // the checks below hold either way).
  std::thread opener_b = wq_test::open_later(gb, 50ms);
  opener_b.join();
  REQUIRE(wq_test::poll_until([&] { return fb.returned.load() && cb.returned.load(); }));
  CHECK(fb.saw_done.load());
  CHECK(cb.saw_done.load());
  CHECK_FALSE(fa1.returned.load());
  CHECK_FALSE(fa2.returned.load());
  CHECK_FALSE(fl.returned.load());
  CHECK_FALSE(dr.returned.load());
  std::thread opener_a = wq_test::open_later(ga, 20ms);
  for (auto& t : ts) t.join();
  opener_a.join();
  CHECK(fa1.saw_done.load());
  CHECK(fa2.saw_done.load());
  CHECK(fl.saw_done.load());
  CHECK(dr.saw_done.load());
  CHECK_FALSE(ga.timed_out.load());
  CHECK_FALSE(gb.timed_out.load());
}

TEST_CASE("flush: flush_work of an armed delayed item returns false at once (rule 23)",
          "[flush][rule23][delayed]") {
  wq::workqueue q{"flush-armed"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(q, item.d, 10s));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(wq::flush_work(item.d));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // did not wait for the 10 s timer
  CHECK(item.d.is_pending());                         // and left it armed
  CHECK(item.runs.load() == 0);
  CHECK(wq::cancel_delayed_work_sync(item.d));
}

TEST_CASE("flush: flush_delayed_work fires an armed timer now and waits for the run (rule 24)",
          "[flush][rule24][delayed]") {
  wq_test::io_runner target;
  wq::workqueue q{target.context(), "flush-delayed"};
  c_delayed item;
  // The target's only thread first runs a handler blocked on this gate, so the item queued by
  // the flush cannot run (and finish) before flush_work has looked at it: without this, the
  // return value would depend on that race (a fast worker may finish the item before the
  // flush looks, and flush_work then rightly reports an idle item; the kernel has the same
  // window between __queue_work and flush_work).
  gate blocker;
  boost::asio::post(target.context(), [&] { blocker.pass(); });
  REQUIRE(blocker.started.wait_for(must_happen));

  SECTION("armed for 10 s") { REQUIRE(wq::queue_delayed_work(q, item.d, 10s)); }
  SECTION("already queued") { REQUIRE(wq::queue_delayed_work(q, item.d, 0ms)); }
  const auto t0 = std::chrono::steady_clock::now();
  std::thread opener = wq_test::open_later(blocker, 100ms);
  auto fut = std::async(std::launch::async, [&] { return wq::flush_delayed_work(item.d); });
  const bool returned = fut.wait_for(must_happen) == std::future_status::ready;
  opener.join();
  if (!returned) (void)wq::cancel_delayed_work(item.d);  // release the flusher
  REQUIRE(returned);
  const bool waited = fut.get();
  const int runs_at_return = item.runs.load();
  CHECK(waited);
  // Tolerance: "quickly" means within 5 s, half the 10 s delay.
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(runs_at_return == 1);
  CHECK(item.ran_on.load() == target.id());  // on the queue recorded when it was armed
  CHECK_FALSE(item.d.is_pending());
}

TEMPLATE_TEST_CASE(
    "flush: the typed flush_work and flush_delayed_work deduce the pointer type "
    "from run and wait as the untyped ones do (rules 23, 24)",
    "[flush][typed][rule23][rule24]", wq_test::shared_kind, wq_test::unique_kind,
    wq_test::intrusive_kind, wq_test::raw_kind) {
  using kind = TestType;
  using obj = wq_test::typed_obj<kind>;
  using pointer = typename obj::pointer;
  wq::workqueue q{"typed-flush"};
  auto h = kind::template make<obj>();
  obj& o = *h;
  o.keep = &h;  // a unique_ptr's run hands its pointer back here, so the object outlives run

  SECTION("idle items: false at once, both forms") {
    CHECK_FALSE(wq::flush_work<&obj::w>(o));
    CHECK_FALSE(wq::flush_work<&obj::w, pointer>(o));
    CHECK_FALSE(wq::flush_delayed_work<&obj::d>(o));
    CHECK_FALSE(wq::flush_delayed_work<&obj::d, pointer>(o));
    CHECK_FALSE(wq::flush_work<&obj::d>(o));  // a delayed member is a work item too
  }
  SECTION("flush_work of a running item returns true once it has finished") {
    gate g;
    o.g = &g;
    REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
    REQUIRE(g.started.wait_for(must_happen));
    std::thread opener = wq_test::open_later(g, 50ms);
    const bool waited = wq::flush_work<&obj::w>(o);
    const bool finished_at_return = g.finished.load();
    opener.join();
    CHECK(waited);
    CHECK(finished_at_return);
    CHECK(o.runs.load() == 1);
    CHECK_FALSE(g.timed_out.load());
  }
  SECTION("flush_delayed_work of an armed item fires it now and waits for the run") {
    gate g;
    o.g = &g;
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(q.enqueue_delayed<&obj::d>(kind::give(h), 10s).queued());
    std::thread opener = wq_test::open_later(g, 50ms);
    const bool waited = wq::flush_delayed_work<&obj::d, pointer>(o);
    const bool finished_at_return = g.finished.load();
    opener.join();
    CHECK(waited);
    CHECK(finished_at_return);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // half the delay: it did not wait 10 s
    CHECK(o.runs.load() == 1);
    CHECK_FALSE(o.d.is_pending());
  }
  CHECK(q.drain() == std::error_code{});
  CHECK(kind::owners(h) == 1);  // run's reference was released (or, for unique_ptr, handed back)
}

TEST_CASE("flush: flush_work of a self-requeueing item returns (no livelock) (rule 23)",
          "[flush][rule23][requeue]") {
  wq::workqueue q{"flush-self"};
  std::atomic<bool> keep{true};
  c_work item;
  item.body = [&](c_work& self) {
    if (keep.load()) (void)q.queue(self.w);
  };
  latch some{10};
  item.done = &some;
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(some.wait_for(must_happen));

  for (int round = 0; round < 20; ++round) {
    const int before = item.runs.load();
    auto fut = std::async(std::launch::async, [&] { return wq::flush_work(item.w); });
    const bool returned = fut.wait_for(must_happen) == std::future_status::ready;
    if (!returned) keep.store(false);  // lets a livelocked flush end
    REQUIRE(returned);
    CHECK(fut.get());  // it was pending or running at the call
    CHECK(item.runs.load() >= before);
  }
  keep.store(false);
  (void)wq::cancel_work_sync(item.w);
}

TEST_CASE("flush: a flush_work waiting for an item that gets cancelled returns (rule 23)",
          "[flush][rule23][cancel]") {
  boost::asio::io_context io;  // not run: the item stays queued
  c_work item;
  wq::workqueue q{io.get_executor(), "flush-cancelled"};
  wq_test::drive_on_exit drive{io};

  REQUIRE(wq::queue_work(q, item.w));
  auto fut = std::async(std::launch::async, [&] { return wq::flush_work(item.w); });
  // Give the flusher a head start so it is (very likely) waiting; either order must pass.
  (void)fut.wait_for(50ms);
  CHECK(wq::cancel_work(item.w));
  const bool returned = fut.wait_for(must_happen) == std::future_status::ready;
  if (!returned) wq_test::run_ready(io);  // release a hung flusher before failing
  REQUIRE(returned);
  INFO("flush_work returned " << fut.get() << " for the cancelled instance");
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 0);
}

TEST_CASE(
    "flush: flush_work / flush_delayed_work from the item's own run warn and return "
    "false (§5.1)",
    "[flush][misuse]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"flush-misuse"};
  c_delayed item;
  std::atomic<int> results{0};  // bit 0: flush_work, bit 1: flush_delayed_work returned true
  item.body = [&](c_delayed& self) {
    int r = 0;
    if (wq::flush_work(self.d)) r |= 1;
    if (wq::flush_delayed_work(self.d)) r |= 2;
    results.store(r);
  };
  latch done{1};
  item.done = &done;
  REQUIRE(wq::queue_delayed_work(q, item.d, 1ms));
  REQUIRE(done.wait_for(must_happen));  // a self-wait would hang here
  CHECK(results.load() == 0);
  CHECK(warnings.contains(wq::errc::flush_self));
}

// ---- waits that would hang: refused or completed (issue 13, observed point 6) ---------------

TEST_CASE(
    "flush: flush_delayed_work(self) from an item that re-armed itself returns false at "
    "once (§5.1)",
    "[flush][misuse][rule24]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"rearm-self", {.threads = 2}};
  c_delayed item;
  std::atomic<int> result{-1};
  latch done{1};
  item.body = [&](c_delayed& self) {
    (void)wq::queue_delayed_work(q, self.d, 1h);           // re-armed: pending again
    result.store(wq::flush_delayed_work(self.d) ? 1 : 0);  // used to wait for itself forever
  };
  item.done = &done;
  REQUIRE(wq::queue_work(q, item.d));
  REQUIRE(done.wait_for(must_happen));
  CHECK(result.load() == 0);
  CHECK(warnings.contains(wq::errc::flush_self));
  CHECK(wq::cancel_delayed_work_sync(item.d));  // still armed: not fired by the refused flush
}

TEST_CASE(
    "flush: flush_delayed_work from an ordered queue's item, of an item armed on that "
    "queue, queues it and returns false (§5.3)",
    "[flush][misuse][rule24][rule39]") {
  wq_test::warning_catcher warnings;
  wq::ordered_workqueue q{"ordered-fire"};
  c_delayed target;
  latch target_ran{1};
  target.done = &target_ran;
  REQUIRE(wq::queue_delayed_work(q, target.d, 1h));
  std::atomic<int> result{-1};
  latch done{1};
  c_work caller;
  caller.body = [&](c_work&) { result.store(wq::flush_delayed_work(target.d) ? 1 : 0); };
  caller.done = &done;
  REQUIRE(wq::queue_work(q, caller.w));
  REQUIRE(done.wait_for(must_happen));  // used to hang: target is queued behind the caller
  CHECK(result.load() == 0);
  CHECK(warnings.contains(wq::errc::wait_needs_this_worker));
  CHECK(target_ran.wait_for(must_happen));  // fired: it runs after the caller
}

TEST_CASE(
    "flush: flush_work from a draining queue's item, of a delayed item that fired during "
    "the drain, runs it as chained work (rules 23, 49)",
    "[flush][drain][rule49]") {
  wq::test_clock clock;  // the timer fires exactly when the test says: during the drain
  wq::workqueue q{"drain-fired", {.threads = 2}};
  c_delayed fired;
  latch fired_ran{1};
  fired.done = &fired_ran;
  REQUIRE(wq::queue_delayed_work(q, fired.d, 10ms));
  gate hold;
  std::atomic<int> result{-1};
  c_work caller;
  caller.body = [&](c_work&) {
    hold.pass();  // meanwhile the drain starts and `fired` fires (deferred to the drain's end)
    result.store(wq::flush_work(fired.d) ? 1 : 0);  // used to wait for the drain: a deadlock
  };
  REQUIRE(wq::queue_work(q, caller.w));
  REQUIRE(hold.started.wait_for(must_happen));
  auto drained = std::async(std::launch::async, [&] { return q.drain(); });
  REQUIRE(wq_test::poll_until([&] { return q.dump().find("draining") != std::string::npos; }));
  CHECK(clock.advance(10ms) == 1);
  hold.open.count_down();
  REQUIRE(drained.wait_for(must_happen) == std::future_status::ready);
  CHECK(drained.get() == std::error_code{});
  CHECK(result.load() == 1);
  CHECK(fired.runs.load() == 1);
}

TEST_CASE(
    "flush: two running items that wait for each other: the wait that closes the cycle "
    "is refused, the other completes (§5.4, lockdep)",
    "[flush][misuse][cycle]") {
  enum class how { flush_work, cancel_work_sync, queue_flush };
  const how mode = GENERATE(how::flush_work, how::cancel_work_sync, how::queue_flush);
  wq_test::warning_catcher warnings;
  // One queue with two workers, or (queue_flush) two one-worker queues whose items flush each
  // other's queue.
  wq::workqueue q1{"cycle-1", {.threads = 2}};
  wq::workqueue q2{"cycle-2", {.threads = 1}};
  wq::workqueue& qa = q1;
  wq::workqueue& qb = mode == how::queue_flush ? q2 : q1;
  latch both_running{2};
  std::atomic<int> waited{0};
  std::atomic<int> refused{0};
  c_work a, b;
  auto body = [&](wq::work& other, wq::workqueue& other_queue) {
    both_running.count_down();
    (void)both_running.wait_for(must_happen);
    bool ok = false;
    switch (mode) {
      case how::flush_work: ok = wq::flush_work(other); break;
      case how::cancel_work_sync:
        ok = true;
        (void)wq::cancel_work_sync(other);
        break;
      case how::queue_flush: ok = !other_queue.flush(); break;
    }
    (ok ? waited : refused).fetch_add(1);
  };
  a.body = [&](c_work&) { body(b.w, qb); };
  b.body = [&](c_work&) { body(a.w, qa); };
  latch done{2};
  a.done = &done;
  b.done = &done;
  REQUIRE(wq::queue_work(qa, a.w));
  REQUIRE(wq::queue_work(qb, b.w));
  REQUIRE(done.wait_for(must_happen));  // used to deadlock
  CHECK(warnings.count(wq::errc::wait_cycle) == 1);
  if (mode != how::cancel_work_sync) {
    CHECK(waited.load() == 1);
    CHECK(refused.load() == 1);
  }
}

TEST_CASE(
    "flush: every running item of a full queue waits for an item queued behind them: the wait "
    "that leaves no slot to free is refused and the others complete (§5.14)",
    "[flush][misuse][cycle]") {
  // The item behind them needs any running item to finish (a slot under max_active, or a worker
  // of a pool of `n` threads). Each wait but the last leaves a running item that may still
  // finish; the last would leave none. It used to be accepted: all of them waited for good,
  // without a report, since the walk of the graph took an item already on its path for one that
  // could still finish.
  const int n = GENERATE(2, 3);
  const bool own_pool = GENERATE(false, true);
  wq_test::warning_catcher warnings;
  auto q = own_pool
               ? std::make_unique<wq::workqueue>(
                     "saturated", wq::queue_options{.threads = static_cast<unsigned>(n)})
               : std::make_unique<wq::workqueue>("saturated", wq::queue_options{.max_active = n});
  latch all_running{n + 1};
  latch behind_queued{1};
  std::atomic<int> waited{0};
  std::atomic<int> refused{0};
  c_work behind;
  std::vector<std::unique_ptr<c_work>> running;
  latch done{n + 1};
  behind.done = &done;
  for (int i = 0; i < n; ++i) {
    running.push_back(std::make_unique<c_work>());
    running.back()->done = &done;
    running.back()->body = [&](c_work&) {
      all_running.count_down();
      (void)all_running.wait_for(must_happen);
      (void)behind_queued.wait_for(must_happen);
      (wq::flush_work(behind.w) ? waited : refused).fetch_add(1);
    };
    REQUIRE(wq::queue_work(*q, running.back()->w));
  }
  all_running.count_down();
  REQUIRE(all_running.wait_for(must_happen));
  REQUIRE(wq::queue_work(*q, behind.w));  // no slot for it until one of them returns
  behind_queued.count_down();
  const bool finished = done.wait_for(must_happen);
  // Frees the waiters (the item they wait for will not run), so that a failure ends the test.
  if (!finished && wq::cancel_work(behind.w)) done.count_down();
  REQUIRE(done.wait_for(must_happen));
  CHECK(finished);
  CHECK(warnings.count(wq::errc::wait_cycle) == 1);
  CHECK(refused.load() == 1);
  CHECK(waited.load() == n - 1);
  CHECK(behind.runs.load() == 1);
}

TEST_CASE("flush: stress: flushers vs a self-requeueing item (rules 23, 24)",
          "[flush][stress][rule23]") {
  wq::workqueue q{"flush-stress"};
  std::atomic<int> budget{20000};  // bounded number of self-requeues
  c_delayed item;
  item.body = [&](c_delayed& self) {
    if (budget.fetch_sub(1) > 0)
      (void)q.queue_delayed(self.d, std::chrono::microseconds(budget.load() % 3));
  };
  REQUIRE(wq::queue_work(q, item.d));
  const auto start = std::chrono::steady_clock::now();
  std::atomic<int> flushes{0};
  auto flusher = [&](bool delayed) {
    // At least one flush each, however late a loaded machine starts this thread.
    do {
      if (delayed) {
        (void)wq::flush_delayed_work(item.d);
      } else {
        (void)wq::flush_work(item.d);
      }
      flushes.fetch_add(1);
    } while (std::chrono::steady_clock::now() - start < 700ms && budget.load() > 0);
  };
  auto f1 = std::async(std::launch::async, flusher, false);
  auto f2 = std::async(std::launch::async, flusher, true);
  const bool ok1 = f1.wait_for(must_happen) == std::future_status::ready;
  const bool ok2 = f2.wait_for(must_happen) == std::future_status::ready;
  budget.store(0);
  REQUIRE(ok1);
  REQUIRE(ok2);
  (void)wq::cancel_delayed_work_sync(item.d);
  INFO("flushes " << flushes.load() << ", runs " << item.runs.load());
  CHECK_FALSE(item.d.is_pending());
}

}  // namespace
