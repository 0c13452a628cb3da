// SPDX-License-Identifier: BSL-1.0
// Tests for wq/test_clock.hpp: virtual time for delayed work. One clock at a time (a second is
// refused), time that moves only with advance(), expiries exactly at the deadline (rules 18, 19,
// 53, 54), mod_delayed_work (rule 20 a-d), cancel and cancel_sync (rules 31, 32), disable
// (rule 33), flush_delayed_work (rule 24), drain (rule 49) and destroy (rule 50) under virtual
// time, deadline order (rule 39), items on an application io_context, post_delayed, items armed
// with real time before the clock, and items handed back to real timers when it goes.
//
// Determinism: no test waits for real time to pass except the three that check the hand-over
// between real and virtual time (they wait for a real timer of at most 300 ms, never for a
// thread). Queues run either on an io_context the test polls (everything on the test thread) or
// on their own threads, which the test waits for with flush().
#include <wq/test_clock.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include <wq/cancel.hpp>
#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/flush.hpp>
#include <wq/jiffies.hpp>
#include <wq/kernel.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/post_delayed.hpp>
#include <wq/workqueue.hpp>

#include "support/cancel_items.hpp"
#include "support/items.hpp"
#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using namespace wq::literals;
using wq::queue_status;
using wq_test::c_delayed;
using wq_test::fn_delayed_item;
using wq_test::fn_item;
using wq_test::latch;
using wq_test::must_happen;

/// A queue on an io_context that only the test thread runs: after advance(), poll() runs
/// whatever the clock queued, and nothing runs behind the test's back.
struct polled_queue {
  boost::asio::io_context io;
  std::unique_ptr<wq::workqueue> owned;
  wq::workqueue& q;
  wq_test::drive_on_exit drive{io};
  explicit polled_queue(const char* name, bool ordered = false)
      : owned(ordered ? std::make_unique<wq::ordered_workqueue>(io.get_executor(), name)
                      : std::make_unique<wq::workqueue>(io.get_executor(), name)),
        q(*owned) {}
  std::size_t poll() { return wq_test::run_ready(io); }
};

// ---- installation ------------------------------------------------------------------------

TEST_CASE("test_clock: at most one exists at a time, a second one throws std::logic_error",
          "[test_clock][misuse]") {
  {
    wq::test_clock clock;
    const auto t = clock.now();
    CHECK_THROWS_AS(wq::test_clock{}, std::logic_error);
    // The refused one changed nothing: the first is still installed, its time unchanged.
    CHECK(clock.now() == t);
    polled_queue p{"one-clock"};
    c_delayed item;
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 10ms));
    CHECK(item.d.deadline() == t + 10ms);
    CHECK(clock.advance(10ms) == 1);
    p.poll();
    CHECK(item.runs.load() == 1);
  }
  // Once it is gone, another may be installed.
  wq::test_clock again;
  CHECK(again.armed_count() == 0);
}

TEST_CASE("test_clock: starts at the steady clock's now and moves only with advance",
          "[test_clock]") {
  const auto before = std::chrono::steady_clock::now();
  wq::test_clock clock;
  const auto t0 = clock.now();
  CHECK(t0 >= before);
  CHECK(t0 <= std::chrono::steady_clock::now());
  // Real time passes; virtual time does not.
  REQUIRE(wq_test::poll_until([&] { return std::chrono::steady_clock::now() > t0 + 2ms; }));
  CHECK(clock.now() == t0);

  CHECK(clock.advance(5ms) == 0);
  CHECK(clock.now() == t0 + 5ms);
  CHECK(clock.advance(3_jiffies) == 0);
  CHECK(clock.now() == t0 + 5ms + (3_jiffies).to_duration());
  const auto t1 = clock.now();
  // Delays convert as for arming: rounded up; negative and NaN mean zero.
  CHECK(clock.advance(std::chrono::duration<double, std::nano>(1.5)) == 0);
  CHECK(clock.now() == t1 + 2ns);
  CHECK(clock.advance(-1h) == 0);
  CHECK(clock.advance(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())) ==
        0);
  CHECK(clock.now() == t1 + 2ns);
  // advance_to never moves time backwards.
  CHECK(clock.advance_to(t0) == 0);
  CHECK(clock.now() == t1 + 2ns);
  CHECK(clock.advance_to(t0 + 1s) == 0);
  CHECK(clock.now() == t0 + 1s);
}

