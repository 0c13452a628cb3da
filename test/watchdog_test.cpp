// SPDX-License-Identifier: BSL-1.0
// Tests for wq/watchdog.hpp: a work function blocked longer than the threshold is reported once
// as errc::item_stalled, and again only after it ended and a new run stalled; a queue whose
// executor is blocked while it has items waiting is reported once as errc::queue_stalled; paused
// queues and short items are never reported.
//
// Stalls are notices, so capturing them (wq_test::warning_catcher / warning_catcher) replaces the
// default handler only to observe them. "Not reported again" is checked over a bounded window
// (wq_test::must_not_happen, several watchdog periods) bracketed by check_now() calls at least
// a threshold apart, so a watchdog that repeated a report would do so within the test.
//
// Worker threads never call Catch2 macros.
#include <wq/watchdog.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <wq/diagnostics.hpp>
#include <wq/system_queues.hpp>
#include <wq/workqueue.hpp>

#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using wq::errc;
using wq::queue_flags;
using wq::queue_status;
using wq_test::latch;
using wq_test::must_happen;
using wq_test::must_not_happen;

constexpr std::chrono::milliseconds threshold{50};
static_assert(must_not_happen >= 2 * threshold, "the quiet window must span several periods");

/// An item whose function says it started, then blocks until released.
struct blocking_item {
  wq::work w;
  latch* started = nullptr;
  latch* release = nullptr;
  static void run(blocking_item* self, wq::id<&blocking_item::w>) noexcept {
    latch* release = self->release;
    self->started->count_down();
    (void)release->wait_for(must_happen);
  }
};

/// Waits out a window in which `signal` must not fire again (it has fired `already` times).
/// Returns whether it stayed quiet.
bool stays_quiet(const wq_test::warning_catcher& signal, int already) {
  return !wq_test::poll_until([&] { return signal.count() > already; }, must_not_happen);
}

TEST_CASE(
    "watchdog: a blocked work function is reported once as errc::item_stalled, naming the "
    "queue and the item",
    "[watchdog]") {
  wq_test::warning_catcher warnings;
  wq::watchdog dog{threshold};
  latch started{1};
  latch release{1};
  blocking_item item;
  item.started = &started;
  item.release = &release;
  wq::workqueue q{"stalling", {.threads = 1}};
  REQUIRE(q.enqueue<&blocking_item::w>(&item));
  REQUIRE(started.wait_for(must_happen));

  const bool reported =
      wq_test::poll_until([&] { return warnings.count(errc::item_stalled) >= 1; });
  // Several more looks while it stays blocked: none reports it again.
  const std::size_t at_once = dog.check_now();
  const bool quiet =
      !wq_test::poll_until([&] { return warnings.count(errc::item_stalled) > 1; }, must_not_happen);
  const std::size_t later = dog.check_now();
  const auto reports = dog.reports();
  release.count_down();
  REQUIRE(q.drain() == std::error_code{});

  REQUIRE(reported);
  CHECK(at_once == 0);
  CHECK(quiet);
  CHECK(later == 0);
  CHECK(reports == 1);
  CHECK(warnings.count(errc::item_stalled) == 1);
  CHECK(warnings.count(errc::queue_stalled) == 0);
  CHECK(warnings.contains("'stalling'"));
  CHECK(warnings.contains("blocking_item::w"));
  CHECK(dog.check_now() == 0);  // finished: nothing to report
  CHECK(dog.reports() == 1);
}

TEST_CASE("watchdog: a stall is reported again only after it ended and a new run stalled",
          "[watchdog]") {
  wq::watchdog dog{threshold};
  latch started_1{1};
  latch release_1{1};
  latch started_2{1};
  latch release_2{1};
  blocking_item item;
  // One worker: both runs are on the same worker slot, told apart only by being new runs.
  wq::workqueue q{"restalling", {.threads = 1}};
  for (int round = 1; round <= 2; ++round) {
    wq_test::warning_catcher stalled{errc::item_stalled};
    latch& started = round == 1 ? started_1 : started_2;
    latch& release = round == 1 ? release_1 : release_2;
    item.started = &started;
    item.release = &release;
    REQUIRE(q.enqueue<&blocking_item::w>(&item));
    REQUIRE(started.wait_for(must_happen));
    const bool reported = stalled.fired.wait_for(must_happen);
    (void)dog.check_now();
    const bool quiet = stays_quiet(stalled, 1);
    (void)dog.check_now();
    const int count = stalled.count();
    const auto reports = dog.reports();
    release.count_down();
    REQUIRE(q.flush() == std::error_code{});
    INFO("round " << round);
    REQUIRE(reported);
    CHECK(quiet);
    CHECK(count == 1);
    CHECK(reports == static_cast<std::uint64_t>(round));
  }
}

TEST_CASE(
    "watchdog: a queue whose executor is blocked while items wait is reported once as "
    "errc::queue_stalled",
    "[watchdog]") {
  wq_test::warning_catcher stalled{errc::queue_stalled};
  wq::watchdog dog{threshold};
  wq_test::io_runner runner{1};  // one thread, about to be blocked by a plain handler
  latch blocked{1};
  latch unblock{1};
  std::atomic<int> runs{0};
  std::vector<std::unique_ptr<wq_test::fn_item>> items;
  for (int i = 0; i < 3; ++i)
    items.push_back(std::make_unique<wq_test::fn_item>([&](wq_test::fn_item&) { runs++; }));
  wq::workqueue q{runner.context(), "starved"};
  boost::asio::post(runner.context(), [&] {
    blocked.count_down();
    (void)unblock.wait_for(must_happen);
  });
  REQUIRE(blocked.wait_for(must_happen));
  for (auto& it : items) REQUIRE(wq_test::enqueue(q, *it) == queue_status::queued);

  const bool reported = stalled.fired.wait_for(must_happen);
  (void)dog.check_now();
  const bool quiet = stays_quiet(stalled, 1);
  (void)dog.check_now();
  const int count = stalled.count();
  const auto reports = dog.reports();  // no item runs, so no item_stalled either
  unblock.count_down();
  REQUIRE(q.drain() == std::error_code{});

  REQUIRE(reported);
  CHECK(quiet);
  CHECK(count == 1);
  CHECK(reports == 1);
  CHECK(runs.load() == 3);
  CHECK(dog.check_now() == 0);  // drained: nothing waits
}

