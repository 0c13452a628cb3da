// SPDX-License-Identifier: BSL-1.0
// Tests for wq/delayed_work.hpp: size and pinning, delays that are never early (rule 53), the
// pending rules for delayed queueing (rule 18), zero delays (rule 19), the target queue
// recorded at queue time (rule 54), chrono and jiffies delays, periodic self-re-arming, C-style
// delayed items, and armed items cancelled by a queue's destroy().
//
// Timing tolerance: a delayed item must never run before its delay (no tolerance below); the
// upper bound is generous (delay + 2 s, or a 4 s latch timeout) because sanitizer builds on a
// loaded 2-core machine can be slow. No test sleeps: results are handed over through latches.
// Tests of the pending rules run on virtual time (wq/test_clock.hpp); the real timer path keeps
// its own tests (rule 53, periodic re-arming, application io_contexts, destroy).
#include <wq/delayed_work.hpp>
#include <wq/detail/delayed_work.hpp>
#include <wq/detail/handler_memory.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <limits>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <wq/cancel.hpp>
#include <wq/container_of.hpp>
#include <wq/flush.hpp>
#include <wq/jiffies.hpp>
#include <wq/kernel.hpp>
#include <wq/shared_work.hpp>
#include <wq/test_clock.hpp>
#include <wq/workqueue.hpp>

#include "support/io.hpp"
#include "support/items.hpp"
#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using namespace wq::literals;
using clock_type = std::chrono::steady_clock;
using wq_test::latch;

constexpr auto upper_slack = std::chrono::seconds(2);

/// A delayed item queued through a raw pointer that records when, where and under which
/// deadline it ran. The fields are written by run and read by the test after the latch.
struct timed_item {
  wq::delayed_work d;
  latch* done = nullptr;
  clock_type::time_point ran_at{};
  clock_type::time_point deadline_in_run{};
  std::thread::id ran_on{};
  int runs = 0;

  static void run(timed_item* self, wq::id<&timed_item::d>) noexcept {
    self->ran_at = clock_type::now();
    self->deadline_in_run = self->d.deadline();
    self->ran_on = std::this_thread::get_id();
    ++self->runs;
    if (self->done != nullptr) self->done->count_down();
  }
};

// ---- size and pinning ------------------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<wq::delayed_work>);
static_assert(!std::is_move_constructible_v<wq::delayed_work>);
static_assert(!std::is_copy_assignable_v<wq::delayed_work>);
static_assert(!std::is_move_assignable_v<wq::delayed_work>);
static_assert(std::is_base_of_v<wq::work, wq::delayed_work>);
static_assert(sizeof(wq::delayed_work) <= 160, "wq::delayed_work must stay within 160 bytes");

TEST_CASE("delayed_work: is at most 160 bytes, pinned, and idle when constructed",
          "[delayed_work][size]") {
  WARN("sizeof(wq::delayed_work) = " << sizeof(wq::delayed_work)
                                     << ", alignof = " << alignof(wq::delayed_work));
  REQUIRE(sizeof(wq::delayed_work) <= 160);

  wq::delayed_work d;
  CHECK_FALSE(d.is_pending());
  CHECK_FALSE(wq::delayed_work_pending(d));
  CHECK(d.deadline() == clock_type::time_point{});
}

// ---- rule 53: never early --------------------------------------------------------------------

// Arms `item` on `q` with `delay`, waits for it, and checks it ran no earlier than `expected`
// after the call (and no earlier than the deadline it was armed for), within upper_slack.
template <class Delay>
void check_not_early(wq::workqueue& q, Delay delay, std::chrono::nanoseconds expected) {
  latch done{1};
  timed_item item;
  item.done = &done;
  const auto t0 = clock_type::now();
  REQUIRE(q.enqueue_delayed<&timed_item::d>(&item, delay).queued());
  CHECK(wq::delayed_work_pending(item.d));
  const auto armed_deadline = item.d.deadline();
  CHECK(armed_deadline >= t0 + expected);
  REQUIRE(
      done.wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(expected) + upper_slack));
  q.drain();
  const auto waited = item.ran_at - t0;
  INFO("expected at least " << expected.count() << " ns, waited "
                            << std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count()
                            << " ns");
  CHECK(waited >= expected);
  CHECK(item.ran_at >= armed_deadline);
  CHECK(item.deadline_in_run == armed_deadline);
  CHECK(waited <= expected + upper_slack);
  CHECK(item.runs == 1);
  CHECK_FALSE(item.d.is_pending());
}

TEST_CASE("delayed_work: never runs before its delay has passed (rule 53)",
          "[delayed_work][rule53][timing]") {
  wq::workqueue q{"rule53"};
  SECTION("jiffies") { check_not_early(q, 20_jiffies, (20_jiffies).to_duration()); }
  SECTION("one jiffy") { check_not_early(q, 1_jiffies, (1_jiffies).to_duration()); }
  SECTION("milliseconds") { check_not_early(q, 25ms, 25ms); }
  SECTION("microseconds") { check_not_early(q, 3500us, 3500us); }
  SECTION("nanoseconds") { check_not_early(q, 2'000'001ns, 2'000'001ns); }
  SECTION("seconds") { check_not_early(q, std::chrono::seconds(1), 1s); }
  SECTION("floating-point milliseconds") {
    check_not_early(q, std::chrono::duration<double, std::milli>(12.5), 12'500'000ns);
  }
}

TEST_CASE(
    "delayed_work: a real deadline is rounded up to the next multiple of 1024 ns, never down, "
    "and a virtual one is exact (rule 53)",
    "[delayed_work][rule53]") {
  wq::workqueue q{"rule53-grain"};
  std::vector<std::unique_ptr<timed_item>> items;
  for (int i = 0; i < 200; ++i) items.push_back(std::make_unique<timed_item>());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto delay = std::chrono::nanoseconds(3'600'000'000'000 + 137 * (i % 7));
    const auto before = clock_type::now();
    REQUIRE(q.enqueue_delayed<&timed_item::d>(items[i].get(), delay).queued());
    const auto after = clock_type::now();
    const auto at = items[i]->d.deadline();
    CHECK(at >= before + delay);
    CHECK(at < after + delay + 1024ns);
    CHECK(at.time_since_epoch() % 1024ns == 0ns);
  }
  for (auto& it : items) REQUIRE(wq::cancel_delayed_work_sync(it->d));

  wq::test_clock clock;
  timed_item v;
  const auto t0 = clock.now();
  REQUIRE(q.enqueue_delayed<&timed_item::d>(&v, 1'000'001ns).queued());
  CHECK(v.d.deadline() == t0 + 1'000'001ns);
  REQUIRE(wq::cancel_delayed_work_sync(v.d));
}

// ---- rule 18: already pending leaves the timer alone -----------------------------------------