TEST_CASE(
    "test_clock: virtual time saturates, so a maximal delay armed afterwards does not "
    "overflow",
    "[test_clock]") {
  wq::test_clock clock;
  polled_queue p{"saturate"};
  c_delayed item;
  for (int i = 0; i < 3; ++i) (void)clock.advance(std::chrono::hours::max());
  const auto end = clock.now();
  CHECK(end > std::chrono::steady_clock::now() + std::chrono::hours(24 * 365 * 150));
  CHECK(clock.advance(wq::jiffies::max()) == 0);
  CHECK(clock.now() == end);  // saturated
  REQUIRE(wq::queue_delayed_work(p.q, item.d, wq::jiffies::max()));
  CHECK(item.d.deadline() == end + wq::max_delay);  // no wrap-around into the past
  CHECK(clock.advance(1h) == 0);
  p.poll();
  CHECK(item.runs.load() == 0);
  CHECK(wq::cancel_delayed_work(item.d));
}

// ---- rules 18, 19, 53: expiry exactly at the deadline -------------------------------------

TEST_CASE(
    "test_clock: an item fires when virtual time reaches its deadline, not a "
    "nanosecond before (rule 53)",
    "[test_clock][rule53]") {
  wq::test_clock clock;
  polled_queue p{"rule53-virtual"};
  c_delayed item;
  const auto t0 = clock.now();

  SECTION("chrono delay") {
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 100ms));
    CHECK(item.d.deadline() == t0 + 100ms);
    CHECK(clock.advance(100ms - 1ns) == 0);
  }
  SECTION("jiffies delay") {
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 100_jiffies));
    CHECK(item.d.deadline() == t0 + (100_jiffies).to_duration());
    CHECK(clock.advance_to(t0 + (100_jiffies).to_duration() - 1ns) == 0);
  }
  // Armed, not queued: nothing to run, and no Asio wait was started on wq's timer thread.
  CHECK(p.poll() == 0);
  CHECK(item.runs.load() == 0);
  CHECK(item.d.is_pending());
  CHECK(p.q.stats().armed == 1);
  CHECK(clock.armed_count() == 1);
  REQUIRE(clock.next_deadline());
  CHECK(*clock.next_deadline() == item.d.deadline());

  CHECK(clock.advance(1ns) == 1);
  CHECK(p.q.stats().armed == 0);
  CHECK(item.d.is_pending());  // queued now
  CHECK(p.poll() >= 1);
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(item.d.is_pending());
  CHECK_FALSE(clock.next_deadline());
  CHECK(clock.armed_count() == 0);
  CHECK(clock.advance(1h) == 0);  // fired once only
  p.poll();
  CHECK(item.runs.load() == 1);
}

TEST_CASE(
    "test_clock: an armed item is pending: queueing it again neither advances nor "
    "postpones its virtual deadline (rule 18)",
    "[test_clock][rule18]") {
  wq::test_clock clock;
  polled_queue p{"rule18-virtual"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(p.q, item.d, 50ms));
  const auto armed = item.d.deadline();
  CHECK_FALSE(wq::queue_delayed_work(p.q, item.d, 1ms));
  CHECK_FALSE(wq::queue_delayed_work(p.q, item.d, 1h));
  CHECK_FALSE(wq::queue_work(p.q, item.d));
  CHECK(p.q.queue_delayed(item.d, 0ms) == queue_status::already_pending);
  CHECK(item.d.deadline() == armed);
  CHECK(clock.advance(49ms) == 0);
  CHECK(clock.advance(1ms) == 1);
  // Fired, not yet run: still pending, still not re-armed by a delayed queueing.
  CHECK_FALSE(wq::queue_delayed_work(p.q, item.d, 1ms));
  CHECK(clock.armed_count() == 0);
  p.poll();
  CHECK(item.runs.load() == 1);
}

TEST_CASE("test_clock: a zero delay queues at once without the clock (rule 19)",
          "[test_clock][rule19]") {
  wq::test_clock clock;
  polled_queue p{"rule19-virtual"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(p.q, item.d, 0ms));
  CHECK(clock.armed_count() == 0);
  CHECK(p.poll() >= 1);
  CHECK(item.runs.load() == 1);
  CHECK(item.d.deadline() == std::chrono::steady_clock::time_point{});  // never armed
}

TEST_CASE("test_clock: an item fires on the queue it was armed for (rule 54)",
          "[test_clock][rule54]") {
  wq::test_clock clock;
  polled_queue a{"rule54-a"};
  polled_queue b{"rule54-b"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(a.q, item.d, 10ms));
  CHECK_FALSE(wq::queue_delayed_work(b.q, item.d, 1ms));
  CHECK(clock.advance(10ms) == 1);
  CHECK(b.poll() == 0);
  CHECK(item.runs.load() == 0);
  CHECK(a.poll() >= 1);
  CHECK(item.runs.load() == 1);
}

