// SPDX-License-Identifier: BSL-1.0
// The workqueue contract, run against every kind of queue (test/support/queue_kinds.hpp): a
// queue owning its pool, an ordered queue, a queue on a user's io_context run by two threads and
// an ordered queue on a user's strand. Whatever executes the items, these must hold:
//   - every queued item runs exactly once;
//   - queueing a pending item returns already_pending and the pending instance runs once
//     (rule 1), also when the second attempt targets another queue;
//   - an item may requeue itself from its work function (rule 3);
//   - an item never runs concurrently with itself (rule 9);
//   - writes made before a successful queueing call are visible in the work function (rule 6),
//     and a call that finds the item pending is observed by the pending run (rule 7);
//   - a delayed item runs no earlier than its delay (rule 53);
//   - destroying the queue runs everything queued on it (rule 50).
#include <wq/workqueue.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <wq/delayed_work.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/shared_work.hpp>

#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using wq_test::fn_item;
using wq_test::latch;
using wq_test::must_happen;

#define WQ_QUEUE_KINDS                                                          \
  wq_test::shared_pool_kind, wq_test::private_pool_kind, wq_test::ordered_kind, \
      wq_test::io_context_kind, wq_test::user_strand_kind

// An item owned by std::unique_ptr that counts its runs and its lifetime.
struct counted {
  wq::work w;
  std::atomic<int>* runs;
  latch* done;
  wq_test::lifetime_counter* life;
  counted(std::atomic<int>* r, latch* d, wq_test::lifetime_counter* l) : runs(r), done(d), life(l) {
    life->constructed.fetch_add(1);
  }
  ~counted() { life->destroyed.fetch_add(1); }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  static void run(std::unique_ptr<counted> self, wq::id<&counted::w>) noexcept {
    self->runs->fetch_add(1);
    latch* d = self->done;
    self.reset();  // destroyed before the test learns it ran
    d->count_down();
  }
};

// An item owned by std::shared_ptr (the queue keeps one reference while it is pending).
struct shared_item {
  wq::shared_work w;
  std::atomic<int> runs{0};
  latch first_running{1};
  latch release{1};
  latch second_done{1};
  static void run(std::shared_ptr<shared_item> self, wq::id<&shared_item::w>) noexcept {
    const int n = self->runs.fetch_add(1) + 1;
    if (n == 1) {
      self->first_running.count_down();
      (void)self->release.wait_for(must_happen);
    } else {
      self->second_done.count_down();
    }
  }
};

// Carries a payload written by the producer before queueing (plain, non-atomic fields).
struct payload_item {
  wq::work w;
  int a = 0;
  std::vector<int> b;
  std::atomic<int>* bad;
  latch* done;
  payload_item(std::atomic<int>* bd, latch* d) : bad(bd), done(d) {}
  static void run(std::unique_ptr<payload_item> self, wq::id<&payload_item::w>) noexcept {
    if (self->a != 42 || self->b.size() != 3 || self->b[2] != 7) self->bad->fetch_add(1);
    latch* d = self->done;
    self.reset();
    d->count_down();
  }
};

// A delayed item that records how long after arming it ran.
struct timed_item {
  wq::delayed_work d;
  std::chrono::steady_clock::time_point armed_at;
  std::chrono::nanoseconds delay{};
  std::chrono::nanoseconds waited{};
  latch ran{1};
  static void run(timed_item* self, wq::id<&timed_item::d>) noexcept {
    self->waited = std::chrono::steady_clock::now() - self->armed_at;
    self->ran.count_down();
  }
};

}  // namespace

TEMPLATE_TEST_CASE("workqueue contract: every queued item runs exactly once",
                   "[workqueue][contract]", WQ_QUEUE_KINDS) {
  constexpr int producers = 2;
  constexpr int per_producer = 200;
  wq_test::lifetime_counter life;
  std::atomic<int> runs{0};
  latch done{producers * per_producer};
  std::atomic<int> not_queued{0};
  {
    TestType kind;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&] {
        for (int i = 0; i < per_producer; ++i) {
          auto r = kind.queue().template enqueue<&counted::w>(
              std::make_unique<counted>(&runs, &done, &life));
          if (!r) not_queued.fetch_add(1);
        }
      });
    }
    for (auto& t : threads) t.join();
    REQUIRE(done.wait_for(must_happen));
  }
  CHECK(not_queued.load() == 0);
  CHECK(runs.load() == producers * per_producer);
  CHECK(life.constructed.load() == producers * per_producer);
  CHECK(life.alive() == 0);
}

