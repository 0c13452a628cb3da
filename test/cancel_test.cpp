// SPDX-License-Identifier: BSL-1.0
// Tests for wq/cancel.hpp: cancel_work[_sync] and cancel_delayed_work[_sync] (semantics.md rules
// 28, 29, 31, 32), disable/enable (rules 16, 33, 34, §5.11), enable_and_queue_work (rule 22),
// mod_delayed_work (rule 20 a-d, lazy re-arm), the typed forms (ownership handed back), misuse
// from the item's own run (§5.1), and races against timers, self-requeues and each other.
//
// Determinism: items that must stay queued sit on a queue whose io_context is not run until the
// test says so. Running items block on a gate (support/cancel_items.hpp); a gate opened "after
// a bounded delay" only makes a missing wait observable, correctness never depends on the delay.
// "Must not happen" checks wait wq_test::must_not_happen (100 ms) with idle workers. Deadline
// tests (rules 20, 31) run on virtual time (wq/test_clock.hpp): no waiting at all.
// Timing tolerance: a delayed item must never run before its deadline (no tolerance below);
// upper bounds are generous (latch timeouts of 5 s) for sanitizer builds on 2 cores.
// Worker threads never call Catch2 macros; they record into atomics the test thread checks.
#include <wq/cancel.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <wq/delayed_work.hpp>
#include <wq/flush.hpp>
#include <wq/kernel.hpp>
#include <wq/shared_work.hpp>
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
using wq_test::must_not_happen;
using wq_test::now_ns;

constexpr std::int64_t to_ns(std::chrono::nanoseconds d) { return d.count(); }

/// Waits `must_not_happen` with the workers idle, then returns `counter`'s value.
int settle(const std::atomic<int>& counter) {
  std::this_thread::sleep_for(must_not_happen);
  return counter.load();
}

// ---- rules 28, 31: cancel_work / cancel_delayed_work ---------------------------------------

TEST_CASE("cancel: a queued item is removed and never runs, an idle one returns false (rule 28)",
          "[cancel][rule28]") {
  boost::asio::io_context io;  // not run: the item stays queued
  c_work item;
  wq_test::fn_item typed{[](wq_test::fn_item&) {}};
  std::atomic<int> typed_runs{0};
  typed.body = [&](wq_test::fn_item&) { typed_runs.fetch_add(1); };
  wq::workqueue q{io.get_executor(), "rule28"};
  wq_test::drive_on_exit drive{io};

  CHECK_FALSE(wq::cancel_work(item.w));  // never queued
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(wq_test::enqueue(q, typed) == wq::queue_status::queued);
  CHECK(wq::cancel_work(item.w));
  CHECK(wq::cancel_work(typed.w));
  CHECK_FALSE(item.w.is_pending());
  CHECK_FALSE(typed.w.is_pending());
  CHECK_FALSE(wq::cancel_work(item.w));  // idle now
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 0);
  CHECK(typed_runs.load() == 0);

  // The cancelled item can be queued again and runs once.
  REQUIRE(wq::queue_work(q, item.w));
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(wq::cancel_work(item.w));  // has run: idle
}

TEST_CASE("cancel: an armed delayed item is cancelled and never fires (rule 31)",
          "[cancel][rule31][test_clock]") {
  wq::test_clock clock;        // virtual time: the cancelled deadline passes inside advance()
  boost::asio::io_context io;  // polled by the test: a fired timer leaves the item queued here
  c_delayed item;
  c_delayed soon;
  wq::workqueue q{io.get_executor(), "rule31"};
  wq_test::drive_on_exit drive{io};

  REQUIRE(wq::queue_delayed_work(q, item.d, 10s));
  CHECK(wq::cancel_delayed_work(item.d));
  CHECK_FALSE(item.d.is_pending());
  CHECK_FALSE(wq::cancel_delayed_work(item.d));

  // Cancelled armed; then, armed again, cancelled after its timer fired (queued, not run).
  REQUIRE(wq::queue_delayed_work(q, soon.d, 20ms));
  CHECK(wq::cancel_delayed_work(soon.d));
  CHECK(clock.advance(1h) == 0);  // neither deadline fires
  CHECK_FALSE(soon.d.is_pending());
  REQUIRE(wq::queue_delayed_work(q, soon.d, 20ms));
  CHECK(clock.advance(20ms) == 1);
  CHECK(wq::cancel_delayed_work(soon.d));
  CHECK(clock.advance(1h) == 0);
  wq_test::run_ready(io);
  CHECK(soon.runs.load() == 0);
  CHECK(item.runs.load() == 0);

  // Queueing after a cancel works normally.
  REQUIRE(wq::queue_delayed_work(q, soon.d, 0ms));
  wq_test::run_ready(io);
  CHECK(soon.runs.load() == 1);
}

TEST_CASE("cancel: the untyped cancel releases the queue's reference exactly once (rule 28)",
          "[cancel][rule28][ownership]") {
  boost::asio::io_context io;
  wq_test::lifetime_counter life;
  std::atomic<int> unique_runs{0};
  wq::workqueue q{io.get_executor(), "rule28-own"};
  wq_test::drive_on_exit drive{io};

  SECTION("shared_ptr, queued") {
    auto p = std::make_shared<wq_test::shared_obj>(life);
    REQUIRE(q.enqueue<&wq_test::shared_obj::w>(p).queued());
    REQUIRE(p.use_count() == 2);
    CHECK(wq::cancel_work(p->w));
    CHECK(p.use_count() == 1);
    CHECK_FALSE(wq::cancel_work(p->w));
    CHECK(p.use_count() == 1);
    wq_test::run_ready(io);
    CHECK(p->runs.load() == 0);
  }
  SECTION("shared_ptr, armed") {
    auto p = std::make_shared<wq_test::shared_obj>(life);
    REQUIRE(q.enqueue_delayed<&wq_test::shared_obj::d>(p, 10s).queued());
    REQUIRE(p.use_count() == 2);
    CHECK(wq::cancel_delayed_work(p->d));
    CHECK(p.use_count() == 1);
  }
  SECTION("unique_ptr, queued: the object is destroyed by the cancel") {
    auto u = std::make_unique<wq_test::unique_obj>(life, unique_runs);
    wq_test::unique_obj* raw = u.get();
    REQUIRE(q.enqueue<&wq_test::unique_obj::w>(std::move(u)).queued());
    REQUIRE(life.alive() == 1);
    CHECK(wq::cancel_work(raw->w));
    CHECK(life.alive() == 0);
  }
  SECTION("unique_ptr, armed") {
    auto u = std::make_unique<wq_test::unique_obj>(life, unique_runs);
    wq_test::unique_obj* raw = u.get();
    REQUIRE(q.enqueue_delayed<&wq_test::unique_obj::d>(std::move(u), 10s).queued());
    CHECK(wq::cancel_delayed_work(raw->d));
    CHECK(life.alive() == 0);
  }
  wq_test::run_ready(io);
  CHECK(unique_runs.load() == 0);
  CHECK(life.alive() == 0);
  CHECK(life.constructed.load() == 1);
}

TEST_CASE("cancel: the typed cancel hands the queue's reference back (rule 28)",
          "[cancel][rule28][typed][ownership]") {
  boost::asio::io_context io;
  wq_test::lifetime_counter life;
  std::atomic<int> unique_runs{0};
  wq::workqueue q{io.get_executor(), "rule28-typed"};
  wq_test::drive_on_exit drive{io};
  using shared_ptr_t = std::shared_ptr<wq_test::shared_obj>;
  using unique_ptr_t = std::unique_ptr<wq_test::unique_obj>;

  SECTION("shared_ptr") {
    auto p = std::make_shared<wq_test::shared_obj>(life);
    CHECK_FALSE(wq::cancel_work<&wq_test::shared_obj::w, shared_ptr_t>(*p).has_value());
    REQUIRE(q.enqueue<&wq_test::shared_obj::w>(p).queued());
    std::optional<shared_ptr_t> back = wq::cancel_work<&wq_test::shared_obj::w, shared_ptr_t>(*p);
    REQUIRE(back.has_value());
    CHECK(*back == p);
    CHECK(p.use_count() == 2);  // p and the handed-back reference; the queue holds none
    CHECK_FALSE(p->w.is_pending());
    back.reset();
    CHECK(p.use_count() == 1);
    // Delayed, through cancel_work_sync.
    REQUIRE(q.enqueue_delayed<&wq_test::shared_obj::d>(p, 10s).queued());
    auto back2 = wq::cancel_work_sync<&wq_test::shared_obj::d, shared_ptr_t>(*p);
    REQUIRE(back2.has_value());
    CHECK(back2->get() == p.get());
    CHECK(p.use_count() == 2);
    back2.reset();
    CHECK(p.use_count() == 1);
    CHECK_FALSE(wq::cancel_work_sync<&wq_test::shared_obj::d, shared_ptr_t>(*p).has_value());
    wq_test::run_ready(io);
    CHECK(p->runs.load() == 0);
  }
  SECTION("unique_ptr: alive until the caller drops what it got back") {
    auto u = std::make_unique<wq_test::unique_obj>(life, unique_runs);
    wq_test::unique_obj* raw = u.get();
    REQUIRE(q.enqueue<&wq_test::unique_obj::w>(std::move(u)).queued());
    std::optional<unique_ptr_t> back = wq::cancel_work<&wq_test::unique_obj::w, unique_ptr_t>(*raw);
    REQUIRE(back.has_value());
    CHECK(back->get() == raw);
    CHECK(life.alive() == 1);
    CHECK_FALSE(raw->w.is_pending());
    // It can be queued again with the pointer it got back, and then runs.
    REQUIRE(q.enqueue<&wq_test::unique_obj::w>(std::move(*back)).queued());
    wq_test::run_ready(io);
    CHECK(unique_runs.load() == 1);
    CHECK(life.alive() == 0);
  }
  SECTION("unique_ptr, armed, cancel_sync") {
    auto u = std::make_unique<wq_test::unique_obj>(life, unique_runs);
    wq_test::unique_obj* raw = u.get();
    REQUIRE(q.enqueue_delayed<&wq_test::unique_obj::d>(std::move(u), 10s).queued());
    auto back = wq::cancel_work_sync<&wq_test::unique_obj::d, unique_ptr_t>(*raw);
    REQUIRE(back.has_value());
    CHECK(back->get() == raw);
    CHECK(life.alive() == 1);
    back.reset();
    CHECK(life.alive() == 0);
  }
  wq_test::run_ready(io);
  CHECK(life.alive() == 0);
}