TEST_CASE(
    "delayed_work: queueing an armed item returns already_pending and leaves its "
    "deadline alone (rule 18)",
    "[delayed_work][rule18][test_clock]") {
  wq::test_clock clock;  // virtual time: the deadlines below are exact
  latch done{1};
  timed_item item;
  item.done = &done;
  wq::workqueue q{"rule18"};

  const auto t0 = clock.now();
  REQUIRE(q.enqueue_delayed<&timed_item::d>(&item, 150ms).queued());
  const auto armed = item.d.deadline();
  CHECK(armed == t0 + 150ms);

  // Neither advanced (shorter or zero delay, plain enqueue) ...
  auto sooner = q.enqueue_delayed<&timed_item::d>(&item, 1ms);
  CHECK(sooner.status == wq::queue_status::already_pending);
  CHECK(sooner.pointer == &item);
  CHECK(q.enqueue_delayed<&timed_item::d>(&item, 0_jiffies).status ==
        wq::queue_status::already_pending);
  CHECK(q.enqueue<&timed_item::d>(&item).status == wq::queue_status::already_pending);
  // ... nor postponed.
  CHECK(q.enqueue_delayed<&timed_item::d>(&item, 30s).status == wq::queue_status::already_pending);
  CHECK_FALSE(wq::queue_delayed_work(q, item.d, 10_jiffies));
  CHECK(item.d.deadline() == armed);

  // Runs once, at the original deadline, long before the postponed one would be.
  CHECK(clock.advance(150ms - 1ns) == 0);
  CHECK(clock.advance(1ns) == 1);
  REQUIRE(done.wait_for(4s));
  q.drain();
  CHECK(clock.advance(1h) == 0);
  CHECK(item.runs == 1);
  CHECK(item.d.deadline() == armed);
}

TEST_CASE(
    "delayed_work: an item already on a queue is pending for delayed queueing too "
    "(rule 18)",
    "[delayed_work][rule18][test_clock]") {
  SECTION("queued with a zero delay") {
    boost::asio::io_context io;  // not run yet: the item stays queued
    timed_item item;
    wq::workqueue q{io.get_executor(), "rule18-queued"};
    wq_test::drive_on_exit drive{io};

    REQUIRE(q.enqueue<&timed_item::d>(&item).queued());
    CHECK(q.enqueue_delayed<&timed_item::d>(&item, 50ms).status ==
          wq::queue_status::already_pending);
    CHECK_FALSE(wq::queue_delayed_work(q, item.d, 5_jiffies));
    CHECK(item.d.deadline() == clock_type::time_point{});  // never armed
    wq_test::run_ready(io);
    CHECK(item.runs == 1);
    CHECK_FALSE(item.d.is_pending());
  }

  SECTION("fired, waiting behind a busy worker") {
    // A one-thread pool whose only worker is held by a blocker: the delayed item fires (in
    // virtual time, inside advance) and waits on the worklist.
    struct blocker {
      wq::work w;
      latch* started = nullptr;
      latch* release = nullptr;
      bool released = false;
      static void run(blocker* self, wq::id<&blocker::w>) noexcept {
        self->started->count_down();
        self->released = self->release->wait_for(std::chrono::seconds(8));
      }
    };
    wq::test_clock clock;
    latch started{1};
    latch release{1};
    latch done{1};
    blocker b;
    b.started = &started;
    b.release = &release;
    timed_item item;
    item.done = &done;
    wq::workqueue q{"rule18-fired", {.max_active = 1, .threads = 1}};

    REQUIRE(q.enqueue<&blocker::w>(&b).queued());
    REQUIRE(started.wait_for());
    REQUIRE(q.enqueue_delayed<&timed_item::d>(&item, 1ms).queued());
    const auto armed = item.d.deadline();
    CHECK(clock.advance(1ms) == 1);
    CHECK(q.stats().armed == 0);  // fired: on the worklist behind the blocker

    CHECK(item.d.is_pending());
    CHECK(item.runs == 0);
    CHECK(q.enqueue_delayed<&timed_item::d>(&item, 30s).status ==
          wq::queue_status::already_pending);
    CHECK(q.enqueue<&timed_item::d>(&item).status == wq::queue_status::already_pending);
    CHECK_FALSE(wq::queue_delayed_work(q, item.d, 5_jiffies));
    CHECK(item.d.deadline() == armed);
    CHECK(clock.armed_count() == 0);  // not re-armed by the 30 s attempt
    release.count_down();
    REQUIRE(done.wait_for(4s));
    q.drain();
    CHECK(b.released);
    CHECK(item.runs == 1);
  }
}

/// A C-style delayed item: its function steps from the work to the delayed_work, then to
/// the object.
struct c_delayed_item {
  explicit c_delayed_item(int v) : value(v) {}
  int value;
  int seen = 0;
  int runs = 0;
  latch* done = nullptr;
  wq::delayed_work d{wq::fn_ops<&c_delayed_item::fn>};
  static void fn(wq::work* w) noexcept {
    // The item is the `work` base of the delayed_work member (kernel to_delayed_work).
    auto* self = wq::container_of<&c_delayed_item::d>(wq::to_delayed_work(w));
    self->seen = self->value;
    ++self->runs;
    if (self->done != nullptr) self->done->count_down();
  }
};

// ---- rule 19: zero delay ---------------------------------------------------------------------

TEST_CASE("delayed_work: a zero delay queues at once without arming the timer (rule 19)",
          "[delayed_work][rule19]") {
  // The queue's io_context is polled right after the call: an item that went through a timer
  // (even a zero one) would still be on wq's timer thread and would not be found. The deadline
  // stays at its initial value because the timer is never touched.
  boost::asio::io_context io;
  timed_item item;
  wq::workqueue q{io.get_executor(), "rule19"};
  wq_test::drive_on_exit drive{io};

  auto immediately = [&](auto queue_it) {
    const int before = item.runs;
    REQUIRE(queue_it());
    CHECK(item.d.is_pending());
    CHECK(wq_test::run_ready(io) >= 1);
    CHECK(item.runs == before + 1);
    CHECK_FALSE(item.d.is_pending());
    CHECK(item.d.deadline() == clock_type::time_point{});
  };

  SECTION("0 jiffies") {
    immediately([&] { return q.enqueue_delayed<&timed_item::d>(&item, 0_jiffies).queued(); });
  }
  SECTION("0 ms") {
    immediately([&] { return q.enqueue_delayed<&timed_item::d>(&item, 0ms).queued(); });
  }
  SECTION("negative durations mean zero") {
    immediately([&] { return q.enqueue_delayed<&timed_item::d>(&item, -5ms).queued(); });
    immediately([&] { return q.enqueue_delayed<&timed_item::d>(&item, -1h).queued(); });
  }
  SECTION("NaN means zero") {
    immediately([&] {
      const std::chrono::duration<double> nan{std::numeric_limits<double>::quiet_NaN()};
      return q.enqueue_delayed<&timed_item::d>(&item, nan).queued();
    });
  }
  SECTION("plain enqueue of a delayed member") {
    immediately([&] { return q.enqueue<&timed_item::d>(&item).queued(); });
  }
  SECTION("C-style queue_delayed_work with 0") {
    c_delayed_item c{5};
    REQUIRE(wq::queue_delayed_work(q, c.d, 0_jiffies));
    CHECK(wq_test::run_ready(io) >= 1);
    CHECK(c.runs == 1);
    CHECK(c.seen == 5);
    CHECK(c.d.deadline() == clock_type::time_point{});
  }
}