TEMPLATE_TEST_CASE(
    "workqueue contract: queueing a pending item returns already_pending and it runs once (rule 1)",
    "[workqueue][contract][rule1][rule2]", WQ_QUEUE_KINDS) {
  wq::workqueue other{"other"};
  TestType kind;
  auto item = std::make_shared<shared_item>();
  REQUIRE(kind.queue().template enqueue<&shared_item::w>(item).status == wq::queue_status::queued);
  REQUIRE(item->first_running.wait_for(must_happen));
  // The first instance is running (blocked), so PENDING is clear (rule 2): this queues the item
  // again, and non-reentrancy (rule 9) keeps the new instance from starting until the first
  // returns. So it is pending for certain while we poke it.
  auto again = kind.queue().template enqueue<&shared_item::w>(item);
  REQUIRE(again.status == wq::queue_status::queued);
  CHECK(again.pointer == nullptr);
  // The test's reference, the running instance's and the pending instance's (held by the queue).
  CHECK(item.use_count() == 3);

  auto same_queue = kind.queue().template enqueue<&shared_item::w>(item);
  CHECK(same_queue.status == wq::queue_status::already_pending);
  CHECK_FALSE(same_queue);
  CHECK(same_queue.pointer == item);  // the caller's reference handed back, not leaked
  same_queue.pointer.reset();

  // PENDING belongs to the item, not to a queue.
  auto other_queue = other.enqueue<&shared_item::w>(item);
  CHECK(other_queue.status == wq::queue_status::already_pending);
  CHECK(other_queue.pointer == item);
  other_queue.pointer.reset();
  CHECK(item.use_count() == 3);

  item->release.count_down();
  REQUIRE(item->second_done.wait_for(must_happen));
  kind.queue().destroy();
  other.destroy();
  CHECK(item->runs.load() == 2);
  CHECK(item.use_count() == 1);
}

TEMPLATE_TEST_CASE("workqueue contract: an item may requeue itself from its work function (rule 3)",
                   "[workqueue][contract][rule3]", WQ_QUEUE_KINDS) {
  constexpr int total = 50;
  std::atomic<int> runs{0};
  std::atomic<int> requeue_failures{0};
  latch done{1};
  TestType kind;
  wq::workqueue& q = kind.queue();
  fn_item item{[&](fn_item& self) {
    const int n = runs.fetch_add(1) + 1;
    if (n < total) {
      if (wq_test::enqueue(q, self) != wq::queue_status::queued) requeue_failures.fetch_add(1);
    } else {
      done.count_down();
    }
  }};
  REQUIRE(wq_test::enqueue(q, item) == wq::queue_status::queued);
  REQUIRE(done.wait_for(must_happen));
  q.destroy();
  CHECK(requeue_failures.load() == 0);
  CHECK(runs.load() == total);
}

TEMPLATE_TEST_CASE("workqueue contract: an item never runs concurrently with itself (rule 9)",
                   "[workqueue][contract][rule9]", WQ_QUEUE_KINDS) {
  constexpr int attempts = 3000;
  std::atomic<bool> busy{false};
  std::atomic<int> overlaps{0};
  std::atomic<int> queued{0};
  int plain_runs = 0;  // not atomic: ThreadSanitizer reports two overlapping runs
  TestType kind;
  wq::workqueue& q = kind.queue();
  fn_item item{[&](fn_item&) {
    if (busy.exchange(true)) overlaps.fetch_add(1);
    ++plain_runs;
    wq_test::hold_for(std::chrono::microseconds(20));  // widen the window for a requeue
    busy.store(false);
  }};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&] {
      for (int i = 0; i < attempts; ++i) {
        if (wq_test::enqueue(q, item) == wq::queue_status::queued) queued.fetch_add(1);
      }
    });
  }
  for (auto& t : producers) t.join();
  q.destroy();  // drains: every queued instance has run when it returns
  CHECK(overlaps.load() == 0);
  CHECK(queued.load() >= 1);
  CHECK(plain_runs == queued.load());  // every successful queueing ran exactly once
}