// ---- order ---------------------------------------------------------------------------------

TEST_CASE(
    "test_clock: one advance queues the due items in deadline order, ties in arming "
    "order (rules 39, 53)",
    "[test_clock][rule39]") {
  wq::test_clock clock;
  polled_queue p{"order", true};  // ordered
  std::vector<std::string> ran;
  auto record = [&](const char* name) {
    return [&ran, name](fn_delayed_item&) { ran.push_back(name); };
  };
  fn_delayed_item a{record("a")};
  fn_delayed_item b{record("b")};
  fn_delayed_item c{record("c")};
  fn_delayed_item d{record("d")};
  fn_delayed_item late{record("late")};
  REQUIRE(wq_test::enqueue_delayed(p.q, a, 30ms) == queue_status::queued);
  REQUIRE(wq_test::enqueue_delayed(p.q, b, 10ms) == queue_status::queued);
  REQUIRE(wq_test::enqueue_delayed(p.q, c, 20ms) == queue_status::queued);
  REQUIRE(wq_test::enqueue_delayed(p.q, d, 10ms) == queue_status::queued);
  REQUIRE(wq_test::enqueue_delayed(p.q, late, 31ms) == queue_status::queued);
  CHECK(clock.advance(30ms) == 4);
  p.poll();
  CHECK(ran == std::vector<std::string>{"b", "d", "c", "a"});
  CHECK(late.d.is_pending());
  CHECK(clock.advance(1ms) == 1);
  p.poll();
  CHECK(ran.back() == "late");
}

TEST_CASE(
    "test_clock: a delayed item takes its place in an ordered queue when it fires, not "
    "when it was armed (rule 39)",
    "[test_clock][rule39]") {
  wq::test_clock clock;
  polled_queue p{"order-fire", true};  // ordered
  std::vector<std::string> ran;
  fn_item x{[&](fn_item&) { ran.push_back("x"); }};
  fn_item y{[&](fn_item&) { ran.push_back("y"); }};
  fn_item z{[&](fn_item&) { ran.push_back("z"); }};
  fn_delayed_item d{[&](fn_delayed_item&) { ran.push_back("d"); }};
  REQUIRE(wq_test::enqueue(p.q, x) == queue_status::queued);
  REQUIRE(wq_test::enqueue_delayed(p.q, d, 5ms) == queue_status::queued);
  REQUIRE(wq_test::enqueue(p.q, y) == queue_status::queued);
  CHECK(clock.advance(5ms) == 1);
  REQUIRE(wq_test::enqueue(p.q, z) == queue_status::queued);
  p.poll();
  CHECK(ran == std::vector<std::string>{"x", "y", "d", "z"});
}

TEST_CASE(
    "test_clock: items armed while advance runs, even by the items it queued, count from "
    "the new time",
    "[test_clock][rule53]") {
  wq::test_clock clock;
  wq::workqueue q{"rearm", {.threads = 2}};
  std::atomic<int> runs{0};
  fn_delayed_item beat{[&](fn_delayed_item& self) {
    runs.fetch_add(1);
    (void)wq_test::enqueue_delayed(q, self, 10ms);  // may run before advance returns
  }};
  const auto t0 = clock.now();
  REQUIRE(wq_test::enqueue_delayed(q, beat, 10ms) == queue_status::queued);

  // One jump: the item is due once, whatever the workers do meanwhile.
  CHECK(clock.advance(100ms) == 1);
  q.flush();
  CHECK(runs.load() == 1);
  REQUIRE(clock.next_deadline());
  CHECK(*clock.next_deadline() == t0 + 110ms);

  // Stepping with a settle function that runs the queue to idle: a 10 ms heartbeat beats ten
  // times in 100 ms.
  CHECK(clock.advance(100ms, [&] { q.flush(); }) == 10);
  CHECK(runs.load() == 11);
  CHECK(clock.now() == t0 + 200ms);
  CHECK(*clock.next_deadline() == t0 + 210ms);
  CHECK(wq::cancel_delayed_work_sync(beat.d));
}

