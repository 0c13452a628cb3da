// SPDX-License-Identifier: BSL-1.0
// Tests for wq/work.hpp: the embedded work item's size and pinning, the PENDING state machine
// (semantics.md rules 1-5), the memory-ordering promises of queueing (rules 6, 7), C-style work
// functions with container_of (rule 14), current_work() (rule 51) and unbound items.
//
// Determinism: tests that need an item to stay pending use a workqueue on a private io_context
// that is only driven (run_one/poll) when the test says so. Worker threads never call Catch2
// macros (Catch2 v2 is not thread-safe); they record into atomics that the test thread checks.
#include <wq/work.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <wq/container_of.hpp>
#include <wq/kernel.hpp>
#include <wq/workqueue.hpp>

#include "support/items.hpp"
#include "support/test_support.hpp"

namespace {

using wq_test::latch;

// ---- items -----------------------------------------------------------------------------------

/// Queued through a raw pointer; counts its runs and counts down an optional latch.
struct counting_item {
  wq::work w;
  std::atomic<int> runs{0};
  latch* done = nullptr;

  static void run(counting_item* self, wq::id<&counting_item::w>) noexcept {
    self->runs.fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
};

/// A C-style item: the work function recovers the object with container_of.
struct c_item {
  explicit c_item(int v) : value(v) {}
  int value;
  int seen = 0;  // written by the work function, read by the test after a latch
  std::atomic<int> runs{0};
  latch* done = nullptr;
  wq::work w{wq::fn_ops<&c_item::fn>};

