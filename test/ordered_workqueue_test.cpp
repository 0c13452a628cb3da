// SPDX-License-Identifier: BSL-1.0
// Tests for wq/ordered_workqueue.hpp: one item at a time in queueing order (rule 39) on the
// queue's own thread, on a strand it makes, and on a user's strand shared with other handlers;
// delayed items entering the order when they fire; max_active fixed at 1 (rule 38).
//
// Shared state touched by items is deliberately not atomic where the test claims the items are
// serialised: ThreadSanitizer then reports a violation even when the assertions happen to pass.
#include <wq/ordered_workqueue.hpp>

#include <wq/flush.hpp>
#include <wq/kernel.hpp>
#include <wq/test_clock.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using wq::queue_status;
using wq_test::enqueue;
using wq_test::fn_delayed_item;
using wq_test::fn_item;
using wq_test::latch;
using wq_test::must_happen;

// Queues `total` items on `q` from the calling thread and checks they ran in order, never two
// at once.
void check_fifo(wq::workqueue& q, int total) {
  std::vector<int> order;  // not atomic: serialisation is the claim under test
  std::atomic<bool> busy{false};
  std::atomic<int> overlaps{0};
  latch done{total};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < total; ++i) {
    items.push_back(std::make_unique<fn_item>([&, i](fn_item&) {
      if (busy.exchange(true)) overlaps.fetch_add(1);
      order.push_back(i);
      busy.store(false);
      done.count_down();
    }));
  }
  for (auto& item : items) REQUIRE(enqueue(q, *item) == queue_status::queued);
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(overlaps.load() == 0);
  REQUIRE(order.size() == static_cast<std::size_t>(total));
  bool in_order = true;
  for (int i = 0; i < total; ++i) in_order = in_order && order[static_cast<std::size_t>(i)] == i;
  CHECK(in_order);
}

}  // namespace

TEST_CASE("ordered_workqueue: has max_active 1, the ordered flag and its name (rule 39)",
          "[ordered_workqueue][construct][rule39]") {
  wq_test::warning_catcher warnings;
  wq::ordered_workqueue q{"ordered"};
  CHECK(q.name() == "ordered");
  CHECK(q.ordered());
  CHECK(q.flags() == wq::queue_flags::none);  // ordered is the type, not a flag
  CHECK(q.max_active() == 1);
  auto allocated = wq::alloc_ordered_workqueue("allocated");
  REQUIRE(allocated != nullptr);
  CHECK(allocated->name() == "allocated");
  CHECK(allocated->ordered());
  CHECK(allocated->max_active() == 1);
  CHECK(warnings.messages().empty());
}

TEST_CASE(
    "ordered_workqueue: runs 1000 items queued from one thread in order, one at a time (rule 39)",
    "[ordered_workqueue][rule39]") {
  constexpr int total = 1000;
  SECTION("own thread") {
    wq::ordered_workqueue q{"fifo"};
    check_fifo(q, total);
  }
  SECTION("strand it makes on a user's thread_pool(4)") {
    boost::asio::thread_pool pool{4};
    wq::ordered_workqueue q{pool.get_executor(), "fifo-pool"};
    check_fifo(q, total);
  }
  SECTION("user's strand") {
    boost::asio::thread_pool pool{4};
    wq::ordered_workqueue q{boost::asio::make_strand(pool), "fifo-strand"};
    check_fifo(q, total);
  }
  SECTION("ordered_workqueue on an io_context run by 2 threads") {
    wq_test::io_runner io{2};
    wq::ordered_workqueue q{io.context(), "fifo-io"};
    check_fifo(q, total);
  }
}