TEST_CASE("test_clock: advance with settle calls it after each due deadline and at the end",
          "[test_clock]") {
  wq::test_clock clock;
  polled_queue p{"settle"};
  c_delayed a;
  c_delayed b;
  const auto t0 = clock.now();
  REQUIRE(wq::queue_delayed_work(p.q, a.d, 3ms));
  REQUIRE(wq::queue_delayed_work(p.q, b.d, 7ms));
  std::vector<std::chrono::nanoseconds> settled_at;
  CHECK(clock.advance(10ms, [&] {
    settled_at.push_back(clock.now() - t0);
    p.poll();
  }) == 2);
  CHECK(settled_at == std::vector<std::chrono::nanoseconds>{3ms, 7ms, 10ms});
  CHECK(a.runs.load() == 1);
  CHECK(b.runs.load() == 1);
  // Nothing due: settle still runs once, at the target.
  settled_at.clear();
  CHECK(clock.advance(5ms, [&] { settled_at.push_back(clock.now() - t0); }) == 0);
  CHECK(settled_at == std::vector<std::chrono::nanoseconds>{15ms});
}

// ---- rule 20: mod_delayed_work --------------------------------------------------------------

TEST_CASE("test_clock: mod_delayed_work moves a virtual deadline later or earlier (rule 20)",
          "[test_clock][mod][rule20]") {
  wq::test_clock clock;
  polled_queue p{"rule20-virtual"};
  c_delayed item;
  const auto t0 = clock.now();

  SECTION("idle: queued with the delay, returns false") {
    CHECK_FALSE(wq::mod_delayed_work(p.q, item.d, 20ms));
    CHECK(item.d.deadline() == t0 + 20ms);
    CHECK(clock.advance(19ms) == 0);
    CHECK(clock.advance(1ms) == 1);
  }
  SECTION("later: not at the old deadline, at the new one") {
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 1s));
    for (int i = 1; i <= 100; ++i) CHECK(wq::mod_delayed_work(p.q, item.d, 1s + i * 3ms));
    CHECK(item.d.deadline() == t0 + 1300ms);
    CHECK(clock.advance(1s) == 0);
    p.poll();
    CHECK(item.runs.load() == 0);
    CHECK(clock.advance(300ms) == 1);
  }
  SECTION("earlier: at the new deadline, long before the old one") {
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 30s));
    CHECK(clock.advance(5ms) == 0);
    CHECK(wq::mod_delayed_work(p.q, item.d, 20ms));  // from now: t0 + 25 ms
    CHECK(clock.advance(19ms) == 0);
    CHECK(clock.advance(1ms) == 1);
  }
  SECTION("to zero: queued at once") {
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 30s));
    CHECK(wq::mod_delayed_work(p.q, item.d, 0ms));
    CHECK(clock.armed_count() == 0);
  }
  p.poll();
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(item.d.is_pending());
  CHECK(clock.advance(1h) == 0);  // no stale instance fires later
  p.poll();
  CHECK(item.runs.load() == 1);
}

TEST_CASE(
    "test_clock: mod_delayed_work postpones an item that fired but has not started "
    "(rule 20a)",
    "[test_clock][mod][rule20]") {
  wq::test_clock clock;
  polled_queue p{"rule20a-virtual"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(p.q, item.d, 1s));
  CHECK(clock.advance(1s) == 1);  // queued on the (unpolled) queue
  CHECK(wq::mod_delayed_work(p.q, item.d, 5s));
  CHECK(clock.armed_count() == 1);
  p.poll();
  CHECK(item.runs.load() == 0);
  CHECK(clock.advance(5s - 1ns) == 0);
  CHECK(clock.advance(1ns) == 1);
  p.poll();
  CHECK(item.runs.load() == 1);
}

TEST_CASE("test_clock: mod_delayed_work moves an armed item to another queue (rule 20b)",
          "[test_clock][mod][rule20]") {
  wq::test_clock clock;
  polled_queue a{"rule20b-a"};
  polled_queue b{"rule20b-b"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(a.q, item.d, 10s));
  CHECK(wq::mod_delayed_work(b.q, item.d, 1s));
  CHECK(a.q.stats().armed == 0);
  CHECK(b.q.stats().armed == 1);
  CHECK(clock.advance(10s) == 1);
  CHECK(a.poll() == 0);
  b.poll();
  CHECK(item.runs.load() == 1);
}

TEST_CASE(
    "test_clock: mod_delayed_work of an item that is only running arms it again, and it "
    "runs after the current run (rule 20c)",
    "[test_clock][mod][rule20]") {
  wq::test_clock clock;
  polled_queue p{"rule20c-virtual"};
  c_delayed item;
  bool mod_result = true;
  item.body = [&](c_delayed& self) {
    if (self.runs.load() == 0) mod_result = wq::mod_delayed_work(p.q, self.d, 10ms);
  };
  REQUIRE(wq::queue_delayed_work(p.q, item.d, 0ms));
  p.poll();
  CHECK_FALSE(mod_result);  // it was not pending: queued (armed) anew
  CHECK(item.runs.load() == 1);
  CHECK(clock.advance(10ms) == 1);
  p.poll();
  CHECK(item.runs.load() == 2);
}