TEMPLATE_TEST_CASE(
    "cancel: the typed cancel, cancel_sync, disable and disable_sync deduce the "
    "pointer type from run and hand the queue's reference back (rules 28, 29, 33)",
    "[cancel][typed][ownership][rule28][rule29][rule33]", wq_test::shared_kind,
    wq_test::unique_kind, wq_test::intrusive_kind, wq_test::raw_kind) {
  using kind = TestType;
  using obj = wq_test::typed_obj<kind>;
  using pointer = typename obj::pointer;
  using maybe = std::optional<pointer>;
  // The short form deduces exactly the pointer type `run` takes, for each member.
  STATIC_REQUIRE(std::is_same_v<decltype(wq::cancel_work<&obj::w>(std::declval<obj&>())), maybe>);
  STATIC_REQUIRE(std::is_same_v<decltype(wq::cancel_work<&obj::d>(std::declval<obj&>())), maybe>);
  STATIC_REQUIRE(
      std::is_same_v<decltype(wq::cancel_work_sync<&obj::w>(std::declval<obj&>())), maybe>);
  STATIC_REQUIRE(std::is_same_v<decltype(wq::disable_work<&obj::w>(std::declval<obj&>())), maybe>);
  STATIC_REQUIRE(
      std::is_same_v<decltype(wq::disable_work_sync<&obj::d>(std::declval<obj&>())), maybe>);

  boost::asio::io_context io;  // run only by the final poll: queued items stay queued
  wq::workqueue q{io.get_executor(), "typed-deduce"};
  wq_test::drive_on_exit drive{io};
  auto h = kind::template make<obj>();
  obj& o = *h;

  SECTION("cancel_work: idle gives nothing; queued gives the reference back") {
    CHECK_FALSE(wq::cancel_work<&obj::w>(o).has_value());
    REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
    maybe back = wq::cancel_work<&obj::w>(o);
    REQUIRE(back.has_value());
    CHECK(kind::take_back(h, std::move(*back)) == &o);
    CHECK_FALSE(o.w.is_pending());
    CHECK_FALSE(wq::cancel_work<&obj::w>(o).has_value());
  }
  SECTION("cancel_work_sync: an armed delayed member") {
    REQUIRE(q.enqueue_delayed<&obj::d>(kind::give(h), 10s).queued());
    maybe back = wq::cancel_work_sync<&obj::d>(o);
    REQUIRE(back.has_value());
    CHECK(kind::take_back(h, std::move(*back)) == &o);
    CHECK_FALSE(o.d.is_pending());
    CHECK(o.d.disable_count() == 0);  // the sync form's own disable is undone
  }
  SECTION("disable_work: the reference back, the count raised, queueing refused") {
    REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
    maybe back = wq::disable_work<&obj::w>(o);
    REQUIRE(back.has_value());
    CHECK(kind::take_back(h, std::move(*back)) == &o);
    CHECK(o.w.disable_count() == 1);
    auto refused = q.enqueue<&obj::w>(kind::give(h));
    CHECK(refused.status == wq::queue_status::disabled);
    CHECK(kind::take_back(h, std::move(refused.pointer)) == &o);
    CHECK_FALSE(wq::disable_work<&obj::w>(o).has_value());  // idle: nests, nothing back
    CHECK(o.w.disable_count() == 2);
    CHECK_FALSE(wq::enable_work(o.w));
    CHECK(wq::enable_work(o.w));
  }
  SECTION("disable_work_sync: an armed delayed member") {
    REQUIRE(q.enqueue_delayed<&obj::d>(kind::give(h), 10s).queued());
    maybe back = wq::disable_work_sync<&obj::d>(o);
    REQUIRE(back.has_value());
    CHECK(kind::take_back(h, std::move(*back)) == &o);
    CHECK(o.d.disable_count() == 1);
    CHECK(wq::enable_work(o.d));
  }
  SECTION("the explicit two-parameter forms still work") {
    REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
    maybe back = wq::cancel_work<&obj::w, pointer>(o);
    REQUIRE(back.has_value());
    CHECK(kind::take_back(h, std::move(*back)) == &o);
    REQUIRE(q.enqueue_delayed<&obj::d>(kind::give(h), 10s).queued());
    back = wq::disable_work<&obj::d, pointer>(o);
    REQUIRE(back.has_value());
    CHECK(kind::take_back(h, std::move(*back)) == &o);
    CHECK(wq::enable_work(o.d));
    REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
    back = wq::disable_work_sync<&obj::w, pointer>(o);
    REQUIRE(back.has_value());
    CHECK(kind::take_back(h, std::move(*back)) == &o);
    CHECK(wq::enable_work(o.w));
    CHECK_FALSE(wq::cancel_work_sync<&obj::w, pointer>(o).has_value());
  }
  wq_test::run_ready(io);
  CHECK(o.runs.load() == 0);    // every instance was cancelled before the queue ran
  CHECK(kind::owners(h) == 1);  // the queue holds no reference: each one came back
}

/// An object with two work members whose `run` overloads take different pointer types: the
/// typed calls deduce the one for the member they name.
struct mixed_obj : boost::intrusive_ref_counter<mixed_obj> {
  wq::work by_ref;      // queued with boost::intrusive_ptr
  wq::work by_address;  // queued with a raw pointer
  std::atomic<int> runs{0};
  static void run(boost::intrusive_ptr<mixed_obj> self, wq::id<&mixed_obj::by_ref>) noexcept {
    self->runs.fetch_add(1);
  }
  static void run(mixed_obj* self, wq::id<&mixed_obj::by_address>) noexcept {
    self->runs.fetch_add(1);
  }
};

/// A shared_ptr-owned session with two plain work members, as in the README.
struct session_obj {
  wq::shared_work flush;
  wq::shared_work close;
  std::atomic<int> flushes{0};
  std::atomic<int> closes{0};
  static void run(std::shared_ptr<session_obj> self, wq::id<&session_obj::flush>) noexcept {
    self->flushes.fetch_add(1);
  }
  static void run(std::shared_ptr<session_obj> self, wq::id<&session_obj::close>) noexcept {
    self->closes.fetch_add(1);
  }
};

TEST_CASE(
    "cancel: with two work members the typed calls deduce the run of the member they "
    "name (rule 28)",
    "[cancel][typed][ownership][rule28]") {
  STATIC_REQUIRE(
      std::is_same_v<decltype(wq::cancel_work<&mixed_obj::by_ref>(std::declval<mixed_obj&>())),
                     std::optional<boost::intrusive_ptr<mixed_obj>>>);
  STATIC_REQUIRE(
      std::is_same_v<decltype(wq::cancel_work<&mixed_obj::by_address>(std::declval<mixed_obj&>())),
                     std::optional<mixed_obj*>>);
  boost::asio::io_context io;
  wq::workqueue q{io.get_executor(), "typed-two-members"};
  wq_test::drive_on_exit drive{io};

  SECTION("two runs taking different pointer types") {
    boost::intrusive_ptr<mixed_obj> m{new mixed_obj};
    REQUIRE(q.enqueue<&mixed_obj::by_ref>(m).queued());
    REQUIRE(q.enqueue<&mixed_obj::by_address>(m.get()).queued());
    CHECK(m->use_count() == 2);
    std::optional<boost::intrusive_ptr<mixed_obj>> ref = wq::cancel_work<&mixed_obj::by_ref>(*m);
    REQUIRE(ref.has_value());
    CHECK(*ref == m);
    ref.reset();
    CHECK(m->use_count() == 1);
    CHECK(m->by_address.is_pending());  // the other member is untouched
    std::optional<mixed_obj*> addr = wq::cancel_work<&mixed_obj::by_address>(*m);
    REQUIRE(addr.has_value());
    CHECK(*addr == m.get());
    wq_test::run_ready(io);
    CHECK(m->runs.load() == 0);
  }
  SECTION("two runs taking the same pointer type") {
    auto s = std::make_shared<session_obj>();
    REQUIRE(q.enqueue<&session_obj::flush>(s).queued());
    REQUIRE(q.enqueue<&session_obj::close>(s).queued());
    CHECK(s.use_count() == 3);
    auto p = wq::cancel_work<&session_obj::flush>(*s);  // the README's short form
    REQUIRE(p.has_value());
    CHECK(*p == s);
    p.reset();
    CHECK(s.use_count() == 2);
    CHECK(s->close.is_pending());
    wq_test::run_ready(io);
    CHECK(s->flushes.load() == 0);
    CHECK(s->closes.load() == 1);
    CHECK(s.use_count() == 1);
  }
}