TEST_CASE("watchdog: a paused queue with waiting items is not reported (rule 45)",
          "[watchdog][rule45]") {
  wq_test::warning_catcher warnings;
  wq::watchdog dog{threshold};
  std::atomic<int> runs{0};
  std::vector<std::unique_ptr<wq_test::fn_item>> items;
  for (int i = 0; i < 3; ++i)
    items.push_back(std::make_unique<wq_test::fn_item>([&](wq_test::fn_item&) { runs++; }));
  wq::workqueue q{"frozen", {.threads = 2}};
  q.pause();
  for (auto& it : items) REQUIRE(wq_test::enqueue(q, *it) == queue_status::queued);

  // Two looks at least must_not_happen (> threshold) apart, and the periodic ones in between.
  const std::size_t first = dog.check_now();
  const bool quiet = !wq_test::poll_until([&] { return warnings.size() > 0; }, must_not_happen);
  const std::size_t second = dog.check_now();
  q.resume();
  REQUIRE(q.drain() == std::error_code{});

  CHECK(first == 0);
  CHECK(quiet);
  CHECK(second == 0);
  CHECK(dog.reports() == 0);
  CHECK(warnings.size() == 0);
  CHECK(runs.load() == 3);
}

TEST_CASE("watchdog: short items are never reported", "[watchdog]") {
  wq_test::warning_catcher warnings;
  wq::watchdog dog{threshold};
  constexpr int n = 400;
  latch done{n};
  std::vector<std::unique_ptr<wq_test::fn_item>> items;
  for (int i = 0; i < n; ++i)
    items.push_back(
        std::make_unique<wq_test::fn_item>([&](wq_test::fn_item&) { done.count_down(); }));
  wq::workqueue q{"brisk", {.threads = 2}};
  for (int round = 0; round < 4; ++round) {
    // Queued in four waves with a look at the queue during each.
    for (std::size_t i = static_cast<std::size_t>(round); i < items.size(); i += 4)
      REQUIRE(wq_test::enqueue(q, *items[i]) == queue_status::queued);
    (void)dog.check_now();
  }
  REQUIRE(done.wait_for(must_happen));
  REQUIRE(q.drain() == std::error_code{});
  CHECK(dog.check_now() == 0);
  CHECK(dog.reports() == 0);
  CHECK(warnings.size() == 0);
}

TEST_CASE("watchdog: a threshold below 1 ms is raised to 1 ms, and destroying it stops the looks",
          "[watchdog]") {
  wq_test::warning_catcher warnings;
  {
    wq::watchdog dog{0ms};
    CHECK(dog.check_now() == 0);
    CHECK(dog.reports() == 0);
  }
  // Nothing watches any more: a blocked item is not reported.
  latch started{1};
  latch release{1};
  blocking_item item;
  item.started = &started;
  item.release = &release;
  wq::workqueue q{"unwatched", {.threads = 1}};
  REQUIRE(q.enqueue<&blocking_item::w>(&item));
  REQUIRE(started.wait_for(must_happen));
  const bool quiet = !wq_test::poll_until([&] { return warnings.size() > 0; }, must_not_happen);
  release.count_down();
  REQUIRE(q.drain() == std::error_code{});
  CHECK(quiet);
}

}  // namespace

TEST_CASE(
    "watchdog: a saturated system queue (items waiting behind max_active for the items "
    "they wait for) is reported as errc::queue_stalled (rule 48, §5.14)",
    "[watchdog][rule48][s5_14]") {
  // system_wq with max_active 2: two items wait for a third, which waits behind them. The
  // watchdog says so instead of leaving a silent deadlock; the test then breaks it.
  wq_test::warning_catcher warnings;
  wq::workqueue& q = wq::system_wq();
  const int old_max = q.max_active();
  REQUIRE(q.set_max_active(2) == 2);
  wq::watchdog dog{threshold};
  latch third_ran{1};
  latch both_waiting{2};
  std::vector<std::unique_ptr<wq_test::fn_item>> waiters;
  for (int i = 0; i < 2; ++i)
    waiters.push_back(std::make_unique<wq_test::fn_item>([&](wq_test::fn_item&) {
      both_waiting.count_down();
      (void)third_ran.wait_for(must_happen);
    }));
  wq_test::fn_item third{[&](wq_test::fn_item&) { third_ran.count_down(); }};
  for (auto& w : waiters) REQUIRE(wq_test::enqueue(q, *w) == queue_status::queued);
  REQUIRE(both_waiting.wait_for(must_happen));
  REQUIRE(wq_test::enqueue(q, third) == queue_status::queued);
  const bool reported = wq_test::poll_until([&] { return warnings.contains("saturated"); });
  const bool names_queue = warnings.contains("queue 'events' saturated");
  (void)q.set_max_active(old_max);  // lets the third item run: the deadlock ends
  REQUIRE(third_ran.wait_for(must_happen));
  REQUIRE_FALSE(q.flush());
  CHECK(reported);
  CHECK(names_queue);
  CHECK(warnings.contains(errc::queue_stalled));
}