  static void fn(wq::work* item) noexcept {
    c_item* self = wq::container_of<&c_item::w>(item);
    self->seen = self->value;
    self->runs.fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
};

// ---- size and pinning ------------------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<wq::work>);
static_assert(!std::is_move_constructible_v<wq::work>);
static_assert(!std::is_copy_assignable_v<wq::work>);
static_assert(!std::is_move_assignable_v<wq::work>);
static_assert(std::is_nothrow_default_constructible_v<wq::work>);
static_assert(sizeof(wq::work) <= 32, "wq::work must stay within 32 bytes (work.hpp)");

TEST_CASE("work: is at most 32 bytes, pinned, and idle when constructed", "[work][size]") {
  WARN("sizeof(wq::work) = " << sizeof(wq::work) << ", alignof = " << alignof(wq::work));
  REQUIRE(sizeof(wq::work) <= 32);

  // An object embedding a work item inherits the pinning.
  static_assert(!std::is_copy_constructible_v<counting_item>);
  static_assert(!std::is_move_constructible_v<counting_item>);

  wq::work unbound;
  CHECK_FALSE(unbound.is_pending());
  CHECK_FALSE(wq::work_pending(unbound));
  CHECK(unbound.disable_count() == 0);

  c_item bound{1};
  CHECK_FALSE(bound.w.is_pending());
}

// ---- rule 1: a single pending instance -------------------------------------------------------

TEST_CASE("work: queueing a pending item returns already_pending and it runs once (rule 1)",
          "[work][rule1]") {
  boost::asio::io_context io;  // not run until the test says so: the item stays pending
  counting_item item;
  c_item citem{7};
  wq::workqueue q{io.get_executor(), "rule1"};
  wq_test::drive_on_exit drive{io};

  SECTION("typed enqueue") {
    auto first = q.enqueue<&counting_item::w>(&item);
    REQUIRE(first.status == wq::queue_status::queued);
    REQUIRE(first.pointer == nullptr);
    for (int i = 0; i < 100; ++i) {
      auto again = q.enqueue<&counting_item::w>(&item);
      REQUIRE(again.status == wq::queue_status::already_pending);
      REQUIRE(again.pointer == &item);  // the caller's pointer is handed back
    }
    CHECK(item.w.is_pending());
    wq_test::run_ready(io);
    CHECK(item.runs.load() == 1);
    CHECK_FALSE(item.w.is_pending());

    // Once it has run, the item is idle and can be queued again.
    REQUIRE(q.enqueue<&counting_item::w>(&item).queued());
    wq_test::run_ready(io);
    CHECK(item.runs.load() == 2);
  }

  SECTION("C-style queue_work and queue") {
    REQUIRE(wq::queue_work(q, citem.w));
    CHECK_FALSE(wq::queue_work(q, citem.w));
    CHECK(q.queue(citem.w) == wq::queue_status::already_pending);
    wq_test::run_ready(io);
    CHECK(citem.runs.load() == 1);
    CHECK(citem.seen == 7);
    REQUIRE(q.queue(citem.w) == wq::queue_status::queued);
    wq_test::run_ready(io);
    CHECK(citem.runs.load() == 2);
  }
}

TEST_CASE(
    "work: PENDING belongs to the item, not the queue: pending on A is pending for B "
    "(rule 1)",
    "[work][rule1]") {
  boost::asio::io_context io_a;
  boost::asio::io_context io_b;
  counting_item item;
  c_item citem{3};
  wq::workqueue qa{io_a.get_executor(), "rule1-a"};
  wq::workqueue qb{io_b.get_executor(), "rule1-b"};
  wq_test::drive_on_exit drive_b{io_b};
  wq_test::drive_on_exit drive_a{io_a};

  REQUIRE(qa.enqueue<&counting_item::w>(&item).queued());
  auto on_b = qb.enqueue<&counting_item::w>(&item);
  CHECK(on_b.status == wq::queue_status::already_pending);
  CHECK(on_b.pointer == &item);

  REQUIRE(wq::queue_work(qa, citem.w));
  CHECK_FALSE(wq::queue_work(qb, citem.w));

  // Queue B got nothing: driving it runs no handler at all.
  CHECK(wq_test::run_ready(io_b) == 0);
  CHECK(item.runs.load() == 0);
  CHECK(citem.runs.load() == 0);

  wq_test::run_ready(io_a);
  CHECK(item.runs.load() == 1);
  CHECK(citem.runs.load() == 1);
  CHECK(wq_test::run_ready(io_b) == 0);
}

TEST_CASE(
    "work: concurrent queueing of one item from two threads: every queued result is "
    "one run (rule 1)",
    "[work][rule1][concurrency]") {
  c_item item{0};
  wq::workqueue q{"rule1-concurrent", {.threads = 2}};
  constexpr int per_thread = 3000;
  std::atomic<int> queued{0};
  std::atomic<int> refused_other{0};  // anything but queued / already_pending

  auto producer = [&] {
    for (int i = 0; i < per_thread; ++i) {
      // Yielding only lets the workers (which share the two cores) interleave with us.
      if (i % 4 == 0) std::this_thread::yield();
      switch (q.queue(item.w)) {
        case wq::queue_status::queued: queued.fetch_add(1); break;
        case wq::queue_status::already_pending: break;
        default: refused_other.fetch_add(1); break;
      }
    }
  };
  std::thread t1{producer};
  std::thread t2{producer};
  t1.join();
  t2.join();
  q.drain();

  INFO("queued " << queued.load() << " of " << 2 * per_thread << " attempts");
  CHECK(refused_other.load() == 0);
  CHECK(queued.load() >= 1);
  CHECK(item.runs.load() == queued.load());
  CHECK_FALSE(item.w.is_pending());
}

// ---- rule 2: PENDING cleared before the function runs ----------------------------------------

struct rule2_item {
  wq::work w;
  wq::workqueue* q = nullptr;
  latch* done = nullptr;
  // Observations made inside run, read by the test after the latch (which orders them).
  int runs = 0;
  bool pending_at_start[2] = {true, true};
  wq::queue_status requeue_status = wq::queue_status::rejected;
  bool pending_after_requeue = false;