TEST_CASE("cancel: cancel_work does not wait for a running instance (rule 28)",
          "[cancel][rule28]") {
  gate g;
  c_work item;
  item.body = [&](c_work&) { g.pass(); };
  wq::workqueue q{"rule28-run"};

  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(g.started.wait_for(must_happen));
  // The gate is closed and only this thread opens it: a cancel that waited would hang here.
  CHECK_FALSE(wq::cancel_work(item.w));
  CHECK_FALSE(g.finished.load());
  // A pending instance queued while it runs is cancelled, the running one is not waited for.
  REQUIRE(wq::queue_work(q, item.w));
  CHECK(wq::cancel_work(item.w));
  CHECK_FALSE(g.finished.load());
  g.open.count_down();
  wq::flush_work(item.w);
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(g.timed_out.load());
}

// ---- rules 29, 32: cancel_work_sync / cancel_delayed_work_sync -----------------------------

TEST_CASE("cancel: cancel_work_sync returns only after the running instance finished (rule 29)",
          "[cancel][rule29]") {
  gate g;
  c_work item;
  item.body = [&](c_work&) { g.pass(); };
  wq::workqueue q{"rule29-run"};

  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(g.started.wait_for(must_happen));
  std::thread opener = wq_test::open_later(g, 50ms);
  const bool was_pending = wq::cancel_work_sync(item.w);
  const bool finished_at_return = g.finished.load();
  opener.join();
  CHECK_FALSE(was_pending);
  CHECK(finished_at_return);
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(item.w.is_pending());
  CHECK(item.w.disable_count() == 0);
  CHECK_FALSE(g.timed_out.load());
}

// The thread's run record names the inner item while an item runs nested inside another one's
// function (here: the outer item runs the io_context of another queue's worker). The outer run
// is then found by looking at every queue; a _sync cancel that trusted the records alone would
// return while the outer function still runs.
TEST_CASE(
    "cancel: cancel_work_sync waits for an item whose function runs another item nested "
    "(rule 29)",
    "[cancel][rule29]") {
  gate g;
  boost::asio::io_context inner_io;
  wq::workqueue inner_q{inner_io.get_executor(), "rule29-inner"};
  c_work inner;
  inner.body = [&](c_work&) { g.pass(); };
  REQUIRE(wq::queue_work(inner_q, inner.w));
  std::atomic<bool> outer_finished{false};
  c_work outer;
  outer.body = [&](c_work&) {
    (void)inner_io.run_one();  // runs inner_q's worker, which runs `inner` on this thread
    outer_finished.store(true);
  };
  wq::workqueue outer_q{"rule29-outer"};

  REQUIRE(wq::queue_work(outer_q, outer.w));
  REQUIRE(g.started.wait_for(must_happen));
  CHECK(inner.w.is_running());
  std::thread opener = wq_test::open_later(g, 50ms);
  const bool was_pending = wq::cancel_work_sync(outer.w);
  const bool outer_finished_at_return = outer_finished.load();
  const bool inner_finished_at_return = g.finished.load();
  opener.join();
  CHECK_FALSE(was_pending);
  CHECK(inner_finished_at_return);
  CHECK(outer_finished_at_return);
  CHECK_FALSE(g.timed_out.load());
  // The inner item is found through the record that names it.
  CHECK_FALSE(wq::cancel_work_sync(inner.w));
  CHECK(inner.runs.load() == 1);
  CHECK(outer.runs.load() == 1);
}

// The nesting begins and ends while the canceller reads the run records: a record read while it
// showed the inner item, with the outer one shown again before the canceller checked for
// hidden runs, must still send it to the outer item's queue. Found by a user trial (about 1
// round in 100 returned early).
TEST_CASE("cancel: stress: cancel_work_sync of an item running nested items in a loop (rule 29)",
          "[cancel][rule29][stress]") {
  constexpr int rounds = 400;
  int early = 0;
  for (int round = 0; round < rounds; ++round) {
    boost::asio::io_context inner_io;
    wq::workqueue inner_q{inner_io.get_executor(), "rule29-loop-inner"};
    c_work inner;
    std::atomic<bool> outer_running{false};
    latch started{1};
    c_work outer;
    const int loops = 1 + round % 40;
    outer.body = [&](c_work&) {
      outer_running.store(true);
      started.count_down();
      for (int i = 0; i < loops; ++i) {
        (void)wq::queue_work(inner_q, inner.w);
        inner_io.restart();
        (void)inner_io.run_one();  // runs inner_q's worker, which runs `inner` on this thread
      }
      outer_running.store(false);  // the function's last step
    };
    wq::workqueue outer_q{"rule29-loop-outer"};
    REQUIRE(wq::queue_work(outer_q, outer.w));
    REQUIRE(started.wait_for(must_happen));
    (void)wq::cancel_work_sync(outer.w);
    if (outer_running.load()) ++early;
    outer_q.drain();
  }
  CHECK(early == 0);
}

TEST_CASE("cancel: cancel_work_sync of a running item with a pending instance (rule 29)",
          "[cancel][rule29]") {
  gate g;
  c_work item;
  item.body = [&](c_work&) {
    if (item.runs.load() == 0) g.pass();
  };
  wq::workqueue q{"rule29-both"};

  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(g.started.wait_for(must_happen));
  REQUIRE(wq::queue_work(q, item.w));  // pending again behind the running instance
  std::thread opener = wq_test::open_later(g, 50ms);
  const bool was_pending = wq::cancel_work_sync(item.w);
  const bool finished_at_return = g.finished.load();
  opener.join();
  CHECK(was_pending);
  CHECK(finished_at_return);
  CHECK(settle(item.runs) == 1);  // the pending instance never ran
}

TEST_CASE("cancel: after cancel_work_sync a self-requeueing item never runs again (rule 29)",
          "[cancel][rule29][requeue]") {
  wq::workqueue q{"rule29-self"};
  std::atomic<bool> keep{true};
  std::atomic<int> refused{0};
  c_work item;
  item.body = [&](c_work& self) {
    if (!keep.load()) return;
    const wq::queue_status st = q.queue(self.w);
    if (st == wq::queue_status::disabled) refused.fetch_add(1);
  };
  latch some{20};
  item.done = &some;  // counted down by every run (excess count-downs are harmless)

  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(some.wait_for(must_happen));
  (void)wq::cancel_work_sync(item.w);
  const int at_return = item.runs.load();
  CHECK_FALSE(item.w.is_pending());
  CHECK(item.w.disable_count() == 0);
  CHECK(settle(item.runs) == at_return);
  CHECK_FALSE(item.w.is_pending());
  INFO("self-requeues refused while cancel_work_sync waited: " << refused.load());

  // Queueing after it returned works normally.
  keep.store(false);
  latch again{1};
  item.done = &again;
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(again.wait_for(must_happen));
  CHECK(item.runs.load() == at_return + 1);
}

TEST_CASE(
    "cancel: cancel_delayed_work_sync kills an armed timer and a self-re-arming item "
    "(rule 32)",
    "[cancel][rule32]") {
  wq::workqueue q{"rule32"};
  SECTION("armed, long delay") {
    c_delayed item;
    REQUIRE(wq::queue_delayed_work(q, item.d, 10s));
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(wq::cancel_delayed_work_sync(item.d));
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);  // does not wait for the timer
    CHECK_FALSE(item.d.is_pending());
    CHECK(settle(item.runs) == 0);
  }
  SECTION("re-arming itself every millisecond") {
    std::atomic<bool> keep{true};
    c_delayed item;
    item.body = [&](c_delayed& self) {
      if (keep.load()) (void)q.queue_delayed(self.d, 1ms);
    };
    latch some{5};
    item.done = &some;
    REQUIRE(wq::queue_delayed_work(q, item.d, 1ms));
    REQUIRE(some.wait_for(must_happen));
    (void)wq::cancel_delayed_work_sync(item.d);
    const int at_return = item.runs.load();
    CHECK_FALSE(item.d.is_pending());
    // 100 ms is a hundred periods: a timer that survived the cancel would fire in it.
    CHECK(settle(item.runs) == at_return);
    keep.store(false);
  }
}

TEST_CASE(
    "cancel: cancel_work_sync covers an item running on queue A while pending on queue B "
    "(rule 29)",
    "[cancel][rule29][migrate]") {
  boost::asio::io_context io_b;  // B is not run: the instance queued there stays pending
  gate g;
  c_work item;
  item.body = [&](c_work&) {
    if (item.runs.load() == 0) g.pass();
  };
  wq::workqueue qa{"rule29-A"};
  wq::workqueue qb{io_b.get_executor(), "rule29-B"};
  wq_test::drive_on_exit drive{io_b};

  REQUIRE(wq::queue_work(qa, item.w));
  REQUIRE(g.started.wait_for(must_happen));
  REQUIRE(wq::queue_work(qb, item.w));  // pending on B while running on A
  std::thread opener = wq_test::open_later(g, 50ms);
  const bool was_pending = wq::cancel_work_sync(item.w);
  const bool finished_at_return = g.finished.load();
  opener.join();
  CHECK(was_pending);
  CHECK(finished_at_return);  // the instance on A had finished
  CHECK_FALSE(item.w.is_pending());
  wq_test::run_ready(io_b);
  CHECK(item.runs.load() == 1);  // the instance on B never ran
}