TEST_CASE("test_clock: mod_delayed_work of a disabled item does not arm it (rules 20d, 33)",
          "[test_clock][mod][rule20][rule33]") {
  wq::test_clock clock;
  polled_queue p{"rule20d-virtual"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(p.q, item.d, 10ms));
  CHECK(wq::disable_delayed_work(item.d));  // was armed: cancelled
  CHECK_FALSE(wq::mod_delayed_work(p.q, item.d, 10ms));
  CHECK(clock.armed_count() == 0);
  CHECK(clock.advance(1h) == 0);
  p.poll();
  CHECK(item.runs.load() == 0);
  CHECK(wq::enable_delayed_work(item.d));  // enabling queues nothing (rule 34)
  CHECK(clock.advance(1h) == 0);
  CHECK_FALSE(item.d.is_pending());
}

// ---- rules 24, 31, 32: flush and cancel -----------------------------------------------------

TEST_CASE("test_clock: a cancelled item never fires (rule 31)", "[test_clock][cancel][rule31]") {
  wq::test_clock clock;
  polled_queue p{"rule31-virtual"};
  c_delayed item;
  c_delayed other;
  REQUIRE(wq::queue_delayed_work(p.q, item.d, 20ms));
  REQUIRE(wq::queue_delayed_work(p.q, other.d, 20ms));
  CHECK(wq::cancel_delayed_work(item.d));
  CHECK_FALSE(wq::cancel_delayed_work(item.d));
  CHECK(clock.advance(1h) == 1);  // only the other one
  p.poll();
  CHECK(item.runs.load() == 0);
  CHECK(other.runs.load() == 1);
  // Re-arming after the cancel counts from the current virtual time.
  REQUIRE(wq::queue_delayed_work(p.q, item.d, 20ms));
  CHECK(item.d.deadline() == clock.now() + 20ms);
  CHECK(clock.advance(20ms) == 1);
  p.poll();
  CHECK(item.runs.load() == 1);
}

TEST_CASE("test_clock: an item armed for max_delay has no deadline: no advance fires it (§3.2)",
          "[test_clock][s3_2]") {
  wq::test_clock clock;
  polled_queue p{"s3_2-virtual"};
  c_delayed never;
  c_delayed soon;
  REQUIRE(wq::queue_delayed_work(p.q, never.d, wq::max_delay));
  REQUIRE(wq::queue_delayed_work(p.q, soon.d, std::chrono::hours::max()));  // saturates too
  CHECK(never.d.deadline() == wq::test_clock::time_point::max());
  CHECK_FALSE(clock.next_deadline().has_value());  // nothing is ever due
  CHECK(clock.advance(wq::max_delay) == 0);
  CHECK(clock.advance(std::chrono::hours::max()) == 0);  // to the end of the clock's range
  p.poll();
  CHECK(never.runs.load() == 0);
  CHECK(soon.runs.load() == 0);
  CHECK(wq::delayed_work_pending(never.d));
  // mod_delayed_work ends the wait as for any armed item (rule 20).
  CHECK(wq::mod_delayed_work(p.q, never.d, 0ms));
  CHECK(wq::cancel_delayed_work(soon.d));
  p.poll();
  CHECK(never.runs.load() == 1);
}

TEST_CASE(
    "test_clock: cancel_delayed_work_sync of an armed item returns at once, and stops a "
    "self-re-arming item (rule 32)",
    "[test_clock][cancel][rule32]") {
  wq::test_clock clock;
  wq::workqueue q{"rule32-virtual", {.threads = 2}};
  std::atomic<int> runs{0};
  fn_delayed_item item{[&](fn_delayed_item& self) {
    runs.fetch_add(1);
    (void)wq_test::enqueue_delayed(q, self, 1ms);
  }};
  REQUIRE(wq_test::enqueue_delayed(q, item, 1ms) == queue_status::queued);
  CHECK(clock.advance(5ms, [&] { q.flush(); }) == 5);
  CHECK(runs.load() == 5);
  CHECK(item.d.is_pending());  // armed for t + 6 ms
  CHECK(wq::cancel_delayed_work_sync(item.d));
  CHECK_FALSE(item.d.is_pending());
  CHECK(clock.advance(1h, [&] { q.flush(); }) == 0);
  CHECK(runs.load() == 5);
}