TEST_CASE(
    "delayed_work: a jiffies delay that is negative as a long (a deadline already passed) "
    "queues at once like a zero delay (§3.1, rule 19)",
    "[delayed_work][jiffies][rule19]") {
  // `deadline - now` read after the deadline wraps to a huge unsigned count; the kernel's timer
  // reads it as a negative long and fires at once. Read as an unsigned count it would be a
  // ~100-year wait: the latch would time out. The deadline is never set: no timer was armed.
  wq::workqueue q{"t"};
  const wq::jiffies deadline{ULONG_MAX - 5};           // set just before the counter wraps
  const wq::jiffies now = deadline + wq::jiffies{10};  // read after it, and after the wrap
  REQUIRE(wq::time_after(now, deadline));
  const wq::jiffies passed = deadline - now;  // -10 as a long
  REQUIRE(passed.count() > wq::max_jiffy_offset);

  // Queues a fresh item with `queue_it`; it must run without waiting for any timer.
  auto runs_at_once = [&](auto queue_it, bool never_armed) {
    latch done{1};
    timed_item item;
    item.done = &done;
    REQUIRE(queue_it(item));
    REQUIRE(done.wait_for(wq_test::must_happen));
    CHECK(item.runs == 1);
    if (never_armed) CHECK(item.deadline_in_run == clock_type::time_point{});
    CHECK(q.flush() == std::error_code{});
    CHECK_FALSE(item.d.is_pending());
  };

  SECTION("typed enqueue_delayed with deadline - now") {
    runs_at_once(
        [&](timed_item& i) { return q.enqueue_delayed<&timed_item::d>(&i, passed).queued(); },
        true);
  }
  SECTION("typed enqueue_delayed with jiffies{ULONG_MAX} and jiffies{LONG_MAX + 1}") {
    runs_at_once(
        [&](timed_item& i) {
          return q.enqueue_delayed<&timed_item::d>(&i, wq::jiffies{ULONG_MAX}).queued();
        },
        true);
    runs_at_once(
        [&](timed_item& i) {
          const wq::jiffies long_min{static_cast<unsigned long>(LONG_MAX) + 1};
          return q.enqueue_delayed<&timed_item::d>(&i, long_min).queued();
        },
        true);
  }
  SECTION("typed mod_delayed_work of an armed item to a passed deadline") {
    // Armed for an hour first; only the new, passed deadline can make it run now.
    runs_at_once(
        [&](timed_item& i) {
          if (!q.enqueue_delayed<&timed_item::d>(&i, 1h).queued()) return false;
          const auto r = wq::mod_delayed_work<&timed_item::d>(q, &i, passed);
          return r.was_pending && r.status == wq::queue_status::queued;
        },
        false);
  }
  SECTION("C-style queue_delayed_work with deadline - now") {
    latch done{1};
    c_delayed_item c{7};
    c.done = &done;
    REQUIRE(wq::queue_delayed_work(q, c.d, passed));
    REQUIRE(done.wait_for(wq_test::must_happen));
    CHECK(c.runs == 1);
    CHECK(c.seen == 7);
    CHECK(c.d.deadline() == clock_type::time_point{});
    CHECK(q.flush() == std::error_code{});
  }
}

// ---- rule 54: the target queue is recorded when armed ----------------------------------------

TEST_CASE("delayed_work: an armed item fires on the queue it was armed for (rule 54)",
          "[delayed_work][rule54]") {
  wq_test::io_runner thread_a;
  wq_test::io_runner thread_b;
  timed_item item;
  wq::workqueue qa{thread_a.context().get_executor(), "rule54-a"};
  wq::workqueue qb{thread_b.context().get_executor(), "rule54-b"};

  {
    latch done{1};
    item.done = &done;
    REQUIRE(qa.enqueue_delayed<&timed_item::d>(&item, 30ms).queued());
    // While armed for A, B cannot take it, with or without a delay.
    CHECK(qb.enqueue_delayed<&timed_item::d>(&item, 1ms).status ==
          wq::queue_status::already_pending);
    CHECK(qb.enqueue<&timed_item::d>(&item).status == wq::queue_status::already_pending);
    REQUIRE(done.wait_for(4s));
    qa.drain();
    CHECK(item.ran_on == thread_a.id());
    CHECK(item.runs == 1);
  }
  {
    // Once idle, it may be armed for another queue.
    latch done{1};
    item.done = &done;
    REQUIRE(qb.enqueue_delayed<&timed_item::d>(&item, 5ms).queued());
    REQUIRE(done.wait_for(4s));
    qb.drain();
    CHECK(item.ran_on == thread_b.id());
    CHECK(item.runs == 2);
  }
}

// ---- periodic self-re-arming -----------------------------------------------------------------

struct periodic_item {
  static constexpr int periods = 6;
  static constexpr auto period = 5ms;
  wq::delayed_work d;
  wq::workqueue* q = nullptr;
  latch* done = nullptr;
  clock_type::time_point started[periods] = {};
  bool at_or_after_deadline[periods] = {};
  bool pending_inside[periods] = {};
  wq::queue_status rearm[periods] = {};
  int runs = 0;

  static void run(periodic_item* self, wq::id<&periodic_item::d>) noexcept {
    const int n = self->runs++;
    self->started[n] = clock_type::now();
    self->at_or_after_deadline[n] = self->started[n] >= self->d.deadline();
    self->pending_inside[n] = self->d.is_pending();
    if (n + 1 < periods) {
      self->rearm[n] = self->q->enqueue_delayed<&periodic_item::d>(self, period).status;
    } else {
      self->rearm[n] = wq::queue_status::queued;
      self->done->count_down();
    }
  }
};

TEST_CASE(
    "delayed_work: an item may re-arm itself from its own function (periodic work, "
    "rules 2, 53)",
    "[delayed_work][rule2][rule53]") {
  latch done{1};
  periodic_item item;
  wq::workqueue q{"periodic"};
  item.q = &q;
  item.done = &done;

  const auto t0 = clock_type::now();
  REQUIRE(q.enqueue_delayed<&periodic_item::d>(&item, periodic_item::period).queued());
  REQUIRE(done.wait_for(5s));
  q.drain();

  REQUIRE(item.runs == periodic_item::periods);
  CHECK(item.started[0] - t0 >= periodic_item::period);
  for (int i = 0; i < periodic_item::periods; ++i) {
    INFO("period " << i);
    CHECK(item.at_or_after_deadline[i]);
    CHECK_FALSE(item.pending_inside[i]);
    CHECK(item.rearm[i] == wq::queue_status::queued);
    // Re-armed from inside run i, so run i+1 starts at least one period after run i started.
    if (i > 0) CHECK(item.started[i] - item.started[i - 1] >= periodic_item::period);
  }
  CHECK_FALSE(item.d.is_pending());
}

// ---- rule 4 for delayed items ----------------------------------------------------------------

struct self_freeing_delayed : wq_test::counted {
  explicit self_freeing_delayed(wq_test::lifetime_counter& c) : counted(c) {}
  wq::delayed_work d;
  latch* started = nullptr;
  static void run(std::unique_ptr<self_freeing_delayed> self,
                  wq::id<&self_freeing_delayed::d>) noexcept {
    self->started->count_down();
    // `self` is destroyed on return: the item frees itself right after its timer fired.
  }
};

TEST_CASE("delayed_work: a fired item may free itself from its function (rule 4)",
          "[delayed_work][rule4]") {
  constexpr int n = 60;
  wq_test::lifetime_counter counter;
  latch started{n};
  {
    wq::workqueue q{"delayed-self-free"};
    for (int i = 0; i < n; ++i) {
      auto p = std::make_unique<self_freeing_delayed>(counter);
      p->started = &started;
      REQUIRE(q.enqueue_delayed<&self_freeing_delayed::d>(std::move(p),
                                                          std::chrono::milliseconds(1 + i % 4))
                  .queued());
    }
    REQUIRE(started.wait_for(5s));
    q.drain();  // every item has started, so every one is accounted for by the drain
    CHECK(counter.alive() == 0);
    CHECK(q.cancelled_on_destroy() == 0);
  }
  CHECK(counter.constructed.load() == n);
  CHECK(counter.destroyed.load() == n);
}

// ---- C-style delayed items -------------------------------------------------------------------