TEST_CASE(
    "cancel: concurrent cancel_work_sync callers all wait for the running instance "
    "(rule 29)",
    "[cancel][rule29][race]") {
  gate g;
  c_work item;
  item.body = [&](c_work&) { g.pass(); };
  wq::workqueue q{"rule29-many"};
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(g.started.wait_for(must_happen));

  constexpr int callers = 3;
  std::atomic<int> finished_at_return{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&] {
      (void)wq::cancel_work_sync(item.w);
      if (g.finished.load()) finished_at_return.fetch_add(1);
    });
  }
  std::thread opener = wq_test::open_later(g, 50ms);
  for (auto& t : threads) t.join();
  opener.join();
  CHECK(finished_at_return.load() == callers);
  CHECK(item.w.disable_count() == 0);  // every temporary disable was undone
  REQUIRE(wq::queue_work(q, item.w));  // and queueing works again
  wq::flush_work(item.w);
  CHECK(item.runs.load() == 2);
}

// ---- rules 16, 22, 33, 34, §5.11: disable / enable -----------------------------------------

TEST_CASE("cancel: a disabled item refuses every queueing call, disables nest (rules 16, 34)",
          "[cancel][disable][rule16][rule34]") {
  boost::asio::io_context io;
  c_delayed item;
  wq_test::fn_item typed{[](wq_test::fn_item&) {}};
  wq::workqueue q{io.get_executor(), "rule16"};
  wq_test::drive_on_exit drive{io};

  CHECK_FALSE(wq::disable_delayed_work(item.d));  // idle: was not pending
  CHECK(item.d.disable_count() == 1);
  CHECK(q.queue(item.d) == wq::queue_status::disabled);
  CHECK_FALSE(wq::queue_work(q, item.d));
  CHECK(q.queue_delayed(item.d, 1ms) == wq::queue_status::disabled);
  CHECK_FALSE(wq::queue_delayed_work(q, item.d, 0ms));
  CHECK_FALSE(wq::mod_delayed_work(q, item.d, 0ms));  // rule 20d: not queued
  CHECK_FALSE(item.d.is_pending());

  CHECK_FALSE(wq::disable_work(typed.w));
  auto r = q.enqueue<&wq_test::fn_item::w>(&typed);
  CHECK(r.status == wq::queue_status::disabled);
  CHECK(r.pointer == &typed);  // handed back
  CHECK(wq::enable_work(typed.w));

  CHECK_FALSE(wq::disable_delayed_work(item.d));
  CHECK(item.d.disable_count() == 2);
  CHECK_FALSE(wq::enable_delayed_work(item.d));  // 2 -> 1
  CHECK(item.d.disable_count() == 1);
  CHECK(q.queue(item.d) == wq::queue_status::disabled);
  CHECK(wq::enable_delayed_work(item.d));  // 1 -> 0
  CHECK(item.d.disable_count() == 0);
  CHECK_FALSE(item.d.is_pending());  // enabling queues nothing (rule 34)
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 0);

  REQUIRE(q.queue(item.d) == wq::queue_status::queued);
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 1);
}

TEST_CASE("cancel: enable_work on a zero count warns and leaves it at zero (rule 34, §5.11)",
          "[cancel][disable][rule34][misuse]") {
  wq_test::warning_catcher warnings;
  c_work item;
  const bool reached_zero = wq::enable_work(item.w);
  CHECK(warnings.contains(wq::errc::disable_count_underflow));
  CHECK(item.w.disable_count() == 0);
  INFO("enable_work at zero returned " << reached_zero << " (the kernel returns true)");
  CHECK(reached_zero);
}

TEST_CASE("cancel: the disable count saturates at 65535 with a warning (rule 34, §5.11)",
          "[cancel][disable][rule34][misuse]") {
  wq_test::warning_catcher warnings;
  c_work item;
  for (int i = 0; i < 65535; ++i) (void)wq::disable_work(item.w);
  REQUIRE(item.w.disable_count() == 65535);
  CHECK(warnings.messages().empty());
  (void)wq::disable_work(item.w);
  CHECK(warnings.contains(wq::errc::disable_count_overflow));
  CHECK(item.w.disable_count() == 65535);
  int reached_zero = 0;
  for (int i = 0; i < 65535; ++i) reached_zero += wq::enable_work(item.w) ? 1 : 0;
  CHECK(reached_zero == 1);
  CHECK(item.w.disable_count() == 0);
}

TEST_CASE("cancel: disable_work cancels a pending instance and returns true (rule 33)",
          "[cancel][disable][rule33]") {
  boost::asio::io_context io;
  c_work item;
  c_delayed armed;
  wq::workqueue q{io.get_executor(), "rule33"};
  wq_test::drive_on_exit drive{io};

  REQUIRE(wq::queue_work(q, item.w));
  CHECK(wq::disable_work(item.w));
  CHECK_FALSE(item.w.is_pending());
  REQUIRE(wq::queue_delayed_work(q, armed.d, 10s));
  CHECK(wq::disable_delayed_work_sync(armed.d));
  CHECK_FALSE(armed.d.is_pending());
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 0);
  CHECK(armed.runs.load() == 0);
  CHECK(wq::enable_work(item.w));
  CHECK(wq::enable_delayed_work(armed.d));
}

TEST_CASE(
    "cancel: disable_work_sync waits for the running instance, disable_work does not "
    "(rule 33)",
    "[cancel][disable][rule33]") {
  gate g;
  c_work item;
  item.body = [&](c_work&) { g.pass(); };
  wq::workqueue q{"rule33-sync"};
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(g.started.wait_for(must_happen));

  CHECK_FALSE(wq::disable_work(item.w));  // running, not pending: returns at once
  CHECK_FALSE(g.finished.load());
  CHECK(wq::enable_work(item.w));

  std::thread opener = wq_test::open_later(g, 50ms);
  CHECK_FALSE(wq::disable_work_sync(item.w));
  const bool finished_at_return = g.finished.load();
  opener.join();
  CHECK(finished_at_return);
  CHECK(item.w.disable_count() == 1);
  CHECK(q.queue(item.w) == wq::queue_status::disabled);
  CHECK(wq::enable_work(item.w));
}

TEST_CASE("cancel: enable_and_queue_work queues only when the count reaches zero (rule 22)",
          "[cancel][disable][rule22]") {
  boost::asio::io_context io;
  c_work item;
  wq::workqueue q{io.get_executor(), "rule22"};
  wq_test::drive_on_exit drive{io};

  (void)wq::disable_work(item.w);
  (void)wq::disable_work(item.w);
  CHECK_FALSE(wq::enable_and_queue_work(q, item.w));  // 2 -> 1
  CHECK_FALSE(item.w.is_pending());
  CHECK(wq::enable_and_queue_work(q, item.w));  // 1 -> 0: queued
  CHECK(item.w.is_pending());
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 1);

  SECTION("an owning item is refused with a warning, but enabled") {
    // (On a shared_work this does not compile: see
    // compile-fail: untyped_enable_and_queue_on_shared_item.)
    using obj = wq_test::typed_obj<wq_test::intrusive_kind>;
    wq_test::warning_catcher warnings;
    boost::intrusive_ptr<obj> p{new obj};
    REQUIRE(q.enqueue<&obj::w>(p).queued());  // binds owning ops
    wq_test::run_ready(io);
    REQUIRE(p->runs.load() == 1);
    (void)wq::disable_work(p->w);
    CHECK_FALSE(wq::enable_and_queue_work(q, p->w));
    CHECK(warnings.contains(wq::errc::untyped_on_owning_item));
    CHECK(p->w.disable_count() == 0);
    CHECK_FALSE(p->w.is_pending());
    CHECK(p->use_count() == 1);
  }
}

// ---- rule 20: mod_delayed_work ------------------------------------------------------------

TEST_CASE("cancel: mod_delayed_work on an idle item queues it and returns false (rule 20)",
          "[cancel][mod][rule20][test_clock]") {
  wq::test_clock clock;
  wq::workqueue q{"rule20-idle"};
  c_delayed item;
  CHECK_FALSE(wq::mod_delayed_work(q, item.d, 20ms));
  CHECK(item.d.is_pending());
  CHECK(item.d.deadline() == clock.now() + 20ms);
  CHECK(clock.advance(20ms - 1ns) == 0);  // never early
  CHECK(clock.advance(1ns) == 1);
  q.flush();
  CHECK(item.runs.load() == 1);
  int expected_runs = 1;

  SECTION("delay zero queues at once") {
    CHECK_FALSE(wq::mod_delayed_work(q, item.d, 0ms));
    CHECK(clock.armed_count() == 0);
    q.flush();
    CHECK(item.runs.load() == 2);
    expected_runs = 2;
  }
  CHECK(clock.advance(1h) == 0);  // nothing else was left armed
  q.flush();
  CHECK(item.runs.load() == expected_runs);
  CHECK_FALSE(item.d.is_pending());
}