TEST_CASE(
    "test_clock: flush_delayed_work fires a virtually armed item now and waits for it "
    "(rule 24)",
    "[test_clock][flush][rule24]") {
  wq::test_clock clock;
  wq::workqueue q{"rule24-virtual", {.threads = 1}};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(q, item.d, 1h));
  const auto t = clock.now();
  CHECK(wq::flush_delayed_work(item.d));
  CHECK(item.runs.load() == 1);
  CHECK(clock.now() == t);  // time did not move
  CHECK(clock.armed_count() == 0);
  CHECK(clock.advance(1h) == 0);
  CHECK_FALSE(wq::flush_delayed_work(item.d));
}

TEST_CASE("test_clock: writes made before advance are visible in the items it queued (rule 6)",
          "[test_clock][rule6]") {
  wq::test_clock clock;
  wq::workqueue q{"rule6-virtual", {.threads = 2}};
  int plain = 0;  // no atomics: ThreadSanitizer checks the happens-before edge
  int seen = -1;
  fn_delayed_item item{[&](fn_delayed_item&) { seen = plain; }};
  REQUIRE(wq_test::enqueue_delayed(q, item, 10ms) == queue_status::queued);
  plain = 42;
  CHECK(clock.advance(10ms) == 1);
  q.flush();
  CHECK(seen == 42);
}

// advance() reads now() under the clock's mutex: two threads each stepping 1 us 1000 times
// move time by 2000 us, and every item due by then is queued once. (Reading it before the
// mutex, a step that waited there moved time to its stale target, i.e. not at all: 1915-1999
// us, with the items due at the end left armed.)
TEST_CASE("test_clock: advance from two threads at once moves time by the sum of their steps",
          "[test_clock][stress]") {
  wq::test_clock clock;
  wq::workqueue q{"advance-sum", {.threads = 2}};
  constexpr int steps = 1000;  // per thread
  const auto start = clock.now();
  std::atomic<int> ran{0};
  std::vector<std::unique_ptr<fn_delayed_item>> items;
  for (int i = 1; i <= 2 * steps; ++i) {
    items.push_back(std::make_unique<fn_delayed_item>([&](fn_delayed_item&) { ran.fetch_add(1); }));
    REQUIRE(wq_test::enqueue_delayed(q, *items.back(), i * 1us) == queue_status::queued);
  }
  std::atomic<std::size_t> queued{0};
  std::atomic<bool> go{false};
  auto stepper = [&] {
    while (!go.load()) {
    }
    for (int k = 0; k < steps; ++k) queued.fetch_add(clock.advance(1us));
  };
  std::thread a(stepper);
  std::thread b(stepper);
  go = true;
  a.join();
  b.join();
  CHECK(clock.now() - start == 2 * steps * 1us);
  CHECK(queued.load() == 2 * steps);
  CHECK(q.flush() == std::error_code{});
  CHECK(ran.load() == 2 * steps);
  CHECK(clock.armed_count() == 0);
}

// ---- rules 49, 50: drain and destroy --------------------------------------------------------

TEST_CASE(
    "test_clock: an item due while its queue drains is held until the drain ends "
    "(rule 49)",
    "[test_clock][drain][rule49]") {
  wq::test_clock clock;
  latch x_running{1};
  latch release{1};
  std::atomic<bool> x_finished{false};
  fn_item x{[&](fn_item&) {
    x_running.count_down();
    (void)release.wait_for(must_happen);
    x_finished.store(true);
  }};
  fn_item probe{[](fn_item&) {}};
  std::atomic<int> item_runs{0};
  std::atomic<bool> item_saw_x_finished{false};
  fn_delayed_item item{[&](fn_delayed_item&) {
    item_saw_x_finished.store(x_finished.load());
    item_runs.fetch_add(1);
  }};
  wq::workqueue q{"drain-virtual", {.threads = 4}};
  REQUIRE(wq_test::enqueue(q, x) == queue_status::queued);
  REQUIRE(x_running.wait_for(must_happen));
  REQUIRE(wq_test::enqueue_delayed(q, item, 300ms) == queue_status::queued);
  std::jthread drainer([&] { q.drain(); });
  // Outside queueing is refused once the drain has started.
  REQUIRE(
      wq_test::poll_until([&] { return wq_test::enqueue(q, probe) == queue_status::rejected; }));
  CHECK(clock.advance(300ms) == 1);  // due during the drain: held back
  CHECK(item.d.is_pending());
  CHECK(q.stats().armed == 0);
  CHECK(item_runs.load() == 0);
  release.count_down();
  drainer.join();
  q.flush();  // queued when the drain ended
  CHECK(item_runs.load() == 1);
  CHECK(item_saw_x_finished.load());
}