TEST_CASE("delayed_work: C-style queue_delayed_work returns the kernel's bool (rule 18)",
          "[delayed_work][rule18][c_style]") {
  latch done{1};
  c_delayed_item item{99};
  item.done = &done;
  wq::workqueue q{"c-delayed"};

  const auto t0 = clock_type::now();
  REQUIRE(wq::queue_delayed_work(q, item.d, 10_jiffies));
  CHECK(wq::delayed_work_pending(item.d));
  CHECK_FALSE(wq::queue_delayed_work(q, item.d, 10_jiffies));
  CHECK(q.queue_delayed(item.d, 1ms) == wq::queue_status::already_pending);
  CHECK_FALSE(wq::queue_work(q, item.d));
  REQUIRE(done.wait_for(4s));
  q.drain();
  CHECK(clock_type::now() - t0 >= (10_jiffies).to_duration());
  CHECK(item.seen == 99);
}

TEST_CASE(
    "delayed_work: delayed queueing of an item with no work function returns unbound "
    "and warns",
    "[delayed_work][unbound]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"delayed-unbound"};
  wq::delayed_work d;
  CHECK(q.queue_delayed(d, 10ms) == wq::queue_status::unbound);
  CHECK_FALSE(wq::queue_delayed_work(q, d, 0_jiffies));
  CHECK_FALSE(d.is_pending());
  CHECK(warnings.contains(wq::errc::no_work_function));
}

// ---- destroy() cancels armed items -----------------------------------------------------------