  static void run(rule2_item* self, wq::id<&rule2_item::w>) noexcept {
    const int n = self->runs++;
    self->pending_at_start[n] = wq::work_pending(self->w);
    if (n == 0) {
      self->requeue_status = self->q->enqueue<&rule2_item::w>(self).status;
      self->pending_after_requeue = self->w.is_pending();
    } else {
      self->done->count_down();
    }
  }
};

TEST_CASE("work: PENDING is clear inside the function and queueing from it succeeds (rule 2)",
          "[work][rule2]") {
  latch done{1};
  rule2_item item;
  wq::workqueue q{"rule2"};
  item.q = &q;
  item.done = &done;

  REQUIRE(q.enqueue<&rule2_item::w>(&item).queued());
  REQUIRE(done.wait_for());
  q.drain();

  CHECK(item.runs == 2);
  CHECK_FALSE(item.pending_at_start[0]);
  CHECK(item.requeue_status == wq::queue_status::queued);
  CHECK(item.pending_after_requeue);
  CHECK_FALSE(item.pending_at_start[1]);
  CHECK_FALSE(item.w.is_pending());
}

// ---- rule 3: self-requeue --------------------------------------------------------------------

struct self_requeue_item {
  static constexpr int target = 2000;
  wq::work w;
  wq::workqueue* q = nullptr;
  latch* done = nullptr;
  std::atomic<bool> in_run{false};
  std::atomic<int> overlaps{0};
  std::atomic<int> failed_requeues{0};
  int count = 0;  // deliberately not atomic: two overlapping runs are a data race (TSan)

  static void run(self_requeue_item* self, wq::id<&self_requeue_item::w>) noexcept {
    if (self->in_run.exchange(true)) self->overlaps.fetch_add(1);
    const int n = ++self->count;
    if (n < target) {
      if (!self->q->enqueue<&self_requeue_item::w>(self)) self->failed_requeues.fetch_add(1);
    }
    // Give a wrongly started second instance time to overlap with this one.
    std::this_thread::yield();
    self->in_run.store(false);
    if (n == target) self->done->count_down();
  }
};

TEST_CASE("work: an item may requeue itself repeatedly and never overlaps itself (rule 3)",
          "[work][rule3][concurrency]") {
  latch done{1};
  self_requeue_item item;
  wq::workqueue q{"rule3", {.threads = 2}};  // two workers could overlap it
  item.q = &q;
  item.done = &done;

  REQUIRE(q.enqueue<&self_requeue_item::w>(&item).queued());
  REQUIRE(done.wait_for());
  q.drain();

  CHECK(item.count == self_requeue_item::target);
  CHECK(item.overlaps.load() == 0);
  CHECK(item.failed_requeues.load() == 0);
}

struct hammered_item {
  wq::work w;
  std::atomic<bool> in_run{false};
  std::atomic<int> overlaps{0};
  int runs = 0;  // not atomic: overlapping runs would be a data race (TSan)