TEST_CASE("cancel: mod_delayed_work moves an armed deadline later or earlier (rule 20)",
          "[cancel][mod][rule20][test_clock]") {
  wq::test_clock clock;
  wq::workqueue q{"rule20-armed"};
  c_delayed item;

  SECTION("later: runs at the new deadline, not the old one") {
    REQUIRE(wq::queue_delayed_work(q, item.d, 1s));
    CHECK(clock.advance(100ms) == 0);
    CHECK(wq::mod_delayed_work(q, item.d, 1300ms));  // due 1.4 s after arming
    CHECK(clock.advance(900ms) == 0);                // the old deadline passes
    q.flush();
    CHECK(item.runs.load() == 0);
    CHECK(clock.advance(400ms - 1ns) == 0);
    CHECK(clock.advance(1ns) == 1);
  }
  SECTION("earlier: runs at the new deadline, long before the old one") {
    REQUIRE(wq::queue_delayed_work(q, item.d, 30s));
    CHECK(wq::mod_delayed_work(q, item.d, 20ms));
    CHECK(clock.advance(20ms - 1ns) == 0);
    CHECK(clock.advance(1ns) == 1);
  }
  q.flush();
  CHECK(item.runs.load() == 1);
  CHECK(clock.advance(1h) == 0);  // the old deadline does not fire a second run
  q.flush();
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(item.d.is_pending());
}

TEST_CASE(
    "cancel: mod_delayed_work moves a real armed deadline earlier and later in place, counted "
    "once (rule 20)",
    "[cancel][mod][rule20]") {
  // With real timers, moving the deadline of an item armed on the same queue takes the fast
  // path (the deadline changes in one critical section, the item staying armed). Earlier must
  // cut the outstanding wait short: without that the item waits its hour and this times out.
  // Later must not run it at the old deadline.
  wq::workqueue q{"rule20-real"};
  wq_test::lifetime_counter life;
  SECTION("earlier") {
    c_delayed item;
    latch ran{1};
    item.done = &ran;
    REQUIRE(wq::queue_delayed_work(q, item.d, 1h));
    const std::int64_t moved_at = now_ns();
    CHECK(wq::mod_delayed_work(q, item.d, 20ms));  // was pending
    CHECK(item.d.is_pending());
    REQUIRE(ran.wait_for(must_happen));
    CHECK(item.ran_at_ns.load() - moved_at >= std::chrono::nanoseconds(20ms).count());
  }
  SECTION("later") {
    c_delayed item;
    latch ran{1};
    item.done = &ran;
    REQUIRE(wq::queue_delayed_work(q, item.d, 30ms));
    const std::int64_t moved_at = now_ns();
    CHECK(wq::mod_delayed_work(q, item.d, 300ms));
    REQUIRE(ran.wait_for(must_happen));
    CHECK(item.ran_at_ns.load() - moved_at >= std::chrono::nanoseconds(300ms).count());
  }
  SECTION("typed: the caller keeps its pointer, the queue keeps its reference") {
    auto p = std::make_shared<wq_test::shared_obj>(life);
    latch ran{1};
    p->done = &ran;
    REQUIRE(q.enqueue_delayed<&wq_test::shared_obj::d>(p, 1h).status == wq::queue_status::queued);
    CHECK(p.use_count() == 2);
    auto r = wq::mod_delayed_work<&wq_test::shared_obj::d>(q, p, 20ms);
    CHECK(r.was_pending);
    CHECK(r.status == wq::queue_status::queued);
    CHECK(r.pointer == p);  // handed back: the queue already holds one
    r.pointer.reset();
    CHECK(p.use_count() == 2);
    REQUIRE(ran.wait_for(must_happen));
    CHECK(q.drain() == std::error_code{});
    CHECK(p.use_count() == 1);  // the run took the queue's reference and dropped it
  }
  CHECK(q.drain() == std::error_code{});
  const wq::queue_stats st = q.stats();
  CHECK(st.queued == 1);  // the arm; a move is not a queueing
  CHECK(st.cancelled == 0);
}

TEST_CASE("cancel: mod_delayed_work postpones an item queued but not started (rule 20a)",
          "[cancel][mod][rule20][test_clock]") {
  wq::test_clock clock;
  boost::asio::io_context io;  // not run yet: the queued item cannot start
  c_delayed item;
  wq::workqueue q{io.get_executor(), "rule20a"};
  wq_test::drive_on_exit drive{io};

  SECTION("queued by queue_work") { REQUIRE(wq::queue_work(q, item.d)); }
  SECTION("queued by its timer") {
    REQUIRE(wq::queue_delayed_work(q, item.d, 50ms));
    CHECK(clock.advance(50ms) == 1);
  }
  CHECK(wq::mod_delayed_work(q, item.d, 200ms));
  CHECK(item.d.is_pending());
  wq_test::run_ready(io);  // the worker posted for the first queueing finds nothing to run
  CHECK(item.runs.load() == 0);
  CHECK(clock.advance(200ms - 1ns) == 0);  // not before the new delay
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 0);
  CHECK(clock.advance(1ns) == 1);
  wq_test::run_ready(io);
  CHECK(item.runs.load() == 1);
}

TEST_CASE("cancel: mod_delayed_work moves an item to another queue (rule 20b)",
          "[cancel][mod][rule20]") {
  boost::asio::io_context io_a;  // not run: the instance queued on A stays there
  wq_test::io_runner thread_b;
  c_delayed item;
  latch done{1};
  item.done = &done;
  wq::workqueue qa{io_a.get_executor(), "rule20b-A"};
  wq_test::drive_on_exit drive{io_a};
  wq::workqueue qb{thread_b.context(), "rule20b-B"};

  SECTION("queued on A") { REQUIRE(wq::queue_work(qa, item.d)); }
  SECTION("armed for A") { REQUIRE(wq::queue_delayed_work(qa, item.d, 10s)); }
  CHECK(wq::mod_delayed_work(qb, item.d, 0ms));
  REQUIRE(done.wait_for(must_happen));
  CHECK(item.ran_on.load() == thread_b.id());
  wq_test::run_ready(io_a);
  CHECK(item.runs.load() == 1);
  CHECK_FALSE(item.d.is_pending());
}

TEST_CASE(
    "cancel: mod_delayed_work on an item that is only running queues it again "
    "(rule 20c)",
    "[cancel][mod][rule20]") {
  gate g;
  wq_test::concurrency_probe probe;
  c_delayed item;
  item.body = [&](c_delayed& self) {
    probe.enter();
    if (self.runs.load() == 0) g.pass();
    probe.leave();
  };
  latch done{2};
  item.done = &done;
  wq::workqueue q{"rule20c"};

  REQUIRE(wq::queue_work(q, item.d));
  REQUIRE(g.started.wait_for(must_happen));
  CHECK_FALSE(wq::mod_delayed_work(q, item.d, 0ms));  // not pending: returns false, queued
  CHECK(item.d.is_pending());
  CHECK(item.runs.load() == 0);  // the second run waits for the first (non-reentrant)
  g.open.count_down();
  REQUIRE(done.wait_for(must_happen));
  CHECK(item.runs.load() == 2);
  CHECK(probe.max_running.load() == 1);
}

TEST_CASE("cancel: mod_delayed_work on a disabled item does not queue it (rule 20d)",
          "[cancel][mod][rule20][disable]") {
  boost::asio::io_context io;
  c_delayed item;
  wq_test::lifetime_counter life;
  wq::workqueue q{io.get_executor(), "rule20d"};
  wq_test::drive_on_exit drive{io};

  (void)wq::disable_delayed_work(item.d);
  CHECK_FALSE(wq::mod_delayed_work(q, item.d, 0ms));
  CHECK_FALSE(wq::mod_delayed_work(q, item.d, 10ms));
  CHECK_FALSE(item.d.is_pending());
  CHECK(item.d.disable_count() == 1);

  auto p = std::make_shared<wq_test::shared_obj>(life);
  (void)wq::disable_delayed_work(p->d);
  auto r = wq::mod_delayed_work<&wq_test::shared_obj::d>(q, p, 0ms);
  CHECK_FALSE(r.was_pending);
  CHECK(r.status == wq::queue_status::disabled);
  CHECK(r.pointer == p);  // handed back
  r.pointer.reset();
  CHECK(p.use_count() == 1);
  CHECK_FALSE(p->d.is_pending());

  wq_test::run_ready(io);
  CHECK(item.runs.load() == 0);
  CHECK(p->runs.load() == 0);
  CHECK(wq::enable_delayed_work(item.d));
  CHECK(wq::enable_delayed_work(p->d));
}

TEST_CASE("cancel: the typed mod_delayed_work keeps or takes the shared_ptr (rule 20)",
          "[cancel][mod][rule20][typed][ownership]") {
  wq::workqueue q{"rule20-typed"};
  wq_test::lifetime_counter life;
  auto p = std::make_shared<wq_test::shared_obj>(life);
  latch done{1};
  p->done = &done;

  SECTION("pending: the queue keeps its reference, the caller's is handed back") {
    REQUIRE(q.enqueue_delayed<&wq_test::shared_obj::d>(p, 10s).queued());
    REQUIRE(p.use_count() == 2);
    auto r = wq::mod_delayed_work<&wq_test::shared_obj::d>(q, p, 20ms);
    CHECK(r.was_pending);
    CHECK(r.status == wq::queue_status::queued);
    CHECK(r.pointer == p);
    CHECK(p.use_count() == 3);  // p, r.pointer, the queue's
    r.pointer.reset();
    CHECK(p.use_count() == 2);
  }
  SECTION("idle: the queue takes the caller's reference") {
    auto r = wq::mod_delayed_work<&wq_test::shared_obj::d>(q, std::shared_ptr(p), 20ms);
    CHECK_FALSE(r.was_pending);
    CHECK(r.status == wq::queue_status::queued);
    CHECK(r.pointer == nullptr);
    CHECK(p.use_count() == 2);  // p and the queue's
  }
  REQUIRE(done.wait_for(must_happen));
  wq::flush_delayed_work(p->d);  // the run function's reference is dropped when it returns
  CHECK(p->runs.load() == 1);
  CHECK(p.use_count() == 1);
}