TEST_CASE("delayed_work: an item cancelled by destroy() may be destroyed at once (rule 50)",
          "[delayed_work][rule50][destroy]") {
  // The item's timer still has an Asio wait outstanding (cancelled, not yet completed) when it
  // is destroyed; AddressSanitizer reports any later touch of its memory.
  wq_test::warning_catcher warnings;
  SECTION("typed, raw pointer") {
    auto item = std::make_unique<timed_item>();
    wq::workqueue q{"destroy-raw"};
    REQUIRE(q.enqueue_delayed<&timed_item::d>(item.get(), 10s).queued());
    q.destroy();
    CHECK(q.cancelled_on_destroy() == 1);
    CHECK_FALSE(item->d.is_pending());
    CHECK(item->runs == 0);
    item.reset();
    CHECK(warnings.contains(wq::errc::armed_items_cancelled));
  }
  SECTION("C-style") {
    auto item = std::make_unique<c_delayed_item>(1);
    wq::workqueue q{"destroy-c"};
    REQUIRE(wq::queue_delayed_work(q, item->d, 10'000_jiffies));
    q.destroy();
    CHECK(q.cancelled_on_destroy() == 1);
    CHECK_FALSE(item->d.is_pending());
    CHECK(item->seen == 0);
    item.reset();
  }
  SECTION("huge delays saturate, and are cancelled like any other") {
    auto a = std::make_unique<timed_item>();
    auto b = std::make_unique<timed_item>();
    wq::workqueue q{"destroy-huge"};
    const auto t0 = clock_type::now();
    REQUIRE(q.enqueue_delayed<&timed_item::d>(a.get(), wq::jiffies::max()).queued());
    REQUIRE(q.enqueue_delayed<&timed_item::d>(b.get(), std::chrono::hours::max()).queued());
    CHECK(a->d.deadline() > t0 + std::chrono::hours(24 * 365 * 50));
    CHECK(b->d.deadline() > t0 + std::chrono::hours(24 * 365 * 50));
    q.destroy();
    CHECK(q.cancelled_on_destroy() == 2);
    a.reset();
    b.reset();
  }
  SECTION("re-armed on another queue right after the cancellation") {
    // The cancelled wait may still be outstanding when the item is armed again; it must fire
    // for the new queue at the new deadline.
    latch done{1};
    timed_item item;
    item.done = &done;
    wq::workqueue q2{"destroy-rearm-2"};
    {
      wq::workqueue q1{"destroy-rearm-1"};
      REQUIRE(q1.enqueue_delayed<&timed_item::d>(&item, 10s).queued());
      q1.destroy();
      CHECK(q1.cancelled_on_destroy() == 1);
    }
    const auto t0 = clock_type::now();
    REQUIRE(q2.enqueue_delayed<&timed_item::d>(&item, 20ms).queued());
    REQUIRE(done.wait_for(4s));
    q2.drain();
    CHECK(item.runs == 1);
    CHECK(item.ran_at - t0 >= 20ms);
  }
}

// A cancelled item's Asio wait stays outstanding (moving or re-arming it then costs nothing).
// Destroying the item orphans that wait: its completion, on wq's timer thread, does not touch
// the item, and the destructor does not wait for it. Here the timer thread is held busy, so a
// destructor that waited for the completion would not return until the holder gave up.
TEST_CASE("delayed_work: destroying a cancelled item does not wait for the timer thread (rule 50)",
          "[delayed_work][rule50][destroy]") {
  latch holding{1};
  latch release{1};
  std::atomic<bool> gave_up{false};
  boost::asio::post(wq::detail::timer_context(), [&] {
    holding.count_down();
    if (!release.wait_for(4s)) gave_up.store(true);
  });
  REQUIRE(holding.wait_for(4s));
  wq::workqueue q{"orphan-wait"};
  for (int i = 0; i < 3; ++i) {
    auto item = std::make_unique<timed_item>();
    REQUIRE(q.enqueue_delayed<&timed_item::d>(item.get(), 10s).queued());
    REQUIRE(wq::cancel_delayed_work(item->d));
    item.reset();  // its wait is still outstanding: the timer thread is busy
  }
  release.count_down();
  CHECK_FALSE(gave_up.load());
  // The timer thread is free again and the orphaned completions have not touched freed memory
  // (AddressSanitizer); a new item still fires.
  latch done{1};
  timed_item fresh;
  fresh.done = &done;
  REQUIRE(q.enqueue_delayed<&timed_item::d>(&fresh, 1ms).queued());
  REQUIRE(done.wait_for(4s));
}

// An orphaned wait's completion is recognised by its item's address. An item built at the same
// address must not have its own wait's completion taken for the orphaned one (it would never
// fire), nor the orphaned completion touch it.
TEST_CASE("delayed_work: an item built where a destroyed one was fires normally (rule 50)",
          "[delayed_work][rule50][destroy]") {
  wq::workqueue q{"orphan-reuse"};
  alignas(timed_item) unsigned char storage[sizeof(timed_item)];
  for (int round = 0; round < 200; ++round) {
    // Safety: placement new into storage sized and aligned for it, destroyed below.
    auto* old_item = ::new (static_cast<void*>(storage)) timed_item;
    REQUIRE(q.enqueue_delayed<&timed_item::d>(old_item, 10s).queued());
    REQUIRE(wq::cancel_delayed_work(old_item->d));
    old_item->~timed_item();
    latch done{1};
    auto* item = ::new (static_cast<void*>(storage)) timed_item;
    item->done = &done;
    REQUIRE(q.enqueue_delayed<&timed_item::d>(item, std::chrono::microseconds(round % 3)).queued());
    REQUIRE(done.wait_for(4s));
    q.drain();
    CHECK(item->runs == 1);
    item->~timed_item();
  }
}

// Destroyers on two threads race the timer thread completing their items' waits: each item is
// armed for 0-2 ms, sometimes cancelled, then destroyed; every arming either ran or was
// cancelled, exactly once (ThreadSanitizer checks the hand-over, AddressSanitizer the memory).
// The churning threads record into atomics; only the test thread checks.
TEST_CASE("delayed_work: stress: destroying items while their waits complete (rule 50)",
          "[delayed_work][rule50][destroy][stress]") {
  wq::workqueue q{"orphan-stress", {.threads = 2}};
  std::atomic<int> ran{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> refused{0};
  constexpr int per_thread = 3000;
  auto churn = [&](int seed) {
    for (int i = 0; i < per_thread; ++i) {
      auto item = std::make_unique<timed_item>();
      const auto delay = std::chrono::microseconds((i * 7 + seed) % 2000);
      if (!q.enqueue_delayed<&timed_item::d>(item.get(), delay).queued()) refused.fetch_add(1);
      if (i % 2 == 0) {
        if (wq::cancel_delayed_work(item->d)) cancelled.fetch_add(1);
      }
      if (wq::cancel_delayed_work_sync(item->d)) cancelled.fetch_add(1);
      ran.fetch_add(item->runs);
      item.reset();
    }
  };
  std::thread other(churn, 1);
  churn(0);
  other.join();
  CHECK(refused.load() == 0);
  CHECK(ran.load() + cancelled.load() == 2 * per_thread);
}

// On wq's timer thread the completions of items due together reach the engine in one batch,
// which takes each queue's mutex once for a run of its items (engine.cpp, timer_fired). Here
// 3000 items of three queues, interleaved, are due at one instant, and while their batches are
// handed over another thread cancels a quarter and destroys them (their completions, still in
// a batch, must not touch them: AddressSanitizer reports it), and a third destroys the third
// queue (its items' completions find it retired). Every instance then ran once or was
// cancelled, by the canceller or by the destroy, and none is left pending.
struct batch_item {
  wq::delayed_work d{wq::fn_ops<&batch_item::fn>};
  std::atomic<int> runs{0};
  static void fn(wq::work* w) noexcept {
    wq::container_of<&batch_item::d>(wq::to_delayed_work(w))->runs.fetch_add(1);
  }
};

TEST_CASE(
    "delayed_work: stress: items of three queues due at one instant while some are cancelled "
    "and destroyed and one queue is destroyed (rules 50 53)",
    "[delayed_work][rule50][rule53][destroy][stress]") {
  constexpr int n = 3000;
  std::vector<std::unique_ptr<wq::workqueue>> qs;
  for (int k = 0; k < 3; ++k)
    qs.push_back(std::make_unique<wq::workqueue>("batch-" + std::to_string(k),
                                                 wq::queue_options{.threads = 2}));
  std::vector<std::unique_ptr<batch_item>> items(n);
  for (auto& it : items) it = std::make_unique<batch_item>();
  const auto due = clock_type::now() + 100ms;
  for (int i = 0; i < n; ++i)
    REQUIRE(wq::queue_delayed_work(*qs[i % 3], items[i]->d, due - clock_type::now()));
  // Items i % 4 == 1: cancelled at the instant, then destroyed (a cancel_*_sync first: an
  // instance that was queued by then may be running).
  std::vector<int> cancelled(n, 0);
  std::thread canceller([&] {
    while (clock_type::now() < due) {
    }
    for (int i = 1; i < n; i += 4) {
      cancelled[i] += wq::cancel_delayed_work(items[i]->d) ? 1 : 0;
      cancelled[i] += wq::cancel_delayed_work_sync(items[i]->d) ? 1 : 0;
      cancelled[i] += 2 * items[i]->runs.load();  // what it ran, kept before it goes
      items[i].reset();
    }
  });
  std::uint64_t cancelled_by_destroy = 0;
  std::thread destroyer([&] {
    while (clock_type::now() < due) {
    }
    qs[2]->destroy();
    cancelled_by_destroy = qs[2]->cancelled_on_destroy();
  });
  canceller.join();
  destroyer.join();
  // The items left on the two live queues fire (a flush does not wait for armed items).
  REQUIRE(wq_test::poll_until([&] {
    for (int i = 0; i < n; ++i)
      if (i % 4 != 1 && i % 3 != 2 && items[i]->runs.load() == 0) return false;
    return true;
  }));
  for (int k = 0; k < 2; ++k) REQUIRE(qs[k]->flush() == std::error_code{});
  std::uint64_t lost_on_2 = 0;  // items of queue 2 neither run nor cancelled by the canceller
  for (int i = 0; i < n; ++i) {
    INFO("item " << i);
    if (i % 4 == 1) {
      // Ran once (2 per run) or cancelled once by the canceller, or, on the destroyed queue,
      // cancelled by the destroy (0 here).
      if (i % 3 == 2 && cancelled[i] == 0) {
        ++lost_on_2;
        continue;
      }
      CHECK((cancelled[i] == 1 || cancelled[i] == 2));
      continue;
    }
    const int runs = items[i]->runs.load();
    if (i % 3 == 2 && runs == 0) {
      ++lost_on_2;
    } else {
      CHECK(runs == 1);
    }
    CHECK_FALSE(wq::cancel_delayed_work_sync(items[i]->d));  // nothing left pending
  }
  CHECK(lost_on_2 == cancelled_by_destroy);
}

// mod_delayed_work moves a later deadline without the queue's mutex; the timer's completion
// decides under it whether the deadline has come. The two are ordered on the deadline word
// (commit_expiry): a move that returned must never be overtaken by an expiry decided on the
// deadline before it, or the instance the caller was told is pending would run at the old
// deadline and nothing would run at the new one. The window is a few instructions of the
// completion, so the test makes many independent tries: 30 rounds of 2000 items due 1 us
// apart, each moved once, at a random moment from its deadline to a window after it that
// follows when the completions run on this machine (150 us to start with). With the
// completion ignoring a moved deadline it fails in every run (3 of 3). The commit's own window
// (the few instructions between reading the deadline and committing it, since expiries are
// handed over in batches) is now too narrow for it to hit: dropping the commit's CAS went
// unnoticed in 10 of 10 runs, so that CAS rests on the argument in timers.hpp.
// mod_delayed_work's result says which happened: true, the instance was still pending and
// moved, so the item runs once, no earlier than the move plus the delay; false, the expiry's run
// had begun, so a second instance runs from then. After that run nothing is pending. (Waiting
// for the right number of runs, rather than for a start time, keeps a run whose clock read was
// delayed past the new deadline, under TSan on two cores, from passing for the second one.)
struct moved_item {
  wq::delayed_work d{wq::fn_ops<&moved_item::fn>};
  std::atomic<clock_type::rep> last_start{0};
  std::atomic<int> runs{0};
  static void fn(wq::work* w) noexcept {
    auto* self = wq::container_of<&moved_item::d>(wq::to_delayed_work(w));
    self->last_start.store(clock_type::now().time_since_epoch().count(), std::memory_order_release);
    self->runs.fetch_add(1, std::memory_order_release);
  }
};

TEST_CASE("delayed_work: stress: a deadline moved later is never overtaken by its expiry (rule 20)",
          "[delayed_work][rule20][mod][stress]") {
  wq::workqueue q{"mod-vs-expiry", {.threads = 2}};
  constexpr int n = 2000;
  constexpr auto delay = 2ms;
  std::minstd_rand rng(20261204);
  int fired_first = 0;  // items whose expiry beat the move (two runs)
  int moved_first = 0;  // items the move found armed (one run)
  // Each move comes up to `window` after its item's deadline. How long an expiry takes to
  // start its item depends on the machine (an instrumented build on a loaded machine can
  // take longer than any fixed window), so the window follows the boundary: it widens after
  // a round in which every move came first and narrows after one in which none did.
  auto window = std::chrono::microseconds(150);
  for (int round = 0; round < 30; ++round) {
    std::vector<moved_item> items(n);
    struct move {
      clock_type::time_point at;
      int index;
      clock_type::time_point called{};
      bool was_pending = false;
    };
    std::vector<move> moves;
    int round_fired = 0;
    int round_moved = 0;
    const auto base = clock_type::now() + 2ms;
    for (int i = 0; i < n; ++i) {
      const auto due = base + std::chrono::microseconds(i);
      REQUIRE(wq::queue_delayed_work(q, items[i].d, due - clock_type::now()));
      moves.push_back({due + std::chrono::microseconds(rng() % window.count()), i});
    }
    std::sort(moves.begin(), moves.end(), [](const move& a, const move& b) { return a.at < b.at; });
    for (auto& m : moves) {
      while (clock_type::now() < m.at) {
      }
      m.called = clock_type::now();
      m.was_pending = wq::mod_delayed_work(q, items[m.index].d, delay);
    }
    for (const auto& m : moves) {
      moved_item& it = items[m.index];
      const auto not_before = (m.called + delay).time_since_epoch().count();
      const int expected = m.was_pending ? 1 : 2;
      INFO("round " << round << ", item " << m.index << ", moved while pending: " << m.was_pending);
      REQUIRE(
          wq_test::poll_until([&] { return it.runs.load(std::memory_order_acquire) >= expected; }));
      // The last run is the moved (or new) instance's: not before the new deadline.
      CHECK(it.last_start.load(std::memory_order_acquire) >= not_before);
      CHECK_FALSE(wq::cancel_delayed_work_sync(it.d));  // that run was its one pending instance
      CHECK(it.runs.load(std::memory_order_acquire) == expected);
      ++(m.was_pending ? round_moved : round_fired);
    }
    fired_first += round_fired;
    moved_first += round_moved;
    if (round_fired == 0) {
      window = std::min(window * 2, std::chrono::microseconds(20'000));
    } else if (round_moved == 0) {
      window = std::max(window / 2, std::chrono::microseconds(10));
    }
  }
  // Both orders happened, so the moves met expiries in flight.
  CHECK(fired_first > 0);
  CHECK(moved_first > 0);
  WARN("mod vs expiry: " << fired_first << " items expired first, " << moved_first
                         << " moved first; last window " << window.count() << " us");
}

// Two threads destroy items with outstanding waits while the timer thread completes (takes)
// the orphaned waits of both. The list's count must never fall below its entries: a count of
// 0 with an entry listed let a completion touch a freed item and left the entry to swallow a
// later item's completion at that address, so that item never fired (found by a user trial).
// Each thread reuses 64 slots, so afterwards an item is built and armed in every slot used.
// The window is narrow: AddressSanitizer (CI's asan stage) reports the touch; elsewhere the
// slot that never fires shows it only sometimes.
TEST_CASE(
    "delayed_work: stress: two threads orphaning waits at once, every slot fires after (rule 50)",
    "[delayed_work][rule50][destroy][stress]") {
  wq::workqueue q{"orphan-two", {.threads = 2}};
  constexpr int slots = 64;
  constexpr int per_thread = 20000;
  struct slot_storage {
    alignas(timed_item) unsigned char bytes[sizeof(timed_item)];
  };
  std::vector<slot_storage> storage(2 * slots);
  std::atomic<int> refused{0};
  auto churn = [&](int first) {
    for (int i = 0; i < per_thread; ++i) {
      // Safety: placement new into storage sized and aligned for it, destroyed below.
      auto* item = ::new (static_cast<void*>(storage[first + i % slots].bytes)) timed_item;
      if (!q.enqueue_delayed<&timed_item::d>(item, 10s).queued()) refused.fetch_add(1);
      (void)wq::cancel_delayed_work(item->d);
      item->~timed_item();  // its wait is orphaned while the timer thread takes others
    }
  };
  std::thread other(churn, slots);
  churn(0);
  other.join();
  REQUIRE(refused.load() == 0);
  latch done{2 * slots};
  std::vector<timed_item*> built;
  for (auto& st : storage) {
    // Safety: as above; each is destroyed after it ran.
    auto* item = ::new (static_cast<void*>(st.bytes)) timed_item;
    item->done = &done;
    built.push_back(item);
    REQUIRE(q.enqueue_delayed<&timed_item::d>(item, 1ms).queued());
  }
  CHECK(done.wait_for(4s));
  q.drain();
  for (timed_item* item : built) {
    CHECK(item->runs == 1);
    item->~timed_item();
  }
}

// The same with thousands of distinct addresses per thread, in spikes: each round the timer
// thread is held until half of the 6000 items are gone, so the list of orphaned waits grows past
// the 1024 buckets it keeps; then its completions empty the list (which frees the bucket array)
// while both threads list more. Every wait is accounted for once: a completion that missed its
// entry would touch a freed item (AddressSanitizer reports it: the items are heap objects), and
// a stray entry would swallow a later item's completion, so afterwards an item armed in every
// thread's place fires (ThreadSanitizer checks the list's hand-over).
TEST_CASE(
    "delayed_work: stress: spikes of orphaned waits from two threads, the list shrinking between "
    "them (rule 50)",
    "[delayed_work][rule50][destroy][stress]") {
  wq::workqueue q{"orphan-spikes", {.threads = 2}};
  constexpr int per_thread = 3000;
  std::atomic<int> refused{0};
  for (int round = 0; round < 4; ++round) {
    std::atomic<int> gone{0};
    std::atomic<bool> held_to_half{false};
    latch released{1};
    boost::asio::post(wq::detail::timer_context(), [&] {
      const auto give_up = clock_type::now() + 4s;
      while (gone.load() < per_thread && clock_type::now() < give_up) std::this_thread::yield();
      held_to_half.store(gone.load() >= per_thread);
      released.count_down();
    });
    auto churn = [&] {
      std::vector<std::unique_ptr<timed_item>> items(per_thread);
      for (auto& item : items) {
        item = std::make_unique<timed_item>();
        if (!q.enqueue_delayed<&timed_item::d>(item.get(), 10s).queued()) refused.fetch_add(1);
        (void)wq::cancel_delayed_work(item->d);  // its wait stays outstanding
      }
      for (auto& item : items) {
        item.reset();  // orphans its wait
        gone.fetch_add(1);
      }
    };
    std::thread other(churn);
    churn();
    other.join();
    REQUIRE(released.wait_for(4s));
    CHECK(held_to_half.load());
  }
  REQUIRE(refused.load() == 0);
  latch done{2 * per_thread};
  std::vector<std::unique_ptr<timed_item>> fresh(2 * per_thread);
  for (auto& item : fresh) {
    item = std::make_unique<timed_item>();
    item->done = &done;
    REQUIRE(q.enqueue_delayed<&timed_item::d>(item.get(), 1ms).queued());
  }
  CHECK(done.wait_for(10s));
  q.drain();
  for (const auto& item : fresh) CHECK(item->runs == 1);
}

struct owned_delayed : wq_test::counted {
  explicit owned_delayed(wq_test::lifetime_counter& c) : counted(c) {}
  wq::delayed_work d;
  std::atomic<int>* runs = nullptr;
  static void run(std::unique_ptr<owned_delayed> self, wq::id<&owned_delayed::d>) noexcept {
    self->runs->fetch_add(1);
  }
};

struct shared_delayed : wq_test::counted {
  explicit shared_delayed(wq_test::lifetime_counter& c) : counted(c) {}
  wq::shared_delayed_work d;
  std::atomic<int>* runs = nullptr;
  static void run(std::shared_ptr<shared_delayed> self, wq::id<&shared_delayed::d>) noexcept {
    self->runs->fetch_add(1);
  }
};

struct intrusive_delayed
    : wq_test::counted,
      boost::intrusive_ref_counter<intrusive_delayed, boost::thread_safe_counter> {
  explicit intrusive_delayed(wq_test::lifetime_counter& c) : counted(c) {}
  wq::delayed_work d;
  std::atomic<int>* runs = nullptr;
  static void run(boost::intrusive_ptr<intrusive_delayed> self,
                  wq::id<&intrusive_delayed::d>) noexcept {
    self->runs->fetch_add(1);
  }
};

TEST_CASE(
    "delayed_work: destroy() cancels armed items, counts them, and releases each "
    "owned reference exactly once (rule 50)",
    "[delayed_work][rule50][destroy][ownership]") {
  constexpr int armed_each = 4;
  constexpr int immediate = 3;
  wq_test::lifetime_counter unique_counter;
  wq_test::lifetime_counter shared_counter;
  wq_test::lifetime_counter intrusive_counter;
  std::atomic<int> runs{0};
  std::vector<std::shared_ptr<shared_delayed>> shared_items;
  std::vector<boost::intrusive_ptr<intrusive_delayed>> intrusive_items;
  wq_test::warning_catcher warnings;
  {
    wq::workqueue q{"destroy-owned"};
    for (int i = 0; i < armed_each; ++i) {
      auto u = std::make_unique<owned_delayed>(unique_counter);
      u->runs = &runs;
      REQUIRE(q.enqueue_delayed<&owned_delayed::d>(std::move(u), 10s).queued());

      auto s = std::make_shared<shared_delayed>(shared_counter);
      s->runs = &runs;
      shared_items.push_back(s);
      REQUIRE(q.enqueue_delayed<&shared_delayed::d>(std::move(s), 10s).queued());
      CHECK(shared_items.back().use_count() == 2);  // ours + the queue's

      boost::intrusive_ptr<intrusive_delayed> r{new intrusive_delayed(intrusive_counter)};
      r->runs = &runs;
      intrusive_items.push_back(r);
      REQUIRE(q.enqueue_delayed<&intrusive_delayed::d>(std::move(r), 10s).queued());
      CHECK(intrusive_items.back()->use_count() == 2);
    }
    // Items queued with no delay are not cancelled: destroy() drains them (rule 50).
    for (int i = 0; i < immediate; ++i) {
      auto u = std::make_unique<owned_delayed>(unique_counter);
      u->runs = &runs;
      REQUIRE(q.enqueue_delayed<&owned_delayed::d>(std::move(u), 0ms).queued());
    }
    q.destroy();
    CHECK(q.cancelled_on_destroy() == 3 * armed_each);
    CHECK(runs.load() == immediate);
    CHECK(unique_counter.alive() == 0);
  }
  CHECK(warnings.contains(wq::errc::armed_items_cancelled));
  CHECK(unique_counter.constructed.load() == armed_each + immediate);
  CHECK(unique_counter.destroyed.load() == armed_each + immediate);
  for (const auto& s : shared_items) {
    CHECK(s.use_count() == 1);
    CHECK_FALSE(s->d.is_pending());
  }
  for (const auto& r : intrusive_items) {
    CHECK(r->use_count() == 1);
    CHECK_FALSE(r->d.is_pending());
  }
  CHECK(shared_counter.alive() == armed_each);
  CHECK(intrusive_counter.alive() == armed_each);
  shared_items.clear();
  intrusive_items.clear();
  CHECK(shared_counter.alive() == 0);
  CHECK(intrusive_counter.alive() == 0);
}

}  // namespace

// ---- items on the application's io_context (issue 4) ------------------------------------------

using wq_test::ctx_item;

TEST_CASE("delayed_work: an item may use the application's io_context as its timer context",
          "[delayed_work][timer_context][rule53]") {
  boost::asio::io_context timers;
  wq::workqueue q{"app-timers", {.threads = 1}};
  ctx_item item{timers};
  CHECK(sizeof(item.dw) == sizeof(wq::delayed_work));
  REQUIRE(wq::queue_delayed_work(q, item.dw, 1ms));
  // Nothing runs the application's context yet: the expiry cannot be processed (on wq's timer
  // thread it would have been, 1 ms into this window).
  std::this_thread::sleep_for(wq_test::must_not_happen);
  CHECK(item.runs.load() == 0);
  CHECK(item.dw.is_pending());
  CHECK(q.stats().armed == 1);  // still armed, not queued
  // Running it processes the expiry on this thread, which queues the item.
  timers.run();
  CHECK(q.stats().armed == 0);  // timers.run() returned: the expiry moved it to the queue
  REQUIRE(wq_test::poll_until([&] { return item.runs.load() == 1; }));
  CHECK(q.drain() == std::error_code{});
}

TEST_CASE(
    "delayed_work: moving a deadline later on the application's context re-arms lazily "
    "(rule 20)",
    "[delayed_work][timer_context][rule20]") {
  boost::asio::io_context timers;
  wq::workqueue q{"app-mod", {.threads = 1}};
  ctx_item item{timers};
  REQUIRE(wq::queue_delayed_work(q, item.dw, 1ms));
  const auto start = clock_type::now();
  for (int i = 0; i < 100; ++i) (void)wq::mod_delayed_work(q, item.dw, 20ms);
  timers.run();  // returns once the single wait has re-armed and fired for the last deadline
  REQUIRE(wq_test::poll_until([&] { return item.runs.load() == 1; }));
  CHECK(clock_type::now() - start >= 20ms);
  CHECK(q.drain() == std::error_code{});
  CHECK(item.runs.load() == 1);
}

TEST_CASE(
    "delayed_work: an item on the application's context that leaves its timer (cancel, disable, "
    "forced fire) is no outstanding work there: run() returns at once (rules 31, 32, 33, 24)",
    "[delayed_work][timer_context][rule31][rule32][rule33][rule24]") {
  // A cancelled steady_timer lets its io_context's run() return; so must a cancelled item,
  // whose deadline here is an hour away. Were its wait left outstanding, run_for would sit out
  // the whole window and the context would not be stopped.
  struct way {
    const char* name;
    void (*leave)(wq::workqueue&, wq::delayed_work&);
    int runs;  // how many times the item runs
  };
  const way ways[] = {
      {"cancel_delayed_work",
       [](wq::workqueue&, wq::delayed_work& d) { CHECK(wq::cancel_delayed_work(d)); }, 0},
      {"cancel_delayed_work_sync",
       [](wq::workqueue&, wq::delayed_work& d) { CHECK(wq::cancel_delayed_work_sync(d)); }, 0},
      {"disable_delayed_work",
       [](wq::workqueue&, wq::delayed_work& d) {
         CHECK(wq::disable_delayed_work(d));
         CHECK(wq::enable_work(d));
       },
       0},
      {"flush_delayed_work",
       [](wq::workqueue&, wq::delayed_work& d) {
         CHECK(wq::flush_delayed_work(d));  // fires now and waits for the run
       },
       1},
      {"mod_delayed_work to zero",
       [](wq::workqueue& q, wq::delayed_work& d) {
         CHECK(wq::mod_delayed_work(q, d, 0ms));
         (void)wq::flush_delayed_work(d);  // the run may be over already: then false
       },
       1},
  };
  for (const way& w : ways) {
    INFO(w.name);
    boost::asio::io_context timers;
    wq::workqueue q{"app-leave", {.threads = 1}};
    ctx_item item{timers};
    REQUIRE(wq::queue_delayed_work(q, item.dw, 1h));
    w.leave(q, item.dw);
    CHECK(!item.dw.is_pending());
    (void)timers.run_for(wq_test::must_happen);  // runs the aborted completion, if any
    CHECK(timers.stopped());
    CHECK(item.runs.load() == w.runs);
    CHECK(q.stats().armed == 0);
  }
}

TEST_CASE(
    "delayed_work: an item on the application's context cancelled and armed again before the "
    "context runs fires once, for its new deadline (rules 31, 53)",
    "[delayed_work][timer_context][rule31][rule53]") {
  boost::asio::io_context timers;
  wq::workqueue q{"app-rearm", {.threads = 1}};
  ctx_item item{timers};
  REQUIRE(wq::queue_delayed_work(q, item.dw, 1h));
  REQUIRE(wq::cancel_delayed_work(item.dw));  // its wait's aborted completion is queued
  const auto start = clock_type::now();
  REQUIRE(wq::queue_delayed_work(q, item.dw, 20ms));
  // The aborted completion finds the item armed again and re-arms it for the new deadline.
  (void)timers.run_for(wq_test::must_happen);
  CHECK(timers.stopped());
  REQUIRE(wq_test::poll_until([&] { return item.runs.load() == 1; }));
  CHECK(clock_type::now() - start >= 20ms);
  CHECK(q.drain() == std::error_code{});
  CHECK(item.runs.load() == 1);
}

TEST_CASE(
    "delayed_work: an item on a context that is not running can be destroyed with a wait "
    "outstanding, without blocking",
    "[delayed_work][timer_context][lifetime]") {
  boost::asio::io_context timers;  // never run while the item lives
  wq::workqueue q{"app-destroy", {.threads = 1}};
  {
    ctx_item item{timers};
    REQUIRE(wq::queue_delayed_work(q, item.dw, 10s));
    REQUIRE(wq::cancel_delayed_work(item.dw));  // its aborted completion stays queued
  }  // would hang here if the destructor waited for the completion
  // The orphaned completion runs now and finds its item gone (ASan checks the memory).
  CHECK(timers.run() >= 1);
}

TEST_CASE(
    "delayed_work: an item destroyed by a handler of its own timer context does not "
    "deadlock",
    "[delayed_work][timer_context][lifetime]") {
  boost::asio::io_context timers;
  wq::workqueue q{"app-self", {.threads = 1}};
  auto item = std::make_unique<ctx_item>(timers);
  REQUIRE(wq::queue_delayed_work(q, item->dw, 10s));
  REQUIRE(wq::cancel_delayed_work(item->dw));
  bool destroyed = false;
  boost::asio::post(timers, [&] {
    item.reset();  // on the only thread that runs `timers`
    destroyed = true;
  });
  timers.run();
  CHECK(destroyed);
}

TEST_CASE(
    "delayed_work: stress: destroying items on a running application context races their "
    "timer completions safely",
    "[delayed_work][timer_context][lifetime][stress]") {
  // Each item is cancelled and destroyed while its (short) wait completes on the context's own
  // thread: the completion and the destructor meet at the anchor. A missing lock or a freed
  // anchor is a ThreadSanitizer or AddressSanitizer report here.
  wq_test::io_runner timers;
  wq::workqueue q{"app-race", {.threads = 2}};
  constexpr int rounds = 2000;
  int destroyed = 0;
  for (int i = 0; i < rounds; ++i) {
    auto item = std::make_unique<ctx_item>(timers.context());
    if (!wq::queue_delayed_work(q, item->dw, std::chrono::microseconds(i % 50))) break;
    (void)wq::cancel_delayed_work(item->dw);       // may or may not win against the expiry
    (void)wq::cancel_delayed_work_sync(item->dw);  // not pending, not running
    item.reset();
    ++destroyed;
  }
  CHECK(destroyed == rounds);
  CHECK(q.drain() == std::error_code{});
}

// An armed item's Asio wait holds a block of wq's handler pool. The pool recycles blocks, and
// gives back to the heap those it did not need for a whole second (down to 1024 per size class):
// 20000 items armed, cancelled and destroyed first return their blocks to the pool, then, once
// nothing reuses them, to the heap. (Before the pool trimmed, the 20000 stayed for good: a spike
// of session timeouts kept about 170 bytes per item, measured by bench/wq_scale's bytes_items.)
TEST_CASE("delayed_work: the handler blocks of 20000 destroyed items go back to the heap",
          "[delayed_work][memory]") {
  constexpr std::size_t n = 20000;
  wq::workqueue q{"blocks", {.threads = 1}};
  {
    auto items = std::make_unique<timed_item[]>(n);
    for (std::size_t i = 0; i < n; ++i)
      REQUIRE(q.enqueue_delayed<&timed_item::d>(&items[i], std::chrono::hours(1)).queued());
    for (std::size_t i = 0; i < n; ++i) REQUIRE(wq::cancel_delayed_work(items[i].d));
  }  // destroyed: their waits complete (aborted) on wq's timer thread, freeing their blocks
  // Back in the pool first (the timer thread's own cache keeps at most 32 per size). Blocks
  // that earlier test cases of this process left free may be trimmed meanwhile, so the count is
  // checked against the items' blocks alone ...
  CHECK(wq_test::poll_until([&] { return wq::detail::handler_blocks_free() >= n - 64; }));
  // ... then the blocks nobody took for a second go to the heap, down to the floor.
  const bool trimmed = wq_test::poll_until(
      [&] { return wq::detail::handler_blocks_free() <= 3 * 1024; }, std::chrono::seconds(5));
  INFO("free blocks: " << wq::detail::handler_blocks_free());
  CHECK(trimmed);
}

// The same for items whose timers are on the application's io_context, in a process where no
// item has used wq's timer thread: the trim runs there, and the first list to grow past its
// floor starts it. (Before, the trim waited for a delayed item to start that thread, and a
// program with all its timers on its own io_context kept the blocks of its peak: 165 bytes per
// item of 10^5 timeouts armed, cancelled and destroyed, found by a user trial.) Run alone, as
// ctest runs each case, this process has not started the timer thread when the case begins.
TEST_CASE(
    "delayed_work: the handler blocks of 20000 items timed on the application's io_context "
    "go back to the heap",
    "[delayed_work][memory]") {
  const bool started_before = wq::detail::started_timer_context() != nullptr;
  constexpr std::size_t n = 20000;
  wq_test::io_runner io;
  {
    wq::workqueue q{io.context().get_executor(), "blocks_io"};
    std::vector<std::unique_ptr<wq_test::ctx_item>> items(n);
    for (auto& it : items) {
      it = std::make_unique<wq_test::ctx_item>(io.context());
      REQUIRE(wq::queue_delayed_work(q, it->dw, std::chrono::hours(1)));
    }
    for (auto& it : items) REQUIRE(wq::cancel_delayed_work(it->dw));
  }  // destroyed: their waits complete (aborted) on io's thread, freeing their blocks
  CHECK(wq_test::poll_until([&] { return wq::detail::handler_blocks_free() >= n - 64; }));
  const bool trimmed = wq_test::poll_until(
      [&] { return wq::detail::handler_blocks_free() <= 3 * 1024; }, std::chrono::seconds(5));
  INFO("free blocks: " << wq::detail::handler_blocks_free()
                       << ", timer thread started before: " << started_before);
  CHECK(trimmed);
  CHECK(wq::detail::started_timer_context() != nullptr);
}