  static void run(hammered_item* self, wq::id<&hammered_item::w>) noexcept {
    if (self->in_run.exchange(true)) self->overlaps.fetch_add(1);
    ++self->runs;
    std::this_thread::yield();
    self->in_run.store(false);
  }
};

TEST_CASE(
    "work: an item queued from other threads while it runs never overlaps itself "
    "(rule 9)",
    "[work][rule9][concurrency]") {
  hammered_item item;
  wq::workqueue q{"rule9", {.threads = 3}};
  std::atomic<int> queued{0};
  auto producer = [&] {
    for (int i = 0; i < 2000; ++i) {
      if (i % 4 == 0) std::this_thread::yield();  // lets the workers interleave with us
      if (q.enqueue<&hammered_item::w>(&item)) queued.fetch_add(1);
    }
  };
  std::thread t1{producer};
  std::thread t2{producer};
  t1.join();
  t2.join();
  q.drain();

  CHECK(item.overlaps.load() == 0);
  CHECK(item.runs == queued.load());
}

struct greedy_item {
  static constexpr int cap = 100000;
  wq::work w;
  wq::workqueue* q = nullptr;
  const bool* other_ran = nullptr;
  int runs = 0;
  static void run(greedy_item* self, wq::id<&greedy_item::w>) noexcept {
    ++self->runs;
    if (!*self->other_ran && self->runs < cap) {
      (void)self->q->enqueue<&greedy_item::w>(self);
    }
  }
};

struct flag_item {
  wq::work w;
  bool ran = false;
  static void run(flag_item* self, wq::id<&flag_item::w>) noexcept { self->ran = true; }
};

TEST_CASE("work: an item queued behind a self-requeueing item still gets its turn (rule 3)",
          "[work][rule3]") {
  // Everything runs on this thread (io.run()), so plain bools are enough. The greedy item
  // requeues itself until the other item has run; if self-requeue starved the queue it would
  // stop only at its cap.
  boost::asio::io_context io;
  greedy_item greedy;
  flag_item other;
  wq::workqueue q{io.get_executor(), "rule3-fair"};
  wq_test::drive_on_exit drive{io};
  greedy.q = &q;
  greedy.other_ran = &other.ran;

  REQUIRE(q.enqueue<&greedy_item::w>(&greedy).queued());
  REQUIRE(q.enqueue<&flag_item::w>(&other).queued());
  io.run();

  CHECK(other.ran);
  INFO("the greedy item ran " << greedy.runs << " times before the other item");
  CHECK(greedy.runs < greedy_item::cap);
}

// ---- rule 4: self-free -----------------------------------------------------------------------

struct owned_item : wq_test::counted {
  explicit owned_item(wq_test::lifetime_counter& c) : counted(c) {}
  wq::work w;
  std::atomic<int>* runs = nullptr;
  static void run(std::unique_ptr<owned_item> self, wq::id<&owned_item::w>) noexcept {
    self->runs->fetch_add(1);
    // `self` goes out of scope here: the item frees itself before the worker continues.
  }
};

struct raw_self_freeing_item : wq_test::counted {
  explicit raw_self_freeing_item(wq_test::lifetime_counter& c) : counted(c) {}
  wq::work w;
  static void run(raw_self_freeing_item* self, wq::id<&raw_self_freeing_item::w>) noexcept {
    delete self;
  }
};

struct c_self_freeing_item : wq_test::counted {
  explicit c_self_freeing_item(wq_test::lifetime_counter& c) : counted(c) {}
  char payload[200] = {};  // a larger block, so a stale access lands in poisoned memory
  wq::work w{wq::fn_ops<&c_self_freeing_item::fn>};
  static void fn(wq::work* item) noexcept {
    delete wq::container_of<&c_self_freeing_item::w>(item);
  }
};

TEST_CASE("work: the work function may free the object containing its item (rule 4)",
          "[work][rule4]") {
  // Under AddressSanitizer any access to the item after its function returned is reported.
  constexpr int n = 300;
  wq_test::lifetime_counter counter;
  std::atomic<int> runs{0};
  {
    wq::workqueue q{"rule4", {.threads = 2}};
    for (int i = 0; i < n; ++i) {
      auto owned = std::make_unique<owned_item>(counter);
      owned->runs = &runs;
      REQUIRE(q.enqueue<&owned_item::w>(std::move(owned)).queued());
      REQUIRE(q.enqueue<&raw_self_freeing_item::w>(new raw_self_freeing_item(counter)).queued());
      REQUIRE(wq::queue_work(q, (new c_self_freeing_item(counter))->w));
    }
    q.drain();
    CHECK(runs.load() == n);
    CHECK(counter.alive() == 0);
  }
  CHECK(counter.constructed.load() == 3 * n);
  CHECK(counter.destroyed.load() == 3 * n);
}

// ---- rule 5: work_pending is advisory --------------------------------------------------------

struct pending_probe {
  wq::work w;
  bool pending_inside = true;
  bool free_pending_inside = true;
  static void run(pending_probe* self, wq::id<&pending_probe::w>) noexcept {
    self->pending_inside = self->w.is_pending();
    self->free_pending_inside = wq::work_pending(self->w);
  }
};

TEST_CASE("work: work_pending reports PENDING: idle false, queued true, running false (rule 5)",
          "[work][rule5]") {
  boost::asio::io_context io;
  pending_probe item;
  wq::workqueue q{io.get_executor(), "rule5"};
  wq_test::drive_on_exit drive{io};

  CHECK_FALSE(wq::work_pending(item.w));
  REQUIRE(q.enqueue<&pending_probe::w>(&item).queued());
  CHECK(wq::work_pending(item.w));
  CHECK(item.w.is_pending());
  wq_test::run_ready(io);
  CHECK_FALSE(item.pending_inside);
  CHECK_FALSE(item.free_pending_inside);
  CHECK_FALSE(wq::work_pending(item.w));
}

// ---- rules 6 and 7: memory ordering ----------------------------------------------------------

struct payload_item {
  wq::work w;
  int payload = 0;    // plain: only the queue's ordering makes the write visible to run
  int observed = -1;  // plain: read by the test after the thread that ran the item is joined
  static void run(payload_item* self, wq::id<&payload_item::w>) noexcept {
    self->observed = self->payload;
  }
};

// Runs one round of the litmus test:
//   producer thread:  payload = 42; status = queue(item); go = true (relaxed)
//   runner thread:    wait for go (relaxed); io.run_one()  -> run reads payload
// The only happens-before edge from the producer's write to run's read is the one the library
// provides (rule 6: the queue's lock; rule 7: the PENDING bit's release/acquire), so a missing
// edge is a data race on `payload` that ThreadSanitizer reports. If `pending_first` is set the
// test thread queues the item beforehand, so the producer's call finds it pending (rule 7).
void ordering_round(bool pending_first, wq::queue_status& producer_status, int& observed) {
  boost::asio::io_context io;
  payload_item item;
  wq::workqueue q{io.get_executor(), "ordering"};
  wq_test::drive_on_exit drive{io};
  if (pending_first) {
    if (!q.enqueue<&payload_item::w>(&item)) return;
  }
  std::atomic<bool> go{false};
  std::atomic<bool> runner_ok{false};
  std::thread runner{[&] {
    if (!wq_test::poll_until([&] { return go.load(std::memory_order_relaxed); })) return;
    io.run_one();
    runner_ok.store(true, std::memory_order_relaxed);
  }};
  std::thread producer{[&] {
    item.payload = 42;
    producer_status = q.enqueue<&payload_item::w>(&item).status;
    go.store(true, std::memory_order_relaxed);
  }};
  producer.join();
  runner.join();
  observed = runner_ok.load() ? item.observed : -2;
}

TEST_CASE(
    "work: writes made before a queue call that returns queued are visible in the "
    "function (rule 6)",
    "[work][rule6][concurrency]") {
  SECTION("litmus: producer and runner synchronise only through the queue") {
    for (int round = 0; round < 20; ++round) {
      wq::queue_status st = wq::queue_status::rejected;
      int observed = -1;
      ordering_round(false, st, observed);
      REQUIRE(st == wq::queue_status::queued);
      REQUIRE(observed == 42);
    }
  }

  SECTION("many rounds from two producer threads on a pool") {
    // Each producer owns an item; it writes the payload, queues, and waits for the run's
    // acknowledgement (run -> producer ordering comes from the latch; producer -> run only
    // from the queue). ThreadSanitizer reports a missing edge as a race on `payload`.
    struct ack_item {
      wq::work w;
      int payload = 0;
      int observed = 0;
      latch* ack = nullptr;
      static void run(ack_item* self, wq::id<&ack_item::w>) noexcept {
        self->observed = self->payload;
        self->ack->count_down();
      }
    };
    constexpr int rounds = 300;
    ack_item items[2];
    wq::workqueue q{"rule6", {.threads = 2}};
    std::atomic<int> wrong{0};
    std::atomic<int> not_queued{0};
    std::atomic<int> timeouts{0};
    auto producer = [&](ack_item& item) {
      for (int i = 1; i <= rounds; ++i) {
        latch ack{1};
        item.ack = &ack;
        item.payload = i;
        if (!q.enqueue<&ack_item::w>(&item)) {
          not_queued.fetch_add(1);
          continue;
        }
        if (!ack.wait_for()) {
          timeouts.fetch_add(1);
          return;
        }
        if (item.observed != i) wrong.fetch_add(1);
      }
    };
    std::thread t1{producer, std::ref(items[0])};
    std::thread t2{producer, std::ref(items[1])};
    t1.join();
    t2.join();
    q.drain();
    CHECK(timeouts.load() == 0);
    CHECK(not_queued.load() == 0);
    CHECK(wrong.load() == 0);
  }
}

struct latest_item {
  wq::work w;
  std::atomic<int>* latest = nullptr;
  std::atomic<int> last_seen{0};
  std::atomic<int> runs{0};
  static void run(latest_item* self, wq::id<&latest_item::w>) noexcept {
    // Relaxed on purpose: the visibility of the producer's store must come from the queue.
    self->last_seen.store(self->latest->load(std::memory_order_relaxed), std::memory_order_relaxed);
    self->runs.fetch_add(1, std::memory_order_relaxed);
  }
};

TEST_CASE(
    "work: a queue call that finds the item pending is seen by the pending run "
    "(rule 7)",
    "[work][rule7][concurrency]") {
  SECTION("litmus: the already-pending caller's write reaches the pending run") {
    for (int round = 0; round < 20; ++round) {
      wq::queue_status st = wq::queue_status::queued;
      int observed = -1;
      ordering_round(true, st, observed);
      REQUIRE(st == wq::queue_status::already_pending);
      REQUIRE(observed == 42);
    }
  }

  SECTION("no lost wake-up: the last value set is seen by the last run") {
    // The producer stores 1..n and queues after each store; most calls find the item pending.
    // Whatever the interleaving, the last run starts after the last store (either it was
    // queued by that call, or it was pending then and had not started) and must see n.
    constexpr int n = 20000;
    std::atomic<int> latest{0};
    latest_item item;
    item.latest = &latest;
    wq::workqueue q{"rule7", {.threads = 2}};
    int queued = 0;
    int pending = 0;
    for (int i = 1; i <= n; ++i) {
      if (i % 4 == 0) std::this_thread::yield();  // lets the workers interleave with us
      latest.store(i, std::memory_order_relaxed);
      const auto st = q.enqueue<&latest_item::w>(&item).status;
      if (st == wq::queue_status::queued) ++queued;
      if (st == wq::queue_status::already_pending) ++pending;
    }
    q.drain();
    INFO(queued << " calls queued, " << pending << " found the item pending");
    CHECK(queued + pending == n);
    CHECK(item.runs.load() == queued);
    CHECK(item.last_seen.load() == n);
  }
}

// ---- C-style work functions (rule 14) --------------------------------------------------------

struct two_c_items {
  int a_runs = 0;
  int b_runs = 0;
  latch* done = nullptr;
  wq::work a{wq::fn_ops<&two_c_items::on_a>};
  wq::work b{wq::fn_ops<&two_c_items::on_b>};
  static void on_a(wq::work* item) noexcept {
    two_c_items* self = wq::container_of<&two_c_items::a>(item);
    ++self->a_runs;
    self->done->count_down();
  }
  static void on_b(wq::work* item) noexcept {
    two_c_items* self = wq::container_of<&two_c_items::b>(item);
    ++self->b_runs;
    self->done->count_down();
  }
};

TEST_CASE(
    "work: a C-style work function recovers its object, queue_work returns the kernel's "
    "bool (rule 14)",
    "[work][rule14][c_style]") {
  SECTION("on a pool") {
    latch done{1};
    c_item item{1234};
    item.done = &done;
    wq::workqueue q{"c-style"};
    REQUIRE(wq::queue_work(q, item.w));
    REQUIRE(done.wait_for());
    q.drain();
    CHECK(item.seen == 1234);
    CHECK(item.runs.load() == 1);
  }

  SECTION("two members with their own functions in one object") {
    latch done{2};
    two_c_items obj;
    obj.done = &done;
    wq::workqueue q{"c-style-two"};
    REQUIRE(wq::queue_work(q, obj.a));
    REQUIRE(wq::queue_work(q, obj.b));
    REQUIRE(done.wait_for());
    q.drain();
    CHECK(obj.a_runs == 1);
    CHECK(obj.b_runs == 1);
  }
}

// ---- current_work (rule 51) ------------------------------------------------------------------

struct current_probe {
  wq::work w;
  wq::work* seen = nullptr;
  static void run(current_probe* self, wq::id<&current_probe::w>) noexcept {
    self->seen = wq::current_work();
  }
};

struct nesting_probe {
  wq::work w;
  boost::asio::io_context* inner_io = nullptr;
  wq::work* before = nullptr;
  wq::work* after = nullptr;
  static void run(nesting_probe* self, wq::id<&nesting_probe::w>) noexcept {
    self->before = wq::current_work();
    self->inner_io->poll();  // runs another queue's item inside this work function
    self->after = wq::current_work();
  }
};

TEST_CASE(
    "work: current_work() is the running item inside its function and null outside "
    "(rule 51)",
    "[work][rule51]") {
  CHECK(wq::current_work() == nullptr);

  SECTION("on a pool thread") {
    current_probe item;
    wq::workqueue q{"current"};
    REQUIRE(q.enqueue<&current_probe::w>(&item).queued());
    q.drain();
    CHECK(item.seen == &item.w);
  }

  SECTION("on the same thread, before and after the item") {
    boost::asio::io_context io;
    current_probe item;
    wq::workqueue q{io.get_executor(), "current-io"};
    wq_test::drive_on_exit drive{io};
    wq::work* after = &item.w;
    REQUIRE(q.enqueue<&current_probe::w>(&item).queued());
    wq_test::run_ready(io);
    boost::asio::post(io, [&] { after = wq::current_work(); });
    wq_test::run_ready(io);
    CHECK(item.seen == &item.w);
    CHECK(after == nullptr);
    CHECK(wq::current_work() == nullptr);
  }

  SECTION("nested: an item that drives another queue's executor") {
    boost::asio::io_context outer_io;
    boost::asio::io_context inner_io;
    nesting_probe outer;
    current_probe inner;
    outer.inner_io = &inner_io;
    wq::workqueue outer_q{outer_io.get_executor(), "outer"};
    wq::workqueue inner_q{inner_io.get_executor(), "inner"};
    wq_test::drive_on_exit drive_inner{inner_io};
    wq_test::drive_on_exit drive_outer{outer_io};
    REQUIRE(inner_q.enqueue<&current_probe::w>(&inner).queued());
    REQUIRE(outer_q.enqueue<&nesting_probe::w>(&outer).queued());
    wq_test::run_ready(outer_io);
    CHECK(outer.before == &outer.w);
    CHECK(inner.seen == &inner.w);
    CHECK(outer.after == &outer.w);
    CHECK(wq::current_work() == nullptr);
  }
}

// ---- unbound items ---------------------------------------------------------------------------

TEST_CASE("work: queueing an item that has no work function returns unbound and warns",
          "[work][unbound]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"unbound"};
  wq::work w;  // default-constructed, never queued through the typed API

  CHECK(q.queue(w) == wq::queue_status::unbound);
  CHECK_FALSE(wq::queue_work(q, w));
  CHECK_FALSE(w.is_pending());
  CHECK(warnings.contains(wq::errc::no_work_function));
  CHECK(warnings.contains("unbound"));  // names the queue
}

}  // namespace