TEMPLATE_TEST_CASE(
    "workqueue contract: writes before a successful queueing call are visible to the item (rule 6)",
    "[workqueue][contract][rule6]", WQ_QUEUE_KINDS) {
  constexpr int producers = 2;
  constexpr int per_producer = 100;
  std::atomic<int> bad{0};
  latch done{producers * per_producer};
  TestType kind;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&] {
      for (int i = 0; i < per_producer; ++i) {
        auto item = std::make_unique<payload_item>(&bad, &done);
        item->a = 42;
        item->b = {1, 2, 7};
        if (!kind.queue().template enqueue<&payload_item::w>(std::move(item))) bad.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(done.wait_for(must_happen));
  CHECK(bad.load() == 0);
}

TEMPLATE_TEST_CASE(
    "workqueue contract: a queueing call that finds the item pending is observed by the pending run (rule 7)",
    "[workqueue][contract][rule7]", WQ_QUEUE_KINDS) {
  constexpr int total = 5000;
  std::atomic<int> produced{0};
  std::atomic<int> last_seen{0};
  TestType kind;
  wq::workqueue& q = kind.queue();
  fn_item item{[&](fn_item&) {
    // Relaxed on purpose: only the queue's own ordering may make the producer's store visible.
    last_seen.store(produced.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }};
  for (int i = 1; i <= total; ++i) {
    produced.store(i, std::memory_order_relaxed);
    const auto st = wq_test::enqueue(q, item);
    REQUIRE((st == wq::queue_status::queued || st == wq::queue_status::already_pending));
  }
  q.destroy();
  // Whatever the last call returned, a run started after it and saw the final value.
  CHECK(last_seen.load() == total);
}

TEMPLATE_TEST_CASE("workqueue contract: a delayed item runs no earlier than its delay (rule 53)",
                   "[workqueue][contract][delayed][rule53]", WQ_QUEUE_KINDS) {
  // Tolerance: never early (exact, measured from before the arming call); late by at most
  // must_happen (timer and scheduling latency on a loaded 2-core machine).
  const std::vector<std::chrono::milliseconds> delays{0ms, 1ms, 20ms, 60ms};
  std::vector<std::unique_ptr<timed_item>> items;
  for (std::size_t i = 0; i < delays.size(); ++i) items.push_back(std::make_unique<timed_item>());
  TestType kind;
  for (std::size_t i = 0; i < delays.size(); ++i) {
    items[i]->delay = delays[i];
    items[i]->armed_at = std::chrono::steady_clock::now();
    REQUIRE(
        kind.queue().template enqueue_delayed<&timed_item::d>(items[i].get(), delays[i]).status ==
        wq::queue_status::queued);
  }
  for (std::size_t i = 0; i < delays.size(); ++i) {
    INFO("delay " << delays[i].count() << " ms");
    REQUIRE(items[i]->ran.wait_for(must_happen));
    CHECK(items[i]->waited >= items[i]->delay);
  }
}

TEMPLATE_TEST_CASE("workqueue contract: destroy runs every queued item (rule 50)",
                   "[workqueue][contract][rule50]", WQ_QUEUE_KINDS) {
  constexpr int n = 100;
  wq_test::lifetime_counter life;
  std::atomic<int> runs{0};
  latch done{n};
  latch gate{1};
  std::atomic<bool> gate_ok{true};
  struct armed_item {
    wq::delayed_work d;
    static void run(armed_item*, wq::id<&armed_item::d>) noexcept {}
  } armed;
  fn_item blocker{[&](fn_item&) {
    if (!gate.wait_for(must_happen)) gate_ok.store(false);
  }};
  std::optional<wq_test::warning_catcher> destroying;
  destroying.emplace(wq::errc::armed_items_cancelled);
  {
    TestType kind;
    wq::workqueue& q = kind.queue();
    REQUIRE(wq_test::enqueue(q, blocker) == wq::queue_status::queued);
    for (int i = 0; i < n; ++i) {
      REQUIRE(q.template enqueue<&counted::w>(std::make_unique<counted>(&runs, &done, &life)));
    }
    // An armed delayed item makes destroy() warn once it has started; the warning opens the
    // blocker, so destroy() certainly begins while the items are still queued.
    REQUIRE(q.template enqueue_delayed<&armed_item::d>(&armed, 1h));
    std::thread opener([&] {
      if (destroying->fired.wait_for(must_happen)) gate.count_down();
    });
    q.destroy();
    opener.join();
    CHECK(destroying->count() == 1);
    // destroy() returned: everything queued has run, nothing waited for the armed item.
    CHECK(runs.load() == n);
    CHECK(life.alive() == 0);
    CHECK(q.cancelled_on_destroy() == 1);
    CHECK_FALSE(armed.d.is_pending());
  }
  destroying.reset();
  CHECK(gate_ok.load());
}