TEMPLATE_TEST_CASE(
    "cancel: the typed mod_delayed_work of a null or moved-from pointer returns "
    "null_pointer, reports it and queues nothing (rule 20, §5.10)",
    "[cancel][mod][typed][null_pointer][misuse][rule20]", wq_test::shared_kind,
    wq_test::unique_kind, wq_test::intrusive_kind, wq_test::raw_kind) {
  // Refused in every build type (not a WQ_ASSERT followed by a null dereference).
  using kind = TestType;
  using obj = wq_test::typed_obj<kind>;
  using pointer = typename obj::pointer;
  wq_test::warning_catcher warnings;
  wq::workqueue q{"mod-null"};
  auto h = kind::template make<obj>();
  obj& o = *h;
  o.keep = &h;  // a unique_ptr's run hands its pointer back here

  auto refused = [&](wq::mod_result<pointer> r) {
    CHECK_FALSE(r.was_pending);
    CHECK(r.status == wq::queue_status::null_pointer);
    CHECK(r.pointer == nullptr);
  };
  refused(wq::mod_delayed_work<&obj::d>(q, pointer{}, 10ms));
  refused(wq::mod_delayed_work<&obj::d>(q, pointer{}, 0ms));
  int expected = 2;
  if constexpr (!std::is_pointer_v<pointer>) {  // a moved-from raw pointer is not null
    pointer p = kind::give(h);
    pointer kept = std::move(p);
    refused(wq::mod_delayed_work<&obj::d>(q, std::move(p), 10ms));  // NOLINT: use after move
    CHECK(kind::take_back(h, std::move(kept)) == &o);
    ++expected;
  }
  CHECK(warnings.count(wq::errc::null_pointer) == expected);
  CHECK(warnings.contains("mod_delayed_work"));
  CHECK_FALSE(o.d.is_pending());
  CHECK(q.stats().queued == 0);

  // The queue and the item keep working.
  auto r = wq::mod_delayed_work<&obj::d>(q, kind::give(h), 0ms);
  CHECK_FALSE(r.was_pending);
  REQUIRE(r.status == wq::queue_status::queued);
  CHECK(q.flush() == std::error_code{});
  CHECK(o.runs.load() == 1);
  CHECK(kind::owners(h) == 1);
}

TEST_CASE(
    "cancel: 10000 mod_delayed_work calls moving the deadline later run it once, after "
    "the final deadline (rule 20, lazy re-arm)",
    "[cancel][mod][rule20][timing]") {
  wq::workqueue q{"rule20-lazy"};
  c_delayed item;
  latch done{1};
  item.done = &done;
  constexpr int calls = 10000;
  int pending_returns = 0;
  std::int64_t last_call = 0;
  // Each deadline is at least 200 ms after its call, so none falls due inside the loop.
  for (int i = 0; i < calls; ++i) {
    last_call = now_ns();
    pending_returns += wq::mod_delayed_work(q, item.d, 200ms + i * 20us) ? 1 : 0;
  }
  const auto final_delay = 200ms + (calls - 1) * 20us;  // ~400 ms
  CHECK(pending_returns == calls - 1);
  REQUIRE(done.wait_for(must_happen));
  CHECK(item.ran_at_ns.load() - last_call >= to_ns(final_delay));  // never early
  CHECK(settle(item.runs) == 1);
}

// ---- items a worker took ahead (rules 23, 28, 29, 45) -------------------------------------
//
// A worker of a queue whose every worker slot is busy takes the runnable items behind the one it
// starts ahead, and runs them after it without taking the queue's mutex between them. They stay
// queued instances: cancellable at once, flushable, held back by pause, and taken back by a
// worker with nothing else to run (docs/benchmarks.md, "The burst's lever, measured").

/// Returns: what `q.dump()` says the first running worker holds taken ahead ("k taken ahead"),
/// or -1.
int taken_ahead_on(wq::workqueue& q) {
  const std::string d = q.dump();
  const auto at = d.find(" taken ahead");
  if (at == std::string::npos) return -1;
  const auto from = d.rfind(' ', at - 1);
  return std::stoi(d.substr(from + 1, at - from - 1));
}

/// A queue owning 2 threads: worker 2 blocked in `b2`, worker 1 blocked in `x` with the `n`
/// items queued behind `x` taken ahead (13 queueings: none is a latency sample, sampled from
/// the 16th on, which would end the batch before it).
struct ahead_setup {
  wq::workqueue q{"ahead", {.threads = 2}};
  gate g1, g2, gx;
  c_work b1, b2, x;
  std::vector<std::unique_ptr<c_work>> ys;
  latch ys_done;

  explicit ahead_setup(int n) : ys_done(n) {
    b1.body = [this](c_work&) { g1.pass(); };
    b2.body = [this](c_work&) { g2.pass(); };
    x.body = [this](c_work&) { gx.pass(); };
    REQUIRE(wq::queue_work(q, b1.w));
    REQUIRE(g1.started.wait_for());
    REQUIRE(wq::queue_work(q, b2.w));
    REQUIRE(g2.started.wait_for());
    REQUIRE(wq::queue_work(q, x.w));
    for (int i = 0; i < n; ++i) {
      ys.push_back(std::make_unique<c_work>());
      ys.back()->done = &ys_done;
      REQUIRE(wq::queue_work(q, ys.back()->w));
    }
    g1.open.count_down();  // worker 1 takes x, and the ys behind it ahead
    REQUIRE(gx.started.wait_for());
  }
  ahead_setup(const ahead_setup&) = delete;
  ahead_setup& operator=(const ahead_setup&) = delete;
  ~ahead_setup() {
    g1.open.count_down();
    g2.open.count_down();
    gx.open.count_down();
    q.resume();
    (void)q.drain();
  }
  int taken_ahead() { return taken_ahead_on(q); }
};

TEST_CASE(
    "cancel: items a worker took ahead are cancelled at once and never run and a worker with "
    "nothing else to run takes the rest (rules 28 29)",
    "[cancel][rule28][rule29]") {
  ahead_setup a(10);
  REQUIRE(a.taken_ahead() == 10);
  CHECK(wq::cancel_work(a.ys[2]->w));
  // Does not wait for x, which the worker holding it ahead is running.
  CHECK(wq::cancel_work_sync(a.ys[5]->w));
  CHECK_FALSE(a.gx.finished.load());
  CHECK_FALSE(wq::cancel_work(a.ys[2]->w));  // idle now
  CHECK(a.taken_ahead() == 8);
  // Worker 2 finishes b2 and finds the lists empty: it runs the 8 left while x still blocks
  // worker 1.
  a.ys_done.count_down(2);
  a.g2.open.count_down();
  REQUIRE(a.ys_done.wait_for());
  CHECK_FALSE(a.gx.finished.load());
  a.gx.open.count_down();
  REQUIRE_FALSE(a.q.flush());
  for (int i = 0; i < 10; ++i)
    CHECK(a.ys[static_cast<std::size_t>(i)]->runs.load() == (i == 2 || i == 5 ? 0 : 1));
  const wq::queue_stats st = a.q.stats();
  CHECK(st.cancelled == 2);
  CHECK(st.started == st.finished);
  CHECK(st.in_flight == 0);
}

TEST_CASE("pause: items a worker took ahead do not start until resume (rule 45)",
          "[pause][rule45]") {
  ahead_setup a(10);
  REQUIRE(a.taken_ahead() == 10);
  a.q.pause();
  a.gx.open.count_down();  // worker 1 finishes x, and must not go on to the ys
  // Safety (relaxed): polled without synchronising with the worker (poll_until).
  REQUIRE(wq_test::poll_until([&] { return a.x.runs.load(std::memory_order_relaxed) == 1; }));
  REQUIRE(wq_test::poll_until([&] { return a.q.stats().running == 1; }));  // b2 only
  a.g2.open.count_down();
  REQUIRE(wq_test::poll_until([&] { return a.q.stats().running == 0; }));
  CHECK(a.ys_done.remaining() == 10);
  CHECK(a.q.stats().in_flight == 10);
  a.q.resume();
  REQUIRE(a.ys_done.wait_for());
  for (const auto& y : a.ys) CHECK(y->runs.load() == 1);
}

TEST_CASE("flush_work: an item a worker took ahead is waited for until it has run (rule 23)",
          "[flush][rule23]") {
  ahead_setup a(10);
  REQUIRE(a.taken_ahead() == 10);
  std::thread opener = wq_test::open_later(a.gx, 50ms);
  CHECK(wq::flush_work(a.ys[3]->w));
  CHECK(a.ys[3]->runs.load() == 1);
  opener.join();
  a.g2.open.count_down();
  REQUIRE(a.ys_done.wait_for());
}