TEST_CASE("ordered_workqueue: keeps each producer's order when several threads queue (rule 39)",
          "[ordered_workqueue][rule39]") {
  constexpr int producers = 3;
  constexpr int per_producer = 300;
  boost::asio::thread_pool pool{4};
  wq::ordered_workqueue q{pool.get_executor(), "producers"};
  std::vector<std::vector<int>> seen(producers);  // not atomic: items are serialised
  latch done{producers * per_producer};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int p = 0; p < producers; ++p) {
    for (int i = 0; i < per_producer; ++i) {
      items.push_back(std::make_unique<fn_item>([&, p, i](fn_item&) {
        seen[static_cast<std::size_t>(p)].push_back(i);
        done.count_down();
      }));
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        if (enqueue(q, *items[static_cast<std::size_t>(p * per_producer + i)]) !=
            queue_status::queued)
          failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(failures.load() == 0);
  for (int p = 0; p < producers; ++p) {
    const auto& s = seen[static_cast<std::size_t>(p)];
    REQUIRE(s.size() == static_cast<std::size_t>(per_producer));
    bool in_order = true;
    for (int i = 0; i < per_producer; ++i)
      in_order = in_order && s[static_cast<std::size_t>(i)] == i;
    CHECK(in_order);
  }
}

TEST_CASE("ordered_workqueue: a self-requeued item goes to the back of the order (rules 3, 13, 39)",
          "[ordered_workqueue][rule39][rule13][rule3]") {
  std::vector<std::string> order;  // not atomic: items are serialised
  latch gate_running{1};
  latch release{1};
  latch done{1};
  wq::ordered_workqueue q{"requeue"};
  fn_item gate{[&](fn_item&) {
    order.push_back("gate");
    gate_running.count_down();
    (void)release.wait_for(must_happen);
  }};
  int x_runs = 0;
  std::atomic<int> failures{0};
  fn_item x{[&](fn_item& self) {
    order.push_back("x");
    if (++x_runs == 1) {
      if (enqueue(q, self) != queue_status::queued) failures.fetch_add(1);
    } else {
      done.count_down();
    }
  }};
  fn_item y{[&](fn_item&) { order.push_back("y"); }};
  REQUIRE(enqueue(q, gate) == queue_status::queued);
  REQUIRE(gate_running.wait_for(must_happen));
  REQUIRE(enqueue(q, x) == queue_status::queued);
  REQUIRE(enqueue(q, y) == queue_status::queued);
  release.count_down();
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(failures.load() == 0);
  CHECK(order == std::vector<std::string>{"gate", "x", "y", "x"});
}

TEST_CASE("ordered_workqueue: a delayed item enters the order when its timer fires (rules 39, 53)",
          "[ordered_workqueue][delayed][rule39][rule53][test_clock]") {
  // Virtual time (wq/test_clock.hpp): the item fires inside advance(), after the "before"
  // items were queued and before the "after" ones, whatever the machine's speed.
  constexpr auto delay = 200ms;
  wq::test_clock clock;
  std::vector<std::string> order;  // not atomic: items are serialised
  latch gate_running{1};
  latch release{1};
  latch done{1};
  std::chrono::steady_clock::time_point armed_at;
  std::chrono::steady_clock::duration waited{};
  fn_item gate{[&](fn_item&) {
    order.push_back("gate");
    gate_running.count_down();
    (void)release.wait_for(must_happen);
  }};
  fn_delayed_item delayed{[&](fn_delayed_item&) {
    waited = clock.now() - armed_at;
    order.push_back("delayed");
  }};
  std::vector<std::unique_ptr<fn_item>> before, after;
  for (int i = 0; i < 3; ++i) {
    before.push_back(std::make_unique<fn_item>(
        [&, i](fn_item&) { order.push_back("before" + std::to_string(i)); }));
    after.push_back(std::make_unique<fn_item>([&, i](fn_item&) {
      order.push_back("after" + std::to_string(i));
      if (i == 2) done.count_down();
    }));
  }
  wq::ordered_workqueue q{"ordered-delayed"};

  REQUIRE(enqueue(q, gate) == queue_status::queued);
  REQUIRE(gate_running.wait_for(must_happen));  // nothing else runs until release
  armed_at = clock.now();
  REQUIRE(wq_test::enqueue_delayed(q, delayed, delay) == queue_status::queued);
  for (auto& item : before) REQUIRE(enqueue(q, *item) == queue_status::queued);
  CHECK(clock.advance(delay - 1ns) == 0);
  CHECK(clock.advance(1ns) == 1);  // the delayed item is on q's list now
  for (auto& item : after) REQUIRE(enqueue(q, *item) == queue_status::queued);
  release.count_down();
  REQUIRE(done.wait_for(must_happen));
  q.drain();

  CHECK(waited == delay);  // never early (rule 53), and exactly on time in virtual time
  CHECK(order == std::vector<std::string>{"gate", "before0", "before1", "before2", "delayed",
                                          "after0", "after1", "after2"});
}

TEST_CASE("ordered_workqueue: items and handlers posted to a shared strand never overlap",
          "[ordered_workqueue][strand][rule39]") {
  constexpr int rounds = 500;
  boost::asio::thread_pool pool{4};
  auto strand = boost::asio::make_strand(pool);
  wq::ordered_workqueue q{strand, "shared-strand"};
  std::atomic<bool> busy{false};
  std::atomic<int> overlaps{0};
  int touched = 0;  // not atomic: items and handlers are serialised by the strand
  std::vector<int> item_order, handler_order;
  latch done{2 * rounds};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < rounds; ++i) {
    items.push_back(std::make_unique<fn_item>([&, i](fn_item&) {
      if (busy.exchange(true)) overlaps.fetch_add(1);
      ++touched;
      item_order.push_back(i);
      busy.store(false);
      done.count_down();
    }));
  }
  for (int i = 0; i < rounds; ++i) {
    REQUIRE(enqueue(q, *items[static_cast<std::size_t>(i)]) == queue_status::queued);
    boost::asio::post(strand, [&, i] {
      if (busy.exchange(true)) overlaps.fetch_add(1);
      ++touched;
      handler_order.push_back(i);
      busy.store(false);
      done.count_down();
    });
  }
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(overlaps.load() == 0);
  CHECK(touched == 2 * rounds);
  std::vector<int> expected;
  for (int i = 0; i < rounds; ++i) expected.push_back(i);
  CHECK(item_order == expected);     // items in queueing order
  CHECK(handler_order == expected);  // handlers in post order
}