TEST_CASE("test_clock: destroying a queue cancels its virtually armed items (rule 50)",
          "[test_clock][destroy][rule50]") {
  wq_test::warning_catcher warnings;
  wq::test_clock clock;
  auto item = std::make_unique<c_delayed>();
  {
    wq::workqueue q{"destroy-virtual"};
    REQUIRE(wq::queue_delayed_work(q, item->d, 10s));
    CHECK(clock.armed_count() == 1);
    q.destroy();
    CHECK(q.cancelled_on_destroy() == 1);
  }
  CHECK(warnings.contains(wq::errc::armed_items_cancelled));
  CHECK_FALSE(item->d.is_pending());
  CHECK(clock.armed_count() == 0);
  CHECK(clock.advance(1h) == 0);
  CHECK(item->runs.load() == 0);
  item.reset();  // no Asio wait outstanding: the destructor does not block
}

TEST_CASE(
    "test_clock: a virtually armed item destroyed while armed is cancelled and does not "
    "block (§5.10)",
    "[test_clock][lifetime]") {
  wq_test::warning_catcher warnings;
  wq::test_clock clock;
  polled_queue p{"destroy-item-virtual"};
  {
    c_delayed item;
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 10ms));
  }
  CHECK(warnings.contains(wq::errc::destroyed_while_pending));
  CHECK(clock.armed_count() == 0);
  CHECK(clock.advance(1h) == 0);
}

// ---- timer contexts and post_delayed --------------------------------------------------------

using wq_test::ctx_item;

TEST_CASE(
    "test_clock: an item on the application's io_context starts no Asio wait and fires "
    "inside advance",
    "[test_clock][timer_context]") {
  wq::test_clock clock;
  boost::asio::io_context timers;
  polled_queue p{"app-ctx-virtual"};
  ctx_item item{timers};
  REQUIRE(wq::queue_delayed_work(p.q, item.dw, 1h));
  // A real wait would be outstanding work on `timers`: poll would leave it running.
  CHECK(timers.poll() == 0);
  CHECK(timers.stopped());
  CHECK(wq::mod_delayed_work(p.q, item.dw, 2h));
  CHECK(clock.advance(2h) == 1);
  p.poll();
  CHECK(item.runs.load() == 1);
  timers.restart();
  CHECK(timers.poll() == 0);
}

TEST_CASE("test_clock: post_delayed completes when virtual time reaches the delay (rule 53)",
          "[test_clock][post_delayed]") {
  wq::test_clock clock;
  polled_queue p{"post-delayed-virtual"};
  int calls = 0;
  boost::system::error_code got = boost::asio::error::timed_out;
  wq::post_delayed(p.q, 250ms, [&](boost::system::error_code ec) {
    ++calls;
    got = ec;
  });
  CHECK(clock.advance(249ms) == 0);
  p.poll();
  CHECK(calls == 0);
  CHECK(clock.advance(1ms) == 1);
  p.poll();
  CHECK(calls == 1);
  CHECK_FALSE(got);
}

// ---- hand-over between real and virtual time ------------------------------------------------

TEST_CASE(
    "test_clock: an item armed with a real timer before the clock is adopted: it fires "
    "when virtual time reaches its deadline",
    "[test_clock][adopt]") {
  SECTION("its real wait has not completed") {
    polled_queue p{"adopt-outstanding"};
    c_delayed item;
    REQUIRE(wq::queue_delayed_work(p.q, item.d, 1h));  // a real wait on wq's timer thread
    const auto deadline = item.d.deadline();
    wq::test_clock clock;
    CHECK(clock.armed_count() == 1);
    REQUIRE(clock.next_deadline());
    CHECK(*clock.next_deadline() == deadline);
    CHECK(clock.advance_to(deadline - 1ns) == 0);
    CHECK(clock.advance(1ns) == 1);
    p.poll();
    CHECK(item.runs.load() == 1);
    // The real wait is still outstanding; destroying the item (at scope end) cancels it and
    // waits for its completion, which finds the item no longer armed.
  }
  SECTION("its real wait completes while virtual time has not reached the deadline") {
    // The one wait for real time in this file: the item's 300 ms real timer must expire.
    boost::asio::io_context timers;
    polled_queue p{"adopt-expired"};
    ctx_item item{timers};
    REQUIRE(wq::queue_delayed_work(p.q, item.dw, 300ms));
    const auto deadline = item.dw.deadline();
    wq::test_clock clock;
    REQUIRE(clock.now() < deadline);  // installed within 300 ms of arming
    // Returns once the real wait has completed: it found virtual time short of the deadline,
    // so it neither queued the item nor started another wait.
    timers.run();
    CHECK(std::chrono::steady_clock::now() >= deadline);
    CHECK(p.poll() == 0);
    CHECK(item.runs.load() == 0);
    CHECK(p.q.stats().armed == 1);
    CHECK(clock.advance_to(deadline) == 1);
    p.poll();
    CHECK(item.runs.load() == 1);
  }
}