/// An item that may block on a gate, and may end its own life in its function (rule 4), after
/// which the test may build another in its storage.
struct reusable_item {
  wq::work w{wq::fn_ops<&reusable_item::fn>};
  gate* block = nullptr;   // passes it first, if set
  latch* ended = nullptr;  // if set: destroys itself, then counts this down
  std::atomic<int> runs{0};
  static void fn(wq::work* p) noexcept {
    reusable_item* self = wq::container_of<&reusable_item::w>(p);
    if (self->block != nullptr) self->block->pass();
    self->runs.fetch_add(1);
    if (latch* e = self->ended) {
      self->~reusable_item();
      e->count_down();
    }
  }
};

TEST_CASE(
    "flush_work: an item made where an item run ahead was is waited for until its own run "
    "(rules 4 23)",
    "[flush][rule4][rule23]") {
  // Worker 1 runs y0 and y1 ahead: y0 ends its life in its function, y1 blocks; the test builds
  // z in y0's storage and queues it. flush_work(z) must wait for z's run, not take y0's (at the
  // same address, counted finished when worker 1 next takes the mutex) for it.
  wq::workqueue q{"ahead-reuse", {.threads = 2}};
  gate g1, g2, gx, gy1, gz;
  c_work b1, b2, x, y1;
  b1.body = [&](c_work&) { g1.pass(); };
  b2.body = [&](c_work&) { g2.pass(); };
  x.body = [&](c_work&) { gx.pass(); };
  y1.body = [&](c_work&) { gy1.pass(); };
  alignas(reusable_item) unsigned char storage[sizeof(reusable_item)];
  latch y0_ended{1};
  auto* y0 = new (storage) reusable_item;
  y0->ended = &y0_ended;
  REQUIRE(wq::queue_work(q, b1.w));
  REQUIRE(g1.started.wait_for());
  REQUIRE(wq::queue_work(q, b2.w));
  REQUIRE(g2.started.wait_for());
  REQUIRE(wq::queue_work(q, x.w));
  REQUIRE(wq::queue_work(q, y0->w));
  REQUIRE(wq::queue_work(q, y1.w));
  g1.open.count_down();  // worker 1 takes x, and y0 and y1 ahead
  REQUIRE(gx.started.wait_for());
  REQUIRE(taken_ahead_on(q) == 2);
  gx.open.count_down();
  REQUIRE(y0_ended.wait_for());
  REQUIRE(gy1.started.wait_for());
  auto* z = new (storage) reusable_item;  // Safety: y0 ended its life; the storage is free
  z->block = &gz;
  REQUIRE(wq::queue_work(q, z->w));
  // Worker 1 goes on once y1 passes (it then counts y0 finished), and runs z, which blocks
  // until gz opens: flush_work(z) may return only after that.
  std::thread opener([&] {
    std::this_thread::sleep_for(20ms);
    gy1.open.count_down();
    std::this_thread::sleep_for(80ms);
    gz.open.count_down();
  });
  CHECK(wq::flush_work(z->w));
  CHECK(z->runs.load() == 1);
  opener.join();
  g2.open.count_down();
  REQUIRE_FALSE(q.flush());
  z->~reusable_item();
}

/// Counts its runs, and the runs that began while another of its runs was inside (rule 9).
struct overlap_item {
  wq::work w{wq::fn_ops<&overlap_item::fn>};
  std::atomic<int> runs{0};
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  static void fn(wq::work* p) noexcept {
    overlap_item* self = wq::container_of<&overlap_item::w>(p);
    if (self->inside.fetch_add(1) != 0) self->overlaps.fetch_add(1);
    self->runs.fetch_add(1);
    self->inside.fetch_sub(1);
  }
};

TEST_CASE(
    "cancel: stress: cancels from two threads race workers running items they took ahead and "
    "every queueing is run or cancelled once (rules 1 9 28)",
    "[cancel][stress][rule1][rule9][rule28]") {
  // Two busy workers take the items behind the one each starts ahead; two threads cancel
  // random items meanwhile, one of them with cancel_work_sync. Each item counts its runs and
  // checks that no two of its runs overlap (rule 9).
  using item = overlap_item;
  constexpr std::size_t n = 512;
  std::vector<std::unique_ptr<item>> items;
  for (std::size_t i = 0; i < n; ++i) items.push_back(std::make_unique<item>());
  std::atomic<long> queued{0};
  std::atomic<long> cancelled{0};
  std::atomic<bool> stop{false};
  {
    wq::workqueue q{"ahead-stress", {.threads = 2}};
    auto canceller = [&](bool sync, std::uint32_t seed) {
      std::uint32_t x = seed;
      while (!stop.load(std::memory_order_relaxed)) {
        x = x * 1664525u + 1013904223u;
        item& it = *items[(x >> 8) % n];
        if (sync ? wq::cancel_work_sync(it.w) : wq::cancel_work(it.w)) cancelled.fetch_add(1);
      }
    };
    std::thread c1(canceller, false, 1u);
    std::thread c2(canceller, true, 2u);
    const auto until = std::chrono::steady_clock::now() + 1s;
    while (std::chrono::steady_clock::now() < until) {
      for (auto& it : items)
        if (wq::queue_work(q, it->w)) queued.fetch_add(1);
    }
    stop.store(true);
    c1.join();
    c2.join();
    REQUIRE_FALSE(q.drain());
  }
  long runs = 0;
  int overlaps = 0;
  for (auto& it : items) {
    runs += it->runs.load();
    overlaps += it->overlaps.load();
  }
  INFO("queued " << queued.load() << ", ran " << runs << ", cancelled " << cancelled.load());
  CHECK(queued.load() > static_cast<long>(n));
  CHECK(cancelled.load() > 0);
  CHECK(runs + cancelled.load() == queued.load());
  CHECK(overlaps == 0);
}

// ---- §5.1: misuse from the item's own run -------------------------------------------------

TEST_CASE(
    "cancel: cancel_work_sync / disable_work_sync from the item's own run warn and "
    "return (§5.1)",
    "[cancel][misuse][rule29]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"misuse"};
  c_work item;
  std::atomic<int> step{0};
  std::atomic<bool> first_result{true};
  item.body = [&](c_work& self) {
    first_result.store(wq::cancel_work_sync(self.w));  // not pending: false
    (void)wq::disable_work_sync(self.w);
    (void)wq::enable_work(self.w);
    step.store(1);
  };
  latch done{1};
  item.done = &done;
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(done.wait_for(must_happen));  // a self-wait would hang here
  CHECK(step.load() == 1);
  CHECK_FALSE(first_result.load());
  CHECK(warnings.contains(wq::errc::cancel_sync_self));
  CHECK(item.w.disable_count() == 0);

  SECTION("delayed item re-armed, then cancel_delayed_work_sync from its run") {
    c_delayed d;
    std::atomic<bool> result{false};
    d.body = [&](c_delayed& self) {
      if (self.runs.load() == 0) {
        (void)q.queue_delayed(self.d, 10s);
        result.store(wq::cancel_delayed_work_sync(self.d));  // cancels the re-armed timer
      }
    };
    latch ddone{1};
    d.done = &ddone;
    REQUIRE(wq::queue_delayed_work(q, d.d, 0ms));
    REQUIRE(ddone.wait_for(must_happen));
    CHECK(result.load());
    CHECK_FALSE(d.d.is_pending());
  }
}

// ---- stress (bounded in time) -------------------------------------------------------------

constexpr auto stress_time = 700ms;
// Every stress loop makes at least this many rounds, however long they take: a thread that a
// loaded machine (a CI running other tests) keeps off the CPU past stress_time must still
// exercise the race, or the loop proves nothing and its checks fail for want of rounds.
constexpr int stress_min_rounds = 200;

bool stress_over(std::chrono::steady_clock::time_point start, int i, int max) {
  if (i >= max) return true;
  return i >= stress_min_rounds && std::chrono::steady_clock::now() - start > stress_time;
}

TEST_CASE("cancel: stress: cancel vs timer fire accounts for every arming (rules 28, 31)",
          "[cancel][stress][rule1][rule31]") {
  wq::workqueue q{"stress-cancel"};
  c_delayed item;
  std::atomic<bool> stop{false};
  std::atomic<int> arms{0};
  std::atomic<int> cancels{0};
  std::atomic<int> rounds{0};
  std::atomic<int> refused{0};  // neither queued nor already pending: must stay 0
  const auto start = std::chrono::steady_clock::now();
  std::thread armer([&] {
    int i = 0;
    // Cancelling an idle item takes its PENDING bit for a moment (as the kernel's does), and
    // an arming meanwhile finds it pending (rule 1): with the canceller preempted in that moment on
    // a loaded machine, every round of a time slice can. Rounds go on until one has armed.
    for (; !stress_over(start, i, 20000) ||
           (arms.load() == 0 && std::chrono::steady_clock::now() - start < must_happen);
         ++i) {
      // Its status: false is only ever "already pending" here.
      const wq::queue_status st = q.queue_delayed(item.d, std::chrono::microseconds(i % 50));
      if (st == wq::queue_status::queued)
        arms.fetch_add(1);
      else if (st != wq::queue_status::already_pending)
        refused.fetch_add(1);
    }
    rounds.store(i);
    stop.store(true);
  });
  std::thread canceller([&] {
    while (!stop.load()) {
      if (wq::cancel_delayed_work(item.d)) cancels.fetch_add(1);
    }
  });
  armer.join();
  canceller.join();
  if (wq::cancel_delayed_work_sync(item.d)) cancels.fetch_add(1);
  CHECK_FALSE(item.d.is_pending());
  INFO("rounds " << rounds.load() << ", arms " << arms.load() << ", refused " << refused.load()
                 << ", cancels " << cancels.load() << ", runs " << item.runs.load());
  CHECK(refused.load() == 0);
  CHECK(arms.load() > 0);
  CHECK(item.runs.load() + cancels.load() == arms.load());
}