TEST_CASE("ordered_workqueue: on a shared strand an idle queue's item takes its turn in post order",
          "[ordered_workqueue][strand][rule39]") {
  // When the queue is idle, queueing an item posts a worker to the strand, so the item runs
  // after handlers posted before it and before handlers posted after it. (Items queued while a
  // worker is already running join that worker's batch instead; see the next test.)
  boost::asio::thread_pool pool{2};
  auto strand = boost::asio::make_strand(pool);
  wq::ordered_workqueue q{strand, "post-order"};
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> order;  // not atomic: everything below runs on the strand
    latch blocker_running{1};
    latch release{1};
    latch done{1};
    fn_item item{[&](fn_item&) { order.push_back("item"); }};
    boost::asio::post(strand, [&] {
      blocker_running.count_down();
      (void)release.wait_for(must_happen);
    });
    REQUIRE(blocker_running.wait_for(must_happen));
    boost::asio::post(strand, [&] { order.push_back("h0"); });
    REQUIRE(enqueue(q, item) == queue_status::queued);
    boost::asio::post(strand, [&] {
      order.push_back("h1");
      done.count_down();
    });
    release.count_down();
    REQUIRE(done.wait_for(must_happen));
    q.drain();
    CHECK(order == std::vector<std::string>{"h0", "item", "h1"});
  }
}

TEST_CASE("ordered_workqueue: a long stream of items does not starve the shared strand's handlers",
          "[ordered_workqueue][strand]") {
  // workqueue.hpp: a worker re-posts itself after a fairness budget so other handlers on the
  // executor are not starved. A handler posted right after the first item must therefore run
  // before the last of 1000 items.
  constexpr int total = 1000;
  boost::asio::thread_pool pool{2};
  auto strand = boost::asio::make_strand(pool);
  wq::ordered_workqueue q{strand, "fair"};
  int items_run = 0;  // not atomic: strand-serialised
  int items_before_handler = -1;
  latch blocker_running{1};
  latch release{1};
  latch done{total + 1};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < total; ++i) {
    items.push_back(std::make_unique<fn_item>([&](fn_item&) {
      ++items_run;
      done.count_down();
    }));
  }
  boost::asio::post(strand, [&] {
    blocker_running.count_down();
    (void)release.wait_for(must_happen);
  });
  REQUIRE(blocker_running.wait_for(must_happen));
  REQUIRE(enqueue(q, *items[0]) == queue_status::queued);  // posts the worker
  boost::asio::post(strand, [&] {
    items_before_handler = items_run;
    done.count_down();
  });
  for (int i = 1; i < total; ++i)
    REQUIRE(enqueue(q, *items[static_cast<std::size_t>(i)]) == queue_status::queued);
  release.count_down();
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(items_before_handler >= 1);
  CHECK(items_before_handler < total);
}

TEST_CASE("ordered_workqueue: set_max_active is refused with a warning (rule 38)",
          "[ordered_workqueue][max_active][rule38]") {
  wq::ordered_workqueue q{"fixed"};
  wq_test::warning_catcher warnings;
  CHECK(q.set_max_active(4) == 1);
  CHECK(q.set_max_active(0) == 1);
  CHECK(q.max_active() == 1);
  CHECK(warnings.contains(wq::errc::set_max_active_on_ordered));
  CHECK(warnings.contains("'fixed'"));
  // Still one at a time.
  check_fifo(q, 100);
}

TEST_CASE(
    "ordered_workqueue: flushing an item queued behind the caller is refused, not a "
    "deadlock (§5.3)",
    "[ordered_workqueue][flush][misuse]") {
  wq_test::warning_catcher warnings;
  wq::ordered_workqueue q{"ordered_flush_self"};
  struct pair_item {
    wq::work first;
    wq::work second;
    std::atomic<int> second_runs{0};
    std::atomic<bool> flush_result{true};
    wq_test::latch* done = nullptr;
    static void run(pair_item* self, wq::id<&pair_item::first>) noexcept {
      // `second` is queued behind us on this one-worker queue: it cannot run until we return.
      self->flush_result = wq::flush_work(self->second);
      self->done->count_down();
    }
    static void run(pair_item* self, wq::id<&pair_item::second>) noexcept {
      self->second_runs.fetch_add(1);
    }
  };
  wq_test::latch done(1);
  pair_item item;
  item.done = &done;
  q.pause();  // both queued before `first` can start (rule 45)
  REQUIRE(q.enqueue<&pair_item::first>(&item));
  REQUIRE(q.enqueue<&pair_item::second>(&item));
  q.resume();
  REQUIRE(done.wait_for());
  q.flush();
  REQUIRE_FALSE(item.flush_result.load());
  REQUIRE(item.second_runs.load() == 1);
  REQUIRE(warnings.contains(wq::errc::wait_needs_this_worker));
}