TEST_CASE(
    "test_clock: when the clock goes, items still armed get real timers for the virtual "
    "time they had left",
    "[test_clock][lifetime]") {
  SECTION("wq's timer thread") {
    latch done{1};
    c_delayed item;
    item.done = &done;
    wq::workqueue q{"hand-back"};
    std::chrono::steady_clock::time_point gone;
    {
      wq::test_clock clock;
      REQUIRE(wq::queue_delayed_work(q, item.d, 10s));
      CHECK(clock.advance(10s - 20ms) == 0);
      gone = std::chrono::steady_clock::now();
    }
    // 20 ms of real time were left: the new deadline is real, not ten seconds away.
    CHECK(item.d.deadline() >= gone + 20ms);
    CHECK(item.d.deadline() <= std::chrono::steady_clock::now() + 20ms);
    REQUIRE(done.wait_for(must_happen));
    CHECK(item.ran_at_ns.load() >=
          std::chrono::duration_cast<std::chrono::nanoseconds>((gone + 20ms).time_since_epoch())
              .count());
    q.flush();
    CHECK(item.runs.load() == 1);
  }
  SECTION("the application's io_context") {
    boost::asio::io_context timers;
    polled_queue p{"hand-back-ctx"};
    ctx_item item{timers};
    std::chrono::steady_clock::time_point gone;
    {
      wq::test_clock clock;
      REQUIRE(wq::queue_delayed_work(p.q, item.dw, 1h));
      CHECK(clock.advance(1h - 30ms) == 0);
      gone = std::chrono::steady_clock::now();
    }
    timers.run();  // the real wait for the 30 ms that were left
    CHECK(std::chrono::steady_clock::now() >= gone + 30ms);
    p.poll();
    CHECK(item.runs.load() == 1);
  }
  SECTION("an item armed after the clock went keeps its real deadline") {
    wq::workqueue q{"after-clock"};
    c_delayed item;
    {
      wq::test_clock clock;
      (void)clock.advance(24h);
    }
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(wq::queue_delayed_work(q, item.d, 1h));
    CHECK(item.d.deadline() >= t0 + 1h);
    CHECK(item.d.deadline() <= std::chrono::steady_clock::now() + 1h);
    CHECK(wq::cancel_delayed_work(item.d));
  }
}

// ---- many threads ---------------------------------------------------------------------------

TEST_CASE("test_clock: stress: periodic items on two queues step in lock-step with the clock",
          "[test_clock][stress]") {
  // Every item re-arms itself for 1 ms from its worker thread while the test thread advances:
  // with settle = flush each step runs every item exactly once (ThreadSanitizer checks the
  // hand-offs between advance, the workers and the re-arming).
  constexpr int per_queue = 8;
  constexpr int steps = 50;
  wq::test_clock clock;
  wq::workqueue qa{"stress-a", {.threads = 2}};
  wq::workqueue qb{"stress-b", {.threads = 2}};
  std::vector<std::unique_ptr<fn_delayed_item>> items;
  std::atomic<int> runs{0};
  for (int i = 0; i < 2 * per_queue; ++i) {
    wq::workqueue& q = i % 2 == 0 ? qa : qb;
    items.push_back(std::make_unique<fn_delayed_item>([&runs, &q](fn_delayed_item& self) {
      runs.fetch_add(1);
      (void)wq_test::enqueue_delayed(q, self, 1ms);
    }));
    REQUIRE(wq_test::enqueue_delayed(q, *items.back(), 1ms) == queue_status::queued);
  }
  const std::size_t queued = clock.advance(std::chrono::milliseconds(steps), [&] {
    qa.flush();
    qb.flush();
  });
  CHECK(queued == static_cast<std::size_t>(2 * per_queue * steps));
  CHECK(runs.load() == 2 * per_queue * steps);
  CHECK(clock.armed_count() == static_cast<std::size_t>(2 * per_queue));
  for (auto& it : items) CHECK(wq::cancel_delayed_work_sync(it->d));
}

}  // namespace