TEST_CASE(
    "cancel: stress: an item may be cancelled and destroyed while the thread arming it "
    "still starts its timer wait (rules 31, §5.10)",
    "[cancel][stress][delayed_work][lifetime]") {
  // Arming starts the Asio wait after releasing the queue's mutex, so another thread can find
  // the item armed, cancel it and destroy it while that wait is still being started. The
  // destructor must let the arming thread finish with the timer first. Without that it may
  // cancel the timer before the wait exists and then wait the full hour for that wait (the
  // test times out), or free the timer under the arming thread (AddressSanitizer,
  // ThreadSanitizer).
  wq::workqueue q{"stress-arm-destroy"};
  std::atomic<c_delayed*> handed{nullptr};
  std::atomic<bool> stop{false};
  std::atomic<int> destroyed{0};
  std::thread destroyer([&] {
    while (!stop.load(std::memory_order_acquire)) {
      c_delayed* item = handed.load(std::memory_order_acquire);
      if (item == nullptr || !item->d.is_pending()) continue;  // not armed yet
      CHECK(wq::cancel_delayed_work(item->d));                 // an hour early: always cancelled
      delete item;
      destroyed.fetch_add(1);
      handed.store(nullptr, std::memory_order_release);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  int rounds = 0;
  for (; !stress_over(start, rounds, 20000); ++rounds) {
    auto* item = new c_delayed;
    handed.store(item, std::memory_order_release);
    REQUIRE(wq::queue_delayed_work(q, item->d, 1h));  // `item` is the destroyer's from here
    while (handed.load(std::memory_order_acquire) != nullptr) std::this_thread::yield();
  }
  stop.store(true, std::memory_order_release);
  destroyer.join();
  CHECK(rounds > 0);
  CHECK(destroyed.load() == rounds);
  CHECK(q.drain() == std::error_code{});
}

TEST_CASE("cancel: stress: mod vs timer fire accounts for every new instance (rule 20)",
          "[cancel][stress][mod][rule20]") {
  wq::workqueue q{"stress-mod"};
  wq::workqueue q2{"stress-mod-2"};
  c_delayed item;
  std::atomic<int> created{0};  // mod calls that found the item idle
  std::atomic<int> cancels{0};
  std::atomic<bool> stop{false};
  const auto start = std::chrono::steady_clock::now();

  auto modder = [&](wq::workqueue& target, int salt) {
    for (int i = 0; !stress_over(start, i, 10000); ++i) {
      if (!wq::mod_delayed_work(target, item.d, std::chrono::microseconds((i + salt) % 40)))
        created.fetch_add(1);
    }
  };
  std::thread m1(modder, std::ref(q), 0);
  std::thread m2(modder, std::ref(q2), 7);
  std::thread canceller([&] {
    while (!stop.load()) {
      if (wq::cancel_delayed_work(item.d)) cancels.fetch_add(1);
      std::this_thread::yield();
    }
  });
  m1.join();
  m2.join();
  stop.store(true);
  canceller.join();
  if (wq::cancel_delayed_work_sync(item.d)) cancels.fetch_add(1);
  INFO("created " << created.load() << ", cancels " << cancels.load() << ", runs "
                  << item.runs.load());
  CHECK(item.runs.load() + cancels.load() == created.load());
  CHECK_FALSE(item.d.is_pending());
}

TEST_CASE(
    "cancel: stress: mod_delayed_work moves a deadline earlier while the arming thread may "
    "still be starting its wait (rule 20)",
    "[cancel][stress][mod][rule20]") {
  // Arming starts the timer wait after releasing the queue's mutex; a mod that cuts the wait
  // short must let the arming thread finish with the timer first (ThreadSanitizer sees the
  // race on the timer otherwise), and the item must then run at the new deadline, not in an
  // hour (the wait below times out otherwise).
  wq::workqueue q{"stress-mod-arming"};
  std::atomic<c_delayed*> handed{nullptr};
  std::atomic<bool> stop{false};
  std::atomic<int> moved{0};
  std::thread modder([&] {
    while (!stop.load(std::memory_order_acquire)) {
      c_delayed* item = handed.load(std::memory_order_acquire);
      if (item == nullptr || !item->d.is_pending()) continue;
      if (wq::mod_delayed_work(q, item->d, 1us)) moved.fetch_add(1);
      handed.store(nullptr, std::memory_order_release);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  int rounds = 0;
  bool all_ran = true;
  for (; all_ran && !stress_over(start, rounds, 5000); ++rounds) {
    c_delayed item;
    latch ran{1};
    item.done = &ran;
    handed.store(&item, std::memory_order_release);
    REQUIRE(wq::queue_delayed_work(q, item.d, 1h));
    while (handed.load(std::memory_order_acquire) != nullptr) std::this_thread::yield();
    all_ran = ran.wait_for(must_happen);
    (void)wq::cancel_delayed_work_sync(item.d);  // its run has finished before it goes
  }
  stop.store(true, std::memory_order_release);
  modder.join();
  INFO("rounds " << rounds << ", moved " << moved.load());
  CHECK(all_ran);
  CHECK(moved.load() == rounds);  // armed for an hour: always pending when moved
}

TEST_CASE(
    "cancel: stress: cancel_work_sync vs a self-requeueing item from two threads "
    "(rule 29)",
    "[cancel][stress][rule29]") {
  wq::workqueue q{"stress-sync"};
  wq_test::concurrency_probe probe;
  std::atomic<bool> keep{true};
  c_work item;
  item.body = [&](c_work& self) {
    probe.enter();
    if (keep.load()) (void)q.queue(self.w);
    probe.leave();
  };
  // The item is requeueing itself before the race starts, so it has run at least once
  // however the scheduler treats the racing threads (on a loaded machine the cancels below can
  // win every round).
  REQUIRE(q.queue(item.w) == wq::queue_status::queued);
  REQUIRE(wq_test::poll_until([&] { return probe.entered.load() > 0; }));
  const auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (int i = 0; !stress_over(start, i, 5000); ++i) {
      (void)q.queue(item.w);
      (void)wq::cancel_work_sync(item.w);
    }
  };
  std::thread t1(worker);
  std::thread t2(worker);
  t1.join();
  t2.join();
  (void)wq::cancel_work_sync(item.w);
  const int at_return = item.runs.load();
  CHECK_FALSE(item.w.is_pending());
  CHECK(item.w.disable_count() == 0);
  CHECK(settle(item.runs) == at_return);
  CHECK(probe.max_running.load() == 1);  // never ran concurrently with itself
  keep.store(false);
}

}  // namespace

TEST_CASE(
    "cancel: cancel_work on a delayed item's work cancels an armed timer at once, no "
    "busy-retry (rule 30, §5.9)",
    "[cancel][delayed][rule30]") {
  // The kernel forbids cancel_work_sync(&dwork->work): it cannot steal an armed timer and
  // busy-retries until it fires. wq's grab takes armed items too, so the plain forms work.
  wq::workqueue q{"cancel_dwork_base"};
  c_delayed item;
  REQUIRE(wq::queue_delayed_work(q, item.d, std::chrono::hours(1)));
  wq::work& base = item.d;
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(wq::cancel_work_sync(base));
  REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  REQUIRE_FALSE(item.d.is_pending());
  REQUIRE(item.runs.load() == 0);
}

// A _sync cancel that meets a run as it ends: the worker's run record still names the item,
// but its queue field already shows what the thread ran before (nothing). The cancel must still
// see the finished run's effects (happens-before), not only its end in time: the item's plain,
// non-atomic counter is read right after it returns, so ThreadSanitizer fails this test if that
// edge is missing. The distance between queueing and cancelling sweeps across the run's length,
// so some cancels land in the few instructions of the worker's record update. (Measured with the
// record's fields stored relaxed: 19 of 20 TSan runs of this test failed; with release, 0 of
// 20.) Bounded to one second.
struct plain_counter_item {
  wq::work w{wq::fn_ops<&plain_counter_item::fn>};
  int runs = 0;  // plain on purpose: only happens-before makes reading it safe
  static void fn(wq::work* w) noexcept { ++wq::container_of<&plain_counter_item::w>(w)->runs; }
};

TEST_CASE("cancel: stress: cancel_work_sync meeting a run as it ends sees its effects (rule 29)",
          "[cancel][rule29][stress]") {
  wq::workqueue q{"rule29-end", {.threads = 1}};
  plain_counter_item item;
  int cancelled = 0;
  int queued = 0;
  std::atomic<unsigned> delay_sink{0};  // a spin the compiler cannot remove
  const auto until = std::chrono::steady_clock::now() + 1s;
  for (unsigned i = 0; i < 200000 && std::chrono::steady_clock::now() < until; ++i) {
    if (!wq::queue_work(q, item.w)) continue;
    ++queued;
    for (unsigned spin = 0; spin < i % 512; ++spin)
      delay_sink.fetch_add(1, std::memory_order_relaxed);
    if (wq::cancel_work_sync(item.w)) ++cancelled;
    // Every instance ran or was cancelled, and a run is seen once the cancel returned.
    if (item.runs + cancelled != queued)
      FAIL("instance " << queued << " neither ran nor was cancelled");
  }
  CHECK(queued > 0);
}
