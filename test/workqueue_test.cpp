// SPDX-License-Identifier: BSL-1.0
// Tests for wq/workqueue.hpp: construction on an owned pool and on user executors, names and
// flags, max_active (rules 37, 38), non-reentrancy (rules 9-12), queueing results (rules 1, 14),
// drain (rule 49) and destroy (rule 50), current_work (rule 51).
//
// Synchronisation is by latches (wq_test::latch, which times out instead of hanging). Where a
// test checks that something does NOT happen it waits wq_test::must_not_happen (100 ms) with idle
// threads ready to make it happen; a correct library passes regardless of timing.
#include <wq/workqueue.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
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

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <wq/cancel.hpp>
#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/detail/engine.hpp>
#include <wq/executor.hpp>
#include <wq/flush.hpp>
#include <wq/kernel.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/shared_work.hpp>
#include <wq/test_clock.hpp>

#include "support/cancel_items.hpp"
#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using wq::queue_flags;
using wq::queue_status;
using wq_test::enqueue;
using wq_test::fn_delayed_item;
using wq_test::fn_item;
using wq_test::latch;
using wq_test::must_happen;
using wq_test::must_not_happen;

// Runs one item on `q` and checks current_work() inside it. Returns whether it ran.
bool runs_an_item(wq::workqueue& q) {
  latch ran{1};
  std::atomic<bool> saw_self{false};
  fn_item item{[&](fn_item& self) {
    saw_self.store(wq::current_work() == &self.w);
    ran.count_down();
  }};
  if (enqueue(q, item) != queue_status::queued) return false;
  const bool ok = ran.wait_for(must_happen);
  q.drain();  // the item's function has returned: `item` may go out of scope
  return ok && saw_self.load();
}

// An item owned by std::unique_ptr that counts its lifetime and its runs.
struct owned_item {
  wq::work w;
  wq_test::lifetime_counter* life;
  std::atomic<int>* runs;
  owned_item(wq_test::lifetime_counter* l, std::atomic<int>* r) : life(l), runs(r) {
    life->constructed.fetch_add(1);
  }
  ~owned_item() { life->destroyed.fetch_add(1); }
  owned_item(const owned_item&) = delete;
  owned_item& operator=(const owned_item&) = delete;
  static void run(std::unique_ptr<owned_item> self, wq::id<&owned_item::w>) noexcept {
    self->runs->fetch_add(1);
  }
};

// Delayed items for each owning pointer kind.
struct unique_delayed {
  wq::delayed_work d;
  wq_test::lifetime_counter* life;
  std::atomic<int>* runs;
  unique_delayed(wq_test::lifetime_counter* l, std::atomic<int>* r) : life(l), runs(r) {
    life->constructed.fetch_add(1);
  }
  ~unique_delayed() { life->destroyed.fetch_add(1); }
  unique_delayed(const unique_delayed&) = delete;
  unique_delayed& operator=(const unique_delayed&) = delete;
  static void run(std::unique_ptr<unique_delayed> self, wq::id<&unique_delayed::d>) noexcept {
    self->runs->fetch_add(1);
  }
};

struct shared_item {
  wq::shared_work w;
  wq::shared_delayed_work d;
  std::atomic<int> runs{0};
  static void run(std::shared_ptr<shared_item> self, wq::id<&shared_item::w>) noexcept {
    self->runs.fetch_add(1);
  }
  static void run(std::shared_ptr<shared_item> self, wq::id<&shared_item::d>) noexcept {
    self->runs.fetch_add(1);
  }
};

struct ref_item : boost::intrusive_ref_counter<ref_item, boost::thread_safe_counter> {
  wq::work w;
  wq::delayed_work d;
  std::atomic<int> runs{0};
  static void run(boost::intrusive_ptr<ref_item> self, wq::id<&ref_item::w>) noexcept {
    self->runs.fetch_add(1);
  }
  static void run(boost::intrusive_ptr<ref_item> self, wq::id<&ref_item::d>) noexcept {
    self->runs.fetch_add(1);
  }
};

// A C-style item (kernel INIT_WORK) whose first run blocks until released.
struct c_item;
void c_item_fn(wq::work* w) noexcept;
struct c_item {
  wq::work w{wq::fn_ops<&c_item_fn>};
  std::atomic<int> runs{0};
  latch first_running{1};
  latch release{1};
  latch second_done{1};
};
void c_item_fn(wq::work* w) noexcept {
  c_item* self = wq::container_of<&c_item::w>(w);
  if (self->runs.fetch_add(1) == 0) {
    self->first_running.count_down();
    (void)self->release.wait_for(must_happen);
  } else {
    self->second_done.count_down();
  }
}

std::atomic<int> c_delayed_runs{0};
void c_delayed_fn(wq::work*) noexcept { c_delayed_runs.fetch_add(1); }

// A do-nothing delayed item, armed far in the future so that destroy() has something to cancel
// (its warning is how a test learns that destroy() has started).
struct far_item {
  wq::delayed_work d;
  static void run(far_item*, wq::id<&far_item::d>) noexcept {}
};

// Items for the identity test (rule 11): placed in one buffer in turn.
struct reuse_env {
  latch first_running{1};
  latch release{1};
  latch second_started{1};
  std::atomic<bool> first_done{false};
  std::atomic<bool> second_saw_first_done{false};
};
struct reuse_same {
  wq::work w;
  reuse_env* env;
  bool first;
  reuse_same(reuse_env* e, bool f) : env(e), first(f) {}
  static void run(reuse_same* self, wq::id<&reuse_same::w>) noexcept {
    reuse_env* env = self->env;
    if (self->first) {
      self->~reuse_same();  // rule 4: the function may free its item; the memory is reused
      env->first_running.count_down();
      (void)env->release.wait_for(must_happen);
      env->first_done.store(true);
    } else {
      env->second_saw_first_done.store(env->first_done.load());
      self->~reuse_same();
      env->second_started.count_down();
    }
  }
};
struct reuse_other {
  wq::work w;
  reuse_env* env;
  explicit reuse_other(reuse_env* e) : env(e) {}
  static void run(reuse_other* self, wq::id<&reuse_other::w>) noexcept {
    reuse_env* env = self->env;
    env->second_saw_first_done.store(env->first_done.load());
    self->~reuse_other();
    env->second_started.count_down();
  }
};

// With max_active 2: two items run at once and a third never joins them (rule 37).
void check_max_active_two(wq::workqueue& q) {
  constexpr int total = 50;
  wq_test::concurrency_probe probe;
  latch both_running{2};
  latch release{1};
  latch third_started{1};
  latch done{total};
  std::atomic<int> timeouts{0};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < total; ++i) {
    items.push_back(std::make_unique<fn_item>([&, i](fn_item&) {
      probe.enter();
      if (i < 2) {
        both_running.count_down();
        if (!both_running.wait_for(must_happen)) timeouts.fetch_add(1);
        if (!release.wait_for(must_happen)) timeouts.fetch_add(1);
      } else {
        third_started.count_down();
        std::this_thread::yield();
      }
      probe.leave();
      done.count_down();
    }));
  }
  REQUIRE(q.max_active() == 2);
  REQUIRE(enqueue(q, *items[0]) == queue_status::queued);
  REQUIRE(enqueue(q, *items[1]) == queue_status::queued);
  REQUIRE(both_running.wait_for(must_happen));  // the limit is reachable
  for (int i = 2; i < total; ++i)
    REQUIRE(enqueue(q, *items[static_cast<std::size_t>(i)]) == queue_status::queued);
  CHECK_FALSE(third_started.wait_for(must_not_happen));  // and not exceeded
  release.count_down();
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(timeouts.load() == 0);
  CHECK(probe.entered.load() == total);
  CHECK(probe.max_running.load() == 2);
}

}  // namespace

// ---- construction, names and flags ------------------------------------------------------------

TEST_CASE(
    "workqueue: a queue owning its thread pool has its name, flags and default max_active (rule 36)",
    "[workqueue][construct][rule36][rule51]") {
  wq::workqueue q{"owned", {.flags = queue_flags::unbound | queue_flags::highpri, .threads = 2}};
  CHECK(q.name() == "owned");
  CHECK(q.flags() == (queue_flags::unbound | queue_flags::highpri));
  CHECK_FALSE(q.ordered());
  CHECK(q.max_active() == wq::default_max_active);
  CHECK(q.max_active() == 1024);
  CHECK(wq::current_work() == nullptr);  // not inside a work function
  CHECK(runs_an_item(q));
}

TEST_CASE("workqueue: alloc_workqueue returns a queue owning its pool (rule 36)",
          "[workqueue][construct][rule36]") {
  auto q = wq::alloc_workqueue("allocated", queue_flags::long_running, 3);
  REQUIRE(q != nullptr);
  CHECK(q->name() == "allocated");
  CHECK(q->flags() == queue_flags::long_running);
  CHECK(q->max_active() == 3);
  CHECK(runs_an_item(*q));
}

TEST_CASE("workqueue: runs on a user's io_context run by a thread of the test",
          "[workqueue][construct][executor]") {
  wq_test::io_runner io{1};
  wq::workqueue q{io.context(), "io"};
  CHECK(q.name() == "io");
  CHECK(q.flags() == queue_flags::none);
  CHECK(q.max_active() == 1024);
  CHECK(runs_an_item(q));
  wq::workqueue by_executor{io.context().get_executor(), "io-ex", {.max_active = 5}};
  CHECK(by_executor.max_active() == 5);
  CHECK(runs_an_item(by_executor));
}

TEST_CASE("workqueue: runs on a user's asio::thread_pool", "[workqueue][construct][executor]") {
  boost::asio::thread_pool pool{2};
  wq::workqueue q{pool, "pool", {.flags = queue_flags::unbound}};
  CHECK(q.name() == "pool");
  CHECK(q.flags() == queue_flags::unbound);
  CHECK(runs_an_item(q));
}

TEST_CASE("workqueue: runs on a strand, ordered or not (rule 39)",
          "[workqueue][construct][executor][rule39]") {
  boost::asio::thread_pool pool{2};
  auto strand = boost::asio::make_strand(pool);
  wq::workqueue plain{strand, "strand"};
  CHECK_FALSE(plain.ordered());
  CHECK(runs_an_item(plain));
  wq::ordered_workqueue ordered{strand, "strand-ordered"};
  CHECK(ordered.ordered());
  CHECK(ordered.flags() == queue_flags::none);
  CHECK(ordered.max_active() == 1);
  CHECK(runs_an_item(ordered));
}

TEST_CASE("workqueue: runs on an any_io_executor", "[workqueue][construct][executor]") {
  boost::asio::thread_pool pool{2};
  boost::asio::any_io_executor ex = pool.get_executor();
  wq::workqueue q{ex, "any"};
  CHECK(q.name() == "any");
  CHECK(runs_an_item(q));
  wq::ordered_workqueue ordered{ex, "any-ordered"};
  CHECK(ordered.ordered());
  CHECK(runs_an_item(ordered));
}

TEST_CASE(
    "workqueue: an ordered queue on an any_io_executor wrapping a strand shares that "
    "strand (a socket's executor)",
    "[workqueue][construct][executor][rule39]") {
  boost::asio::thread_pool pool{2};
  auto strand = boost::asio::make_strand(pool);
  boost::asio::any_io_executor ex = strand;
  wq::ordered_workqueue ordered{ex, "on-socket-strand"};
  std::atomic<bool> on_strand{false};
  latch ran{1};
  fn_item item{[&](fn_item&) {
    on_strand.store(strand.running_in_this_thread());
    ran.count_down();
  }};
  REQUIRE(enqueue(ordered, item) == queue_status::queued);
  REQUIRE(ran.wait_for(must_happen));
  CHECK(on_strand.load());
}

// ---- outstanding work on a user's executor (Asio's convention; issue 13, point 1) ----------

TEST_CASE(
    "workqueue: on the app's io_context, queued, inactive, running and armed items are "
    "outstanding work: io.run() returns exactly when they are done",
    "[workqueue][outstanding_work]") {
  boost::asio::io_context io;
  wq::workqueue q{io, "outstanding", {.max_active = 1}};
  std::atomic<int> runs{0};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < 4; ++i) {  // one active, three inactive (max_active 1)
    items.push_back(std::make_unique<fn_item>([&](fn_item&) { runs.fetch_add(1); }));
    REQUIRE(enqueue(q, *items.back()) == queue_status::queued);
  }
  fn_delayed_item later{[&](fn_delayed_item&) { runs.fetch_add(1); }};
  REQUIRE(wq_test::enqueue_delayed(q, later, 30ms) == queue_status::queued);
  io.run();
  CHECK(runs.load() == 5);
  CHECK(q.stats().in_flight == 0);
}

TEST_CASE(
    "workqueue: a paused queue's items keep io.run() from returning until resume "
    "(rule 45, outstanding work)",
    "[workqueue][outstanding_work][rule45]") {
  boost::asio::io_context io;
  wq::workqueue q{io, "paused-outstanding"};
  std::atomic<int> runs{0};
  fn_item item{[&](fn_item&) { runs.fetch_add(1); }};
  q.pause();
  REQUIRE(enqueue(q, item) == queue_status::queued);
  io.run_for(must_not_happen);
  CHECK_FALSE(io.stopped());  // it had work the whole time
  CHECK(runs.load() == 0);
  q.resume();
  io.run();
  CHECK(runs.load() == 1);
}

TEST_CASE(
    "workqueue: a tracked copy of the queue's executor (an executor_work_guard) is "
    "outstanding work on the io_context the queue runs on",
    "[workqueue][outstanding_work]") {
  boost::asio::io_context io;
  wq::workqueue q{io, "tracked"};
  auto guard = std::make_optional(boost::asio::make_work_guard(q.get_executor()));
  CHECK(boost::asio::query(
            boost::asio::prefer(q.get_executor(), boost::asio::execution::outstanding_work.tracked),
            boost::asio::execution::outstanding_work) ==
        boost::asio::execution::outstanding_work.tracked);
  io.run_for(must_not_happen);
  CHECK_FALSE(io.stopped());
  boost::asio::post(io, [&] { guard.reset(); });
  io.run();  // returns once the guard is gone
  CHECK(io.stopped());
}

TEST_CASE("workqueue: an idle queue on the app's io_context is no work: run() returns at once",
          "[workqueue][outstanding_work]") {
  boost::asio::io_context io;
  wq::workqueue q{io, "idle"};
  fn_delayed_item item{[](fn_delayed_item&) {}};
  REQUIRE(wq_test::enqueue_delayed(q, item, 1h) == queue_status::queued);
  REQUIRE(wq::cancel_delayed_work(item.d));  // cancelled: nothing is outstanding any more
  CHECK(io.run() == 0);
}

// ---- blocking waits that could never finish: refused in bounded time (issue 13, point 6) ----

TEST_CASE(
    "workqueue: flush() from the only thread of the io_context its queue runs on is "
    "refused (executor_not_running), not a hang",
    "[workqueue][flush][misuse][hang]") {
  wq_test::warning_catcher warnings;
  wq_test::wait_limit_scope limit{100ms};
  boost::asio::io_context io;
  wq::workqueue q{io, "only-thread"};
  std::atomic<int> runs{0};
  fn_item item{[&](fn_item&) { runs.fetch_add(1); }};
  std::error_code got;
  boost::asio::post(io, [&] {
    REQUIRE_NOTHROW(enqueue(q, item));  // its worker is posted behind this handler
    got = q.flush();
  });
  io.run();
  CHECK(got == wq::errc::executor_not_running);
  CHECK(warnings.contains(wq::errc::executor_not_running));
  CHECK(runs.load() == 1);  // it ran once this handler returned
}

TEST_CASE(
    "workqueue: flush() from the thread of a one-thread pool its queue runs on is refused "
    "(executor_not_running)",
    "[workqueue][flush][misuse][hang]") {
  wq_test::warning_catcher warnings;
  wq_test::wait_limit_scope limit{100ms};
  boost::asio::thread_pool pool{1};
  wq::workqueue q{pool, "one-thread-pool"};
  latch ran{1};
  fn_item item{[&](fn_item&) { ran.count_down(); }};
  std::promise<std::error_code> got;
  boost::asio::post(pool, [&] {
    (void)enqueue(q, item);
    got.set_value(q.flush());
  });
  auto fut = got.get_future();
  REQUIRE(fut.wait_for(must_happen) == std::future_status::ready);
  CHECK(fut.get() == wq::errc::executor_not_running);
  CHECK(ran.wait_for(must_happen));
}

TEST_CASE(
    "workqueue: flush() from a handler of the strand behind an any_io_executor (a "
    "socket's executor) is refused at once (§5.3)",
    "[workqueue][flush][misuse][hang]") {
  wq_test::warning_catcher warnings;
  boost::asio::io_context io;
  boost::asio::any_io_executor socket_ex = boost::asio::make_strand(io);
  wq::ordered_workqueue ordered{socket_ex, "session"};
  wq::workqueue plain{socket_ex, "session-plain"};
  std::atomic<int> runs{0};
  fn_item a{[&](fn_item&) { runs.fetch_add(1); }};
  fn_item b{[&](fn_item&) { runs.fetch_add(1); }};
  std::error_code got_ordered, got_plain;
  boost::asio::post(socket_ex, [&] {
    (void)enqueue(ordered, a);
    (void)enqueue(plain, b);
    got_ordered = ordered.flush();
    got_plain = plain.flush();
  });
  io.run();
  CHECK(got_ordered == wq::errc::wait_needs_this_worker);
  CHECK(got_plain == wq::errc::wait_needs_this_worker);
  CHECK(runs.load() == 2);
}

TEST_CASE(
    "workqueue: flush() of a paused queue is refused once it stays paused for the wait "
    "limit, one resumed meanwhile completes (rule 45)",
    "[workqueue][flush][misuse][rule45]") {
  wq_test::warning_catcher warnings;
  wq_test::wait_limit_scope limit{100ms};
  wq::workqueue q{"paused-flush", {.threads = 1}};
  std::atomic<int> runs{0};
  fn_item item{[&](fn_item&) { runs.fetch_add(1); }};
  q.pause();
  REQUIRE(enqueue(q, item) == queue_status::queued);
  CHECK(q.flush() == wq::errc::wait_on_paused_queue);  // used to hang
  CHECK(runs.load() == 0);
  auto resumer = std::async(std::launch::async, [&] {
    // A resume from another thread within the limit lets the flush finish.
    (void)wq_test::poll_until([&] { return q.dump().find("paused") != std::string::npos; });
    q.resume();
  });
  CHECK(q.flush() == std::error_code{});
  resumer.get();
  CHECK(runs.load() == 1);
}

TEST_CASE(
    "workqueue: destroying a queue whose io_context is stopped or not running does not "
    "hang: its items are dropped unrun and their references released, as Asio does with "
    "a context's handlers (items_dropped, a notice)",
    "[workqueue][destroy][hang][rule50]") {
  const bool stopped = GENERATE(true, false);
  wq_test::warning_catcher warnings;
  wq_test::wait_limit_scope limit{100ms};
  struct owned {
    wq::shared_work w;
    std::atomic<int>* runs;
    static void run(std::shared_ptr<owned> self, wq::id<&owned::w>) noexcept {
      self->runs->fetch_add(1);
    }
  };
  boost::asio::io_context io;
  std::atomic<int> runs{0};
  auto obj = std::make_shared<owned>();
  obj->runs = &runs;
  std::weak_ptr<owned> watch = obj;
  if (stopped) io.stop();  // the usual shutdown: stop, then destroy what used the context
  std::error_code got;
  {
    wq::workqueue q{io, "unrun"};
    REQUIRE(q.enqueue<&owned::w>(std::move(obj)));
    got = q.destroy();  // used to hang here
    CHECK(q.stats().in_flight == 0);
  }
  CHECK(got == (stopped ? wq::errc::executor_stopped : wq::errc::executor_not_running));
  CHECK(warnings.count(wq::errc::items_dropped) == 1);
  CHECK(warnings.size() == 1);  // a notice, not a misuse: a Debug build does not abort
  CHECK(watch.expired());
  io.restart();
  io.run();  // nothing of the queue runs any more
  CHECK(runs.load() == 0);
}

TEST_CASE(
    "workqueue: a queue whose io_context is destroyed with items queued drops them and "
    "releases their references (items_dropped)",
    "[workqueue][destroy][lifetime]") {
  wq_test::warning_catcher warnings;
  wq_test::wait_limit_scope limit{50ms};
  struct owned {
    wq::shared_work w;
    static void run(std::shared_ptr<owned>, wq::id<&owned::w>) noexcept {}
  };
  auto obj = std::make_shared<owned>();
  std::weak_ptr<owned> watch = obj;
  auto io = std::make_unique<boost::asio::io_context>();
  auto q = std::make_unique<wq::workqueue>(*io, "context-dies");
  REQUIRE(q->enqueue<&owned::w>(obj));
  obj.reset();
  CHECK_FALSE(watch.expired());  // the queue holds it
  io.reset();                    // destroys the worker handler unrun (the context goes first)
  CHECK(watch.expired());
  CHECK(warnings.contains(wq::errc::items_dropped));
  auto again = std::make_shared<owned>();
  CHECK(q->enqueue<&owned::w>(again).status == wq::queue_status::rejected);  // nothing runs it
  // Nothing to wait for, and destroy() says that not every item ran (D19).
  CHECK(q->destroy() == wq::errc::executor_stopped);
}

namespace {
struct counted_item {
  std::atomic<int> runs{0};
  wq::work w{wq::fn_ops<&counted_item::fn>};
  static void fn(wq::work* w) noexcept { wq::container_of<&counted_item::w>(w)->runs.fetch_add(1); }
};
}  // namespace

TEST_CASE(
    "workqueue: a queue whose io_context is destroyed after every item ran destroys with no "
    "error (D19)",
    "[workqueue][destroy][lifetime]") {
  // The other side of the case above: executor_stopped from destroy() means items were dropped
  // and is not said merely because the context went first.
  wq_test::warning_catcher warnings;
  counted_item item;
  auto io = std::make_unique<boost::asio::io_context>();
  auto q = std::make_unique<wq::workqueue>(*io, "context-dies-idle");
  REQUIRE(q->queue(item.w) == wq::queue_status::queued);
  io->run();  // runs the item; returns once the queue is idle (no outstanding work left)
  REQUIRE(item.runs.load() == 1);
  io.reset();
  CHECK_FALSE(warnings.contains(wq::errc::items_dropped));
  CHECK_FALSE(q->destroy());
}

namespace {
struct armed_item {
  std::atomic<int> runs{0};
  wq::delayed_work d{wq::fn_ops<&armed_item::fn>};
  static void fn(wq::work* w) noexcept {
    wq::container_of<&armed_item::d>(wq::to_delayed_work(w))->runs.fetch_add(1);
  }
};
}  // namespace

TEST_CASE(
    "workqueue: a queue whose execution context is destroyed with only armed items drops them "
    "then, no timer posts into the destroyed context later (items_dropped)",
    "[workqueue][destroy][lifetime]") {
  // Nothing is queued, so no worker handler exists for the context to destroy: the queue must
  // hear of the context's end from the context itself. A timer due 1 ms later would otherwise
  // post a worker into freed memory (ASan, TSan and the debug build catch it).
  auto check_kind = [](const char* kind, auto make_queue, auto& context) {
    INFO(kind);
    wq_test::warning_catcher warnings;
    armed_item soon;
    armed_item later;
    auto q = make_queue();
    REQUIRE(q->queue_delayed(soon.d, 1ms) == wq::queue_status::queued);
    REQUIRE(q->queue_delayed(later.d, 1h) == wq::queue_status::queued);
    context.reset();  // the context goes first
    CHECK(warnings.count(wq::errc::items_dropped) == 1);
    CHECK_FALSE(soon.d.is_pending());
    CHECK_FALSE(later.d.is_pending());
    CHECK(q->queue_delayed(later.d, 1ms) == wq::queue_status::rejected);  // nothing would run it
    CHECK(q->queue(soon.d) == wq::queue_status::rejected);
    // Nothing to wait for and nothing touches the context; not every item ran (D19).
    CHECK(q->destroy() == wq::errc::executor_stopped);
    CHECK(soon.runs.load() + later.runs.load() == 0);
  };
  {
    auto io = std::make_unique<boost::asio::io_context>();
    check_kind(
        "io_context", [&] { return std::make_unique<wq::workqueue>(*io, "ctx-io"); }, io);
  }
  {
    auto io = std::make_unique<boost::asio::io_context>();
    check_kind(
        "ordered on an io_context (a strand wq makes)",
        [&] { return std::make_unique<wq::ordered_workqueue>(*io, "ctx-ordered"); }, io);
  }
  {
    auto io = std::make_unique<boost::asio::io_context>();
    check_kind(
        "the user's strand",
        [&] {
          return std::make_unique<wq::workqueue>(boost::asio::make_strand(*io), "ctx-strand");
        },
        io);
  }
  {
    auto pool = std::make_unique<boost::asio::thread_pool>(1);
    check_kind(
        "a thread_pool's executor",
        [&] { return std::make_unique<wq::workqueue>(pool->get_executor(), "ctx-pool"); }, pool);
  }
}

// ---- max_active (rules 37, 38) -------------------------------------------------------------

TEST_CASE(
    "workqueue: max_active 0 means 1024, other values are clamped to [1, 2048] with a warning (rule 37)",
    "[workqueue][max_active][rule37]") {
  struct row {
    int requested;
    int expected;
    bool warns;
  };
  const row rows[] = {{0, 1024, false},    {1, 1, false},       {2, 2, false},
                      {1024, 1024, false}, {2048, 2048, false}, {-1, 1, true},
                      {-4096, 1, true},    {2049, 2048, true},  {1 << 30, 2048, true}};
  wq_test::io_runner io{1};
  for (const row& r : rows) {
    INFO("requested max_active " << r.requested);
    {
      wq_test::warning_catcher warnings;
      wq::workqueue q{"clamp", {.max_active = r.requested, .threads = 1}};
      CHECK(q.max_active() == r.expected);
      CHECK(warnings.contains(wq::errc::max_active_clamped) == r.warns);
      if (r.warns) CHECK(warnings.contains("'clamp'"));
    }
    {
      wq_test::warning_catcher warnings;
      wq::workqueue q{io.context(), "clamp-ex", {.max_active = r.requested}};
      CHECK(q.max_active() == r.expected);
      CHECK(warnings.contains(wq::errc::max_active_clamped) == r.warns);
    }
  }
  CHECK(wq::clamp_max_active(0) == wq::default_max_active);
  CHECK(wq::max_max_active == 2048);
}

TEST_CASE(
    "workqueue: an ordered queue forces max_active 1 and warns about other requests (rule 39)",
    "[workqueue][max_active][rule39]") {
  {
    wq_test::warning_catcher warnings;
    wq::ordered_workqueue q{"ord", {.max_active = 4}};
    CHECK(q.max_active() == 1);
    CHECK(warnings.contains(wq::errc::max_active_clamped));
  }
  for (int requested : {0, 1}) {
    wq_test::warning_catcher warnings;
    wq::ordered_workqueue q{"ord", {.max_active = requested}};
    CHECK(q.max_active() == 1);
    CHECK(warnings.messages().empty());
  }
}

TEST_CASE("workqueue: set_max_active applies the constructor's clamping (rule 38)",
          "[workqueue][max_active][rule38][rule37]") {
  wq::workqueue q{"set", {.threads = 2}};
  {
    wq_test::warning_catcher warnings;
    CHECK(q.set_max_active(7) == 7);
    CHECK(q.max_active() == 7);
    CHECK(q.set_max_active(2048) == 2048);
    CHECK(warnings.messages().empty());
  }
  {
    wq_test::warning_catcher warnings;
    CHECK(q.set_max_active(5000) == 2048);
    CHECK(q.max_active() == 2048);
    CHECK(warnings.contains("max_active 5000"));
  }
  {
    wq_test::warning_catcher warnings;
    CHECK(q.set_max_active(-3) == 1);
    CHECK(q.max_active() == 1);
    CHECK(warnings.contains("max_active -3"));
  }
  {
    wq_test::warning_catcher warnings;  // whether 0 warns is checked by the next test
    CHECK(q.set_max_active(0) == 1024);
    CHECK(q.max_active() == 1024);
  }
  CHECK(runs_an_item(q));
}

TEST_CASE(
    "workqueue: set_max_active(0) restores the default without a warning, like the constructor (rule 38)",
    "[workqueue][max_active][rule38]") {
  // workqueue.hpp: set_max_active uses "same clamping as the constructor", where 0 means 1024
  // and only out-of-range values warn.
  wq::workqueue q{"zero", {.max_active = 3, .threads = 1}};
  wq_test::warning_catcher warnings;
  CHECK(q.set_max_active(0) == 1024);
  CHECK(warnings.messages().empty());
}

TEST_CASE("workqueue: set_max_active is refused with a warning on an ordered queue (rule 38)",
          "[workqueue][max_active][rule38]") {
  wq::ordered_workqueue q{"ord"};
  wq_test::warning_catcher warnings;
  CHECK(q.set_max_active(8) == 1);
  CHECK(q.max_active() == 1);
  CHECK(warnings.contains(wq::errc::set_max_active_on_ordered));
}

TEST_CASE("workqueue: never runs more than max_active items at once (rule 37)",
          "[workqueue][max_active][rule37]") {
  SECTION("owned pool with 4 threads") {
    wq::workqueue q{"ma2", {.max_active = 2, .threads = 4}};
    check_max_active_two(q);
  }
  SECTION("user asio::thread_pool with 4 threads") {
    boost::asio::thread_pool pool{4};
    wq::workqueue q{pool, "ma2-ex", {.max_active = 2}};
    check_max_active_two(q);
  }
  SECTION("max_active lowered to 2 by set_max_active") {
    wq::workqueue q{"ma2-set", {.threads = 4}};
    REQUIRE(q.set_max_active(2) == 2);
    check_max_active_two(q);
  }
}

TEST_CASE(
    "workqueue: an unbound queue on a user's 4-thread pool runs max_active items at once (rule 41)",
    "[workqueue][max_active][executor][rule41][rule37]") {
  // flags.hpp: unbound means "items start as soon as a worker is free, up to max_active at
  // once". Four items that each wait for the other three can only finish if all four run at
  // the same time on the pool's four threads.
  boost::asio::thread_pool pool{4};
  wq::workqueue q{pool, "unbound-ex", {.flags = queue_flags::unbound, .max_active = 4}};
  latch rendezvous{4};
  std::atomic<int> met{0};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < 4; ++i) {
    items.push_back(std::make_unique<fn_item>([&](fn_item&) {
      rendezvous.count_down();
      if (rendezvous.wait_for(must_happen)) met.fetch_add(1);
    }));
  }
  for (auto& item : items) REQUIRE(enqueue(q, *item) == queue_status::queued);
  q.drain();
  CHECK(met.load() == 4);
}

TEST_CASE(
    "workqueue: items queued while a worker is on its way post no further workers, the "
    "worker starts the next one itself (rule 41)",
    "[workqueue][executor][rule41]") {
  // Every queueing used to post a worker while slots were free: four items, four thread
  // wake-ups (a timer thread firing items paid one per expiry and fell behind). Now one worker
  // is on its way at a time; when it takes an item and more are runnable, it posts the next.
  // The io_context is not running, so the handlers posted can be counted by poll().
  boost::asio::io_context io;
  wq::workqueue q{
      io,
      "chained",
      {.flags = queue_flags::unbound, .max_active = 4}};  // 4 worker slots on any machine
  std::atomic<int> ran{0};
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < 4; ++i)
    items.push_back(std::make_unique<fn_item>([&](fn_item&) { ran.fetch_add(1); }));
  for (auto& item : items) REQUIRE(enqueue(q, *item) == queue_status::queued);
  // The first handler takes item 0, posts a second worker (three more are runnable), and, as
  // it runs on this one thread, goes on to run the other three itself; the second finds
  // nothing left. Posting per queueing would have run four handlers.
  CHECK(io.poll() == 2);
  CHECK(ran.load() == 4);
  REQUIRE(q.drain() == std::error_code{});
}

TEST_CASE("workqueue: items beyond max_active start in queueing order (rule 37)",
          "[workqueue][max_active][rule37][rule40]") {
  constexpr int total = 40;
  latch first_running{1};
  latch release{1};
  latch done{total};
  std::vector<int> order;  // not atomic: ThreadSanitizer reports two items running at once
  std::vector<std::unique_ptr<fn_item>> items;
  for (int i = 0; i < total; ++i) {
    items.push_back(std::make_unique<fn_item>([&, i](fn_item&) {
      if (i == 0) {
        first_running.count_down();
        (void)release.wait_for(must_happen);
      }
      order.push_back(i);
      done.count_down();
    }));
  }
  wq::workqueue q{"fifo",
                  {.max_active = 1, .threads = 4}};  // not ordered: FIFO comes from max_active
  REQUIRE(enqueue(q, *items[0]) == queue_status::queued);
  REQUIRE(first_running.wait_for(must_happen));
  for (int i = 1; i < total; ++i)
    REQUIRE(enqueue(q, *items[static_cast<std::size_t>(i)]) == queue_status::queued);
  release.count_down();
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  std::vector<int> expected;
  for (int i = 0; i < total; ++i) expected.push_back(i);
  CHECK(order == expected);
}

TEST_CASE("workqueue: raising max_active starts waiting items at once (rule 38)",
          "[workqueue][max_active][rule38]") {
  latch first_running{1};
  latch release{1};
  latch three_started{3};
  std::atomic<bool> first_finished{false};
  std::atomic<int> started_before_first_finished{0};
  fn_item first{[&](fn_item&) {
    first_running.count_down();
    (void)release.wait_for(2 * must_happen);  // outlasts the test's wait below
    first_finished.store(true);
  }};
  std::vector<std::unique_ptr<fn_item>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::make_unique<fn_item>([&](fn_item&) {
      if (!first_finished.load()) started_before_first_finished.fetch_add(1);
      three_started.count_down();
    }));
  }
  wq::workqueue q{"raise", {.max_active = 1, .threads = 4}};
  REQUIRE(enqueue(q, first) == queue_status::queued);
  REQUIRE(first_running.wait_for(must_happen));
  for (auto& item : waiting) REQUIRE(enqueue(q, *item) == queue_status::queued);
  CHECK(three_started.remaining() == 3);  // max_active 1: they wait (rule 37)
  CHECK(q.set_max_active(4) == 4);
  // The first item is still blocked; the three must start now, on the pool's idle threads.
  CHECK(three_started.wait_for(must_happen));
  release.count_down();
  REQUIRE(three_started.wait_for(must_happen));
  q.drain();
  CHECK(started_before_first_finished.load() == 3);
}

TEST_CASE(
    "workqueue: cancelling a waiting active item lets the oldest inactive one run in its "
    "place, and no more (rule 37)",
    "[workqueue][max_active][rule37]") {
  // max_active 2 on 4 threads: `blocker` runs, `victim` waits active, `a` and `b` wait inactive.
  // Cancelling `victim` leaves room for exactly one of them: `a` (the oldest) must start while
  // `blocker` still runs, and `b` must not until something finishes.
  latch blocker_running{1};
  latch release{1};
  latch a_started{1};
  latch b_started{1};
  std::atomic<bool> victim_ran{false};
  latch a_release{1};
  fn_item blocker{[&](fn_item&) {
    blocker_running.count_down();
    (void)release.wait_for(2 * must_happen);  // outlasts the test's waits below
  }};
  fn_item victim{[&](fn_item&) { victim_ran.store(true); }};
  fn_item a{[&](fn_item&) {
    a_started.count_down();
    (void)a_release.wait_for(must_happen);
  }};
  fn_item b{[&](fn_item&) { b_started.count_down(); }};
  wq::workqueue q{"room", {.max_active = 2, .threads = 4}};
  REQUIRE(enqueue(q, blocker) == queue_status::queued);
  REQUIRE(blocker_running.wait_for(must_happen));
  q.pause();  // keep `victim` waiting on the worklist until it is cancelled
  REQUIRE(enqueue(q, victim) == queue_status::queued);
  REQUIRE(enqueue(q, a) == queue_status::queued);
  REQUIRE(enqueue(q, b) == queue_status::queued);
  CHECK(q.stats().queued == 4);
  CHECK(wq::cancel_work(victim.w));
  q.resume();
  CHECK(a_started.wait_for(must_happen));  // in victim's place, while blocker still runs
  // Two active (blocker, a): b stays inactive although two of the four threads are idle.
  CHECK_FALSE(b_started.wait_for(must_not_happen));
  a_release.count_down();
  release.count_down();
  q.drain();
  CHECK(b_started.wait_for(std::chrono::milliseconds(0)));
  CHECK_FALSE(victim_ran.load());
}

TEST_CASE(
    "workqueue: an inactive item whose earlier instance still runs waits for that worker "
    "(rules 10, 37)",
    "[workqueue][max_active][rule37][rule10]") {
  // max_active 2: `x` and `y` run; `x` queued again goes inactive. When `y` finishes, its
  // worker takes `x` off the inactive list, finds it running elsewhere and hands it over: the
  // second instance runs after the first returns, on the first one's worker.
  latch x_running{1};
  latch y_running{1};
  latch x_release{1};
  latch y_release{1};
  latch x_again{1};
  std::atomic<int> x_runs{0};
  std::atomic<int> x_inside{0};
  std::atomic<bool> x_overlapped{false};
  fn_item x{[&](fn_item&) {
    if (x_inside.fetch_add(1) != 0) x_overlapped.store(true);
    if (x_runs.fetch_add(1) == 0) {
      x_running.count_down();
      (void)x_release.wait_for(2 * must_happen);
    } else {
      x_again.count_down();
    }
    x_inside.fetch_sub(1);
  }};
  fn_item y{[&](fn_item&) {
    y_running.count_down();
    (void)y_release.wait_for(must_happen);
  }};
  wq::workqueue q{"handover", {.max_active = 2, .threads = 4}};
  REQUIRE(enqueue(q, x) == queue_status::queued);
  REQUIRE(x_running.wait_for(must_happen));
  REQUIRE(enqueue(q, y) == queue_status::queued);
  REQUIRE(y_running.wait_for(must_happen));
  REQUIRE(enqueue(q, x) == queue_status::queued);  // pending again while running: inactive
  y_release.count_down();
  CHECK_FALSE(x_again.wait_for(must_not_happen));  // not beside its first instance (rule 11)
  x_release.count_down();
  q.drain();
  CHECK(x_runs.load() == 2);
  CHECK_FALSE(x_overlapped.load());
}

// ---- non-reentrancy (rules 9-12) -----------------------------------------------------------

TEST_CASE(
    "workqueue: an item requeued from another thread while it runs never runs concurrently with itself (rules 9, 10)",
    "[workqueue][reentrancy][rule9][rule10][rule2]") {
  constexpr int rounds = 10;
  constexpr int attempts = 5000;
  std::atomic<bool> busy{false};
  std::atomic<int> overlaps{0};
  latch overlap_seen{1};
  std::atomic<int> runs{0};
  int plain_runs = 0;  // not atomic: ThreadSanitizer reports overlapping runs
  std::vector<std::unique_ptr<latch>> running, requeued;
  for (int i = 0; i < rounds; ++i) {
    running.push_back(std::make_unique<latch>(1));
    requeued.push_back(std::make_unique<latch>(1));
  }
  fn_item item{[&](fn_item&) {
    if (busy.exchange(true)) {
      overlaps.fetch_add(1);
      overlap_seen.count_down();
    }
    ++plain_runs;
    const int n = runs.fetch_add(1);
    if (n < rounds) {
      // Deterministic phase: stay running until the test has requeued us, then give a second
      // instance every chance to start on one of the three idle threads.
      running[static_cast<std::size_t>(n)]->count_down();
      (void)requeued[static_cast<std::size_t>(n)]->wait_for(must_happen);
      (void)overlap_seen.wait_for(must_not_happen / 5);
    } else {
      wq_test::hold_for(std::chrono::microseconds(10));
    }
    busy.store(false);
  }};
  wq::workqueue q{"nonreentrant", {.threads = 4}};
  REQUIRE(enqueue(q, item) == queue_status::queued);
  for (int i = 0; i < rounds; ++i) {
    REQUIRE(running[static_cast<std::size_t>(i)]->wait_for(must_happen));
    // The item is running, hence not pending (rule 2): this call queues it again.
    CHECK(enqueue(q, item) == queue_status::queued);
    requeued[static_cast<std::size_t>(i)]->count_down();
  }
  // Stress phase: two threads hammer the item while it runs and finishes.
  std::atomic<int> queued{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&] {
      for (int i = 0; i < attempts; ++i) {
        if (enqueue(q, item) == queue_status::queued) queued.fetch_add(1);
      }
    });
  }
  for (auto& t : producers) t.join();
  q.drain();
  CHECK(overlaps.load() == 0);
  CHECK(plain_runs == 1 + rounds + queued.load());  // every successful call ran exactly once
}

TEST_CASE("workqueue: an item that requeues itself never overlaps its previous run (rules 3, 9)",
          "[workqueue][reentrancy][rule3][rule9]") {
  constexpr int total = 300;
  std::atomic<bool> busy{false};
  std::atomic<int> overlaps{0};
  std::atomic<int> failures{0};
  int plain_runs = 0;  // not atomic: ThreadSanitizer reports overlapping runs
  latch done{1};
  wq::workqueue q{"selfrequeue", {.threads = 4}};
  fn_item item{[&](fn_item& self) {
    if (busy.exchange(true)) overlaps.fetch_add(1);
    const int n = ++plain_runs;
    if (n < total) {
      // Requeue first, then keep running: a free worker picks the new instance up at once and
      // must hand it back instead of running it (rule 10).
      if (enqueue(q, self) != queue_status::queued) failures.fetch_add(1);
      wq_test::hold_for(std::chrono::microseconds(20));
    }
    busy.store(false);
    if (n == total) done.count_down();
  }};
  REQUIRE(enqueue(q, item) == queue_status::queued);
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(overlaps.load() == 0);
  CHECK(failures.load() == 0);
  CHECK(plain_runs == total);
}

TEST_CASE(
    "workqueue: an item handed to a worker that then yields its thread runs once after its run (rules 9 10)",
    "[workqueue][reentrancy][rule9][rule10]") {
  // A worker handler yields its thread after 64 items (fairness, wq::detail::worker_budget).
  // Here the 64th item of the first handler, x, is queued again while it runs, and the queue's
  // second worker, finding it running, hands the new instance to the first (rule 10), which
  // then yields with it: the instance must run once, after the run it waited for (one left
  // behind by the yield would never run, and drain would not return).
  constexpr int fillers_before = 63;
  wq::workqueue q{"handover", {.max_active = 1, .threads = 2}};
  std::atomic<int> fillers_run{0};
  std::vector<std::unique_ptr<fn_item>> fillers;
  for (int i = 0; i < fillers_before; ++i)
    fillers.push_back(std::make_unique<fn_item>([&](fn_item&) { fillers_run.fetch_add(1); }));
  latch x_running{1};
  latch release{1};
  std::atomic<int> x_runs{0};
  std::atomic<bool> busy{false};
  std::atomic<int> overlaps{0};
  fn_item x{[&](fn_item&) {
    if (busy.exchange(true)) overlaps.fetch_add(1);
    if (x_runs.fetch_add(1) == 0) {
      x_running.count_down();
      (void)release.wait_for(must_happen);
    }
    busy.store(false);
  }};
  q.pause();  // rule 45: everything is queued before the first handler starts
  for (auto& f : fillers) REQUIRE(enqueue(q, *f) == queue_status::queued);
  REQUIRE(enqueue(q, x) == queue_status::queued);
  q.resume();
  REQUIRE(x_running.wait_for(must_happen));
  REQUIRE(fillers_run.load() == fillers_before);  // one worker, in order: x is its 64th item
  q.set_max_active(2);
  REQUIRE(enqueue(q, x) == queue_status::queued);  // running, so not pending (rule 2)
  // The second worker took the new instance and handed it to the first (the dump lists it).
  CHECK(wq_test::poll_until(
      [&] { return q.dump().find("1 more instance(s) queued behind it") != std::string::npos; }));
  release.count_down();
  REQUIRE(q.drain() == std::error_code{});
  CHECK(x_runs.load() == 2);
  CHECK(overlaps.load() == 0);
}

TEST_CASE("workqueue: two different items run concurrently (rule 11)",
          "[workqueue][reentrancy][rule11][rule40]") {
  latch rendezvous{2};
  std::atomic<int> met{0};
  auto body = [&](fn_item&) {
    rendezvous.count_down();
    if (rendezvous.wait_for(must_happen)) met.fetch_add(1);
  };
  fn_item a{body};
  fn_item b{body};
  wq::workqueue q{"pair", {.threads = 4}};
  REQUIRE(enqueue(q, a) == queue_status::queued);
  REQUIRE(enqueue(q, b) == queue_status::queued);
  q.drain();
  CHECK(met.load() == 2);  // each waited for the other: they ran at the same time
}

TEST_CASE(
    "workqueue: identity is address plus function: reused memory waits only with the same function (rule 11)",
    "[workqueue][reentrancy][rule11][rule4]") {
  alignas(std::max_align_t) unsigned char
      buffer[sizeof(reuse_same) > sizeof(reuse_other) ? sizeof(reuse_same) : sizeof(reuse_other)];
  reuse_env env;
  wq::workqueue q{"identity", {.threads = 4}};
  auto* first = ::new (static_cast<void*>(buffer)) reuse_same(&env, true);
  REQUIRE(q.enqueue<&reuse_same::w>(first).status == queue_status::queued);
  REQUIRE(env.first_running.wait_for(must_happen));
  // The first item destroyed itself and is still running; build a new item in its memory.

  SECTION("same function: the new item is serialised behind the old run (false dependency)") {
    auto* second = ::new (static_cast<void*>(buffer)) reuse_same(&env, false);
    REQUIRE(static_cast<void*>(&second->w) == static_cast<void*>(buffer));
    REQUIRE(q.enqueue<&reuse_same::w>(second).status == queue_status::queued);
    CHECK_FALSE(env.second_started.wait_for(must_not_happen));
    env.release.count_down();
    REQUIRE(env.second_started.wait_for(must_happen));
    q.drain();
    CHECK(env.second_saw_first_done.load());
  }
  SECTION("another function: the new item runs at once") {
    auto* second = ::new (static_cast<void*>(buffer)) reuse_other(&env);
    REQUIRE(static_cast<void*>(&second->w) == static_cast<void*>(buffer));
    REQUIRE(q.enqueue<&reuse_other::w>(second).status == queue_status::queued);
    CHECK(env.second_started.wait_for(must_happen));
    env.release.count_down();
    q.drain();
    CHECK_FALSE(env.second_saw_first_done.load());
  }
  env.release.count_down();
  q.drain();
}

TEST_CASE("workqueue: an item running on one queue may run concurrently on another (rule 12)",
          "[workqueue][reentrancy][rule12]") {
  // Non-reentrancy is per queue (rule 9 condition b): queueing a running item on a second queue
  // may start a second, concurrent instance. Each instance below waits for the other, so the
  // test passes only if they really ran at the same time.
  latch first_running{1};
  latch rendezvous{2};
  std::atomic<int> met{0};
  fn_item item{[&](fn_item&) {
    first_running.count_down();
    rendezvous.count_down();
    if (rendezvous.wait_for(must_happen)) met.fetch_add(1);
  }};
  wq::workqueue qa{"a", {.threads = 2}};
  wq::workqueue qb{"b", {.threads = 2}};
  REQUIRE(enqueue(qb, item) == queue_status::queued);
  REQUIRE(first_running.wait_for(must_happen));
  REQUIRE(enqueue(qa, item) == queue_status::queued);
  qa.drain();
  qb.drain();
  CHECK(met.load() == 2);
}

// ---- queueing results (rules 1, 14) ---------------------------------------------------------

TEST_CASE("workqueue: an item pending on one queue is not queued on another (rule 1)",
          "[workqueue][rule1]") {
  latch gate_running{1};
  latch release{1};
  fn_item gate{[&](fn_item&) {
    gate_running.count_down();
    (void)release.wait_for(must_happen);
  }};
  boost::intrusive_ptr<ref_item> item{new ref_item};
  wq::workqueue qa{"a", {.max_active = 1, .threads = 2}};
  wq::workqueue qb{"b", {.threads = 2}};
  REQUIRE(enqueue(qa, gate) == queue_status::queued);
  REQUIRE(gate_running.wait_for(must_happen));
  REQUIRE(qa.enqueue<&ref_item::w>(item));  // inactive behind the gate (max_active 1): pending
  CHECK(item->use_count() == 2);            // the test's reference and the queue's
  CHECK(wq::work_pending(item->w));

  auto on_b = qb.enqueue<&ref_item::w>(item);
  CHECK(on_b.status == queue_status::already_pending);
  CHECK(on_b.pointer == item);  // the caller's reference is handed back
  on_b.pointer.reset();
  auto on_a = qa.enqueue<&ref_item::w>(item);
  CHECK(on_a.status == queue_status::already_pending);
  on_a.pointer.reset();
  CHECK(item->use_count() == 2);

  release.count_down();
  qa.drain();
  qb.drain();
  CHECK(item->runs.load() == 1);
  CHECK(item->use_count() == 1);
  CHECK_FALSE(item->w.is_pending());
}

TEST_CASE(
    "workqueue: queue_work returns true when it queues and false when the item is pending (rule 14)",
    "[workqueue][rule14][rule1][rule2]") {
  c_item item;
  wq::workqueue q{"cstyle", {.threads = 2}};
  REQUIRE(wq::queue_work(q, item.w));
  REQUIRE(item.first_running.wait_for(must_happen));
  CHECK_FALSE(item.w.is_pending());  // cleared before the function started (rule 2)
  CHECK(wq::queue_work(q, item.w));  // only running: queued again
  CHECK(item.w.is_pending());
  CHECK_FALSE(wq::queue_work(q, item.w));  // pending: nothing changes (rule 1)
  CHECK(q.queue(item.w) == queue_status::already_pending);
  item.release.count_down();
  REQUIRE(item.second_done.wait_for(must_happen));
  q.drain();
  CHECK(item.runs.load() == 2);
}

TEST_CASE(
    "workqueue: queue_delayed_work returns false for a pending item and keeps its deadline (rules 14, 18)",
    "[workqueue][rule14][rule18][delayed]") {
  wq::delayed_work item{wq::fn_ops<&c_delayed_fn>};
  c_delayed_runs.store(0);
  wq_test::warning_catcher warnings;
  wq::workqueue q{"cdelayed", {.threads = 1}};
  REQUIRE(wq::queue_delayed_work(q, item, 1h));
  const auto deadline = item.deadline();
  CHECK(wq::delayed_work_pending(item));
  CHECK_FALSE(wq::queue_delayed_work(q, item, 1ms));
  CHECK(q.queue_delayed(item, 0ms) == queue_status::already_pending);
  CHECK_FALSE(wq::queue_work(q, item));
  CHECK(item.deadline() == deadline);
  q.destroy();  // cancels the armed item (rule 50)
  CHECK(q.cancelled_on_destroy() == 1);
  CHECK(c_delayed_runs.load() == 0);
  CHECK_FALSE(item.is_pending());
}

TEMPLATE_TEST_CASE(
    "workqueue: enqueue and enqueue_delayed of a null or moved-from pointer "
    "return null_pointer, report it, queue nothing, and the queue keeps working "
    "(§5.10)",
    "[workqueue][null_pointer][misuse]", wq_test::shared_kind, wq_test::unique_kind,
    wq_test::intrusive_kind, wq_test::raw_kind) {
  // Refused in every build type (not a WQ_ASSERT followed by a null dereference): the Release
  // build runs this test too.
  using kind = TestType;
  using obj = wq_test::typed_obj<kind>;
  using pointer = typename obj::pointer;
  wq_test::warning_catcher warnings;
  wq::workqueue q{"null-pointer"};
  auto h = kind::template make<obj>();
  obj& o = *h;
  o.keep = &h;  // a unique_ptr's run hands its pointer back here

  auto refused = [&](wq::enqueue_result<pointer> r) {
    CHECK(r.status == queue_status::null_pointer);
    CHECK_FALSE(r);
    CHECK(r.pointer == nullptr);  // handed back, still null
  };
  SECTION("a null pointer") {
    refused(q.enqueue<&obj::w>(pointer{}));
    refused(q.enqueue<&obj::d>(pointer{}));  // a delayed member, no delay
    refused(q.enqueue_delayed<&obj::d>(pointer{}, 10ms));
    refused(q.enqueue_delayed<&obj::d>(pointer{}, 0ms));
    refused(q.enqueue_delayed<&obj::d>(pointer{}, wq::jiffies{5}));
    CHECK(warnings.count(wq::errc::null_pointer) == 5);
  }
  if constexpr (!std::is_pointer_v<pointer>) {  // a moved-from raw pointer is not null
    SECTION("a moved-from pointer") {
      pointer p = kind::give(h);
      pointer kept = std::move(p);
      refused(q.enqueue<&obj::w>(std::move(p)));  // NOLINT(bugprone-use-after-move): the point
      refused(q.enqueue_delayed<&obj::d>(std::move(p), 10ms));  // NOLINT(bugprone-use-after-move)
      CHECK(kind::take_back(h, std::move(kept)) == &o);
      CHECK(warnings.count(wq::errc::null_pointer) == 2);
    }
  }
  CHECK(warnings.contains("null-pointer"));  // the report names the queue
  CHECK(warnings.size() == static_cast<std::size_t>(warnings.count(wq::errc::null_pointer)));
  CHECK(q.stats().queued == 0);
  CHECK(q.stats().armed == 0);
  CHECK_FALSE(o.w.is_pending());
  CHECK_FALSE(o.d.is_pending());

  // The queue keeps working, and so does the object's item.
  REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
  CHECK(q.flush() == std::error_code{});
  CHECK(o.runs.load() == 1);
  CHECK(q.stats().queued == 1);
  CHECK(kind::owners(h) == 1);
}

// An item built with a C-style function (wq::fn_ops) whose class also has typed run()s. The
// typed calls would replace the function given at construction with run(): refused instead.
struct c_bound_obj {
  std::atomic<int> c_runs{0};
  std::atomic<int> typed_runs{0};
  wq::work w{wq::fn_ops<&c_bound_obj::c_fn>};
  wq::delayed_work d{wq::fn_ops<&c_bound_obj::c_fn_d>};
  static void c_fn(wq::work* item) noexcept {
    wq::container_of<&c_bound_obj::w>(item)->c_runs.fetch_add(1);
  }
  static void c_fn_d(wq::work* item) noexcept {
    wq::container_of<&c_bound_obj::d>(wq::to_delayed_work(item))->c_runs.fetch_add(1);
  }
  static void run(c_bound_obj* self, wq::id<&c_bound_obj::w>) noexcept {
    self->typed_runs.fetch_add(1);
  }
  static void run(std::unique_ptr<c_bound_obj> self, wq::id<&c_bound_obj::d>) noexcept {
    self->typed_runs.fetch_add(1);
    (void)self.release();  // the test's `owner` frees it (never reached: the call is refused)
  }
};

TEST_CASE(
    "workqueue: typed queueing of an item built with a C-style function is rejected and "
    "reported and the function stays bound",
    "[workqueue][c_style][misuse]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"c-bound", {.threads = 2}};
  auto owner = std::make_unique<c_bound_obj>();
  c_bound_obj& o = *owner;
  // Pending from a C-style call or idle, the typed calls refuse and hand the pointer back.
  REQUIRE(q.queue_delayed(o.d, 1h) == queue_status::queued);
  auto r1 = q.enqueue<&c_bound_obj::w>(&o);
  CHECK(r1.status == queue_status::rejected);
  CHECK(r1.pointer == &o);
  auto r2 = q.enqueue_delayed<&c_bound_obj::d>(std::move(owner), 0ms);
  CHECK(r2.status == queue_status::rejected);
  REQUIRE(r2.pointer.get() == &o);
  owner = std::move(r2.pointer);
  auto r3 = wq::mod_delayed_work<&c_bound_obj::d>(q, std::move(owner), 0ms);
  CHECK_FALSE(r3.was_pending);
  CHECK(r3.status == queue_status::rejected);
  REQUIRE(r3.pointer.get() == &o);
  owner = std::move(r3.pointer);
  CHECK(warnings.count(wq::errc::typed_on_c_style_item) == 3);
  CHECK(warnings.contains("c_fn"));  // the message names the function that stays bound
  CHECK(warnings.size() == 3);
  CHECK(o.d.is_pending());  // the C-style instance is untouched
  // The C-style calls still run the functions given at construction.
  CHECK(wq::mod_delayed_work(q, o.d, 0ms));
  CHECK(wq::queue_work(q, o.w));
  CHECK(q.flush() == std::error_code{});
  CHECK(o.c_runs.load() == 2);
  CHECK(o.typed_runs.load() == 0);
}

TEMPLATE_TEST_CASE(
    "workqueue: C-style queueing of an item bound with an owning pointer is "
    "rejected and reported, never run without its reference",
    "[workqueue][c_style][ownership][misuse]", wq_test::shared_kind, wq_test::unique_kind,
    wq_test::intrusive_kind) {
  // After a typed enqueue with an owning pointer the item's run takes back a reference (the
  // object of a unique_ptr or intrusive_ptr, the shared_ptr in the slot). C-style queueing
  // stores none: running it would adopt the object a second time or read an empty slot. On a
  // shared_work the calls do not even compile (compile-fail: untyped_*_on_shared_item), so it
  // is reached here through a `work&`, as code holding only the item would.
  using kind = TestType;
  using obj = wq_test::typed_obj<kind>;
  wq_test::warning_catcher warnings;
  wq::workqueue q{"c-style-owning"};
  auto h = kind::template make<obj>();
  obj& o = *h;
  o.keep = &h;  // a unique_ptr's run hands its pointer back here
  wq::work& w = o.w;
  wq::delayed_work& d = o.d;

  // Bind owning ops to both members with a typed enqueue, and let them run.
  REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
  CHECK(q.flush() == std::error_code{});
  REQUIRE(q.enqueue_delayed<&obj::d>(kind::give(h), 0ms).queued());
  CHECK(q.flush() == std::error_code{});
  REQUIRE(o.runs.load() == 2);
  const auto queued_before = q.stats().queued;

  CHECK(q.queue(w) == queue_status::rejected);
  CHECK_FALSE(wq::queue_work(q, w));
  CHECK(q.queue_delayed(d, 10ms) == queue_status::rejected);
  CHECK(q.queue_delayed(d, 0ms) == queue_status::rejected);
  CHECK_FALSE(wq::queue_delayed_work(q, d, wq::jiffies{1}));
  CHECK(warnings.count(wq::errc::untyped_on_owning_item) == 5);
  CHECK(warnings.contains("c-style-owning"));
  CHECK(warnings.size() == 5);
  CHECK_FALSE(w.is_pending());
  CHECK_FALSE(d.is_pending());
  CHECK(q.flush() == std::error_code{});
  CHECK(o.runs.load() == 2);  // nothing ran
  CHECK(q.stats().queued == queued_before);
  CHECK(kind::owners(h) == 1);

  // The typed form still works.
  REQUIRE(q.enqueue<&obj::w>(kind::give(h)).queued());
  CHECK(q.flush() == std::error_code{});
  CHECK(o.runs.load() == 3);
  CHECK(kind::owners(h) == 1);
}

TEST_CASE("workqueue: C-style queueing of an item bound with a raw pointer is allowed",
          "[workqueue][c_style]") {
  // A raw pointer owns nothing: run recovers the object from the item, so the C-style path
  // (the kernel's queue_work on a typed item) stays available.
  using obj = wq_test::typed_obj<wq_test::raw_kind>;
  wq::workqueue q{"c-style-raw"};
  obj o;
  REQUIRE(q.enqueue<&obj::w>(&o).queued());
  CHECK(q.flush() == std::error_code{});
  CHECK(q.queue(o.w) == queue_status::queued);
  CHECK(q.flush() == std::error_code{});
  REQUIRE(q.enqueue_delayed<&obj::d>(&o, 0ms).queued());  // binds the delayed member's ops
  CHECK(q.flush() == std::error_code{});
  CHECK(wq::queue_delayed_work(q, o.d, 0ms));
  CHECK(q.flush() == std::error_code{});
  CHECK(o.runs.load() == 4);
}

TEST_CASE("workqueue: an item without a work function is not queued", "[workqueue][rule14]") {
  wq::work bare;
  wq::delayed_work bare_delayed;
  wq::workqueue q{"bare", {.threads = 1}};
  wq_test::warning_catcher warnings;
  CHECK(q.queue(bare) == queue_status::unbound);
  CHECK_FALSE(wq::queue_work(q, bare));
  CHECK_FALSE(bare.is_pending());
  CHECK(q.queue_delayed(bare_delayed, 10ms) == queue_status::unbound);
  CHECK_FALSE(wq::queue_delayed_work(q, bare_delayed, 0ms));
  CHECK_FALSE(bare_delayed.is_pending());
  CHECK(warnings.contains(wq::errc::no_work_function));
}

// ---- drain (rule 49) ------------------------------------------------------------------------

TEST_CASE(
    "workqueue: drain runs chained requeues, rejects outside queueing (§5.7: rejected, not dropped), then reopens (rule 49)",
    "[workqueue][drain][rule49][rule17]") {
  constexpr int chain = 5;
  latch x_running{1};
  latch release{1};
  std::atomic<int> runs{0};
  std::atomic<int> chain_failures{0};
  std::atomic<int> drains_returned{0};
  std::atomic<int> runs_at_first_return{-1};
  fn_item probe{[](fn_item&) {}};
  wq::delayed_work c_probe{wq::fn_ops<&c_delayed_fn>};
  fn_delayed_item delayed_probe{[](fn_delayed_item&) {}};
  wq::workqueue q{"drain", {.threads = 4}};
  fn_item x{[&](fn_item& self) {
    const int n = runs.fetch_add(1) + 1;
    if (n == 1) {
      x_running.count_down();
      (void)release.wait_for(must_happen);
    }
    // Chained queueing (from an item running on the draining queue) is accepted (rule 49).
    if (n <= chain && enqueue(q, self) != queue_status::queued) chain_failures.fetch_add(1);
  }};
  REQUIRE(enqueue(q, x) == queue_status::queued);
  REQUIRE(x_running.wait_for(must_happen));
  // Two concurrent drainers (rule 49: they are counted).
  std::vector<std::jthread> drainers;
  for (int i = 0; i < 2; ++i) {
    drainers.emplace_back([&] {
      q.drain();
      int expected = -1;
      runs_at_first_return.compare_exchange_strong(expected, runs.load());
      drains_returned.fetch_add(1);
    });
  }
  // x holds the drain open until the outside attempt below has been made. Attempts before the
  // drain starts are accepted (the probe then runs on another thread); once one is rejected the
  // queue is draining.
  REQUIRE(wq_test::poll_until([&] { return enqueue(q, probe) == queue_status::rejected; }));
  CHECK_FALSE(probe.w.is_pending());  // rejected: the claim was given back
  CHECK_FALSE(wq::queue_work(q, c_probe));
  CHECK(q.queue(c_probe) == queue_status::rejected);
  CHECK(wq_test::enqueue_delayed(q, delayed_probe, 1ms) == queue_status::rejected);
  CHECK_FALSE(delayed_probe.d.is_pending());
  CHECK(drains_returned.load() == 0);  // x is still running
  release.count_down();
  for (auto& t : drainers) t.join();
  CHECK(chain_failures.load() == 0);
  CHECK(runs_at_first_return.load() == chain + 1);  // the whole chain ran before drain returned

  // The queue is usable again once the last drainer has finished.
  latch after{1};
  fn_item later{[&](fn_item&) { after.count_down(); }};
  CHECK(enqueue(q, later) == queue_status::queued);
  CHECK(after.wait_for(must_happen));
  q.drain();
}

TEST_CASE("workqueue: drain does not wait for an armed delayed item (rule 49)",
          "[workqueue][drain][rule49][delayed]") {
  std::atomic<int> runs{0};
  fn_delayed_item item{[&](fn_delayed_item&) { runs.fetch_add(1); }};
  wq_test::warning_catcher warnings;
  wq::workqueue q{"drain-armed", {.threads = 2}};
  REQUIRE(wq_test::enqueue_delayed(q, item, 1h) == queue_status::queued);
  const auto t0 = std::chrono::steady_clock::now();
  q.drain();
  CHECK(std::chrono::steady_clock::now() - t0 < must_happen);
  CHECK(item.d.is_pending());
  CHECK(runs.load() == 0);
  q.destroy();
  CHECK(q.cancelled_on_destroy() == 1);
  CHECK_FALSE(item.d.is_pending());
}

TEST_CASE("workqueue: a delayed item that fires during a drain runs after the drain (rule 49)",
          "[workqueue][drain][rule49][delayed][test_clock]") {
  // Virtual time (wq/test_clock.hpp): the item's deadline comes inside advance(), while the
  // drain is known to be in progress.
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
  latch item_ran{1};
  std::atomic<bool> item_saw_x_finished{false};
  fn_delayed_item item{[&](fn_delayed_item&) {
    item_saw_x_finished.store(x_finished.load());
    item_ran.count_down();
  }};
  wq::workqueue q{"drain-fire", {.threads = 4}};
  REQUIRE(enqueue(q, x) == queue_status::queued);
  REQUIRE(x_running.wait_for(must_happen));
  REQUIRE(wq_test::enqueue_delayed(q, item, 300ms) == queue_status::queued);
  std::jthread drainer([&] { q.drain(); });
  REQUIRE(wq_test::poll_until([&] { return enqueue(q, probe) == queue_status::rejected; }));
  CHECK(clock.advance(300ms) == 1);
  // The item has fired during the drain: held back, still pending, not run.
  CHECK(item.d.is_pending());
  CHECK(q.stats().armed == 0);
  CHECK(item_ran.remaining() == 1);
  release.count_down();
  drainer.join();
  REQUIRE(item_ran.wait_for(must_happen));  // queued when the drain ended
  CHECK(item_saw_x_finished.load());
  q.drain();
}

// ---- destroy (rule 50) ----------------------------------------------------------------------

TEST_CASE("workqueue: the destructor runs every queued item and frees it (rule 50)",
          "[workqueue][destroy][rule50]") {
  constexpr int n = 20;
  wq_test::lifetime_counter life;
  std::atomic<int> runs{0};
  latch gate{1};
  fn_item blocker{[&](fn_item&) { (void)gate.wait_for(must_happen); }};
  far_item far;
  std::optional<wq_test::warning_catcher> destroying;
  destroying.emplace(wq::errc::armed_items_cancelled);
  {
    std::jthread opener;
    wq::workqueue q{"dtor", {.max_active = 1, .threads = 2}};
    REQUIRE(enqueue(q, blocker) == queue_status::queued);
    for (int i = 0; i < n; ++i) {
      REQUIRE(q.enqueue<&owned_item::w>(std::make_unique<owned_item>(&life, &runs)));
    }
    REQUIRE(q.enqueue_delayed<&far_item::d>(&far, 1h));
    CHECK(runs.load() == 0);  // all behind the blocker (max_active 1)
    CHECK(life.alive() == n);
    // The destructor warns about the armed item once it has started; that opens the blocker.
    opener = std::jthread([&] {
      if (destroying->fired.wait_for(must_happen)) gate.count_down();
    });
  }  // ~workqueue, then opener joins
  destroying.reset();
  CHECK(runs.load() == n);
  CHECK(life.alive() == 0);
  CHECK_FALSE(far.d.is_pending());
}

TEST_CASE(
    "workqueue: queueing on a destroyed queue is rejected and hands the pointer back (rule 50, §5.7)",
    "[workqueue][destroy][rule50][rule17]") {
  wq_test::lifetime_counter life;
  std::atomic<int> runs{0};
  auto shared = std::make_shared<shared_item>();
  boost::intrusive_ptr<ref_item> ref{new ref_item};
  c_item cw;
  wq::delayed_work cd{wq::fn_ops<&c_delayed_fn>};
  latch raw_ran{1};
  fn_item raw{[&](fn_item&) { raw_ran.count_down(); }};
  wq::workqueue q{"gone", {.threads = 2}};
  q.destroy();
  q.destroy();  // idempotent

  auto u = q.enqueue<&owned_item::w>(std::make_unique<owned_item>(&life, &runs));
  CHECK(u.status == queue_status::rejected);
  CHECK_FALSE(u);
  REQUIRE(u.pointer != nullptr);  // handed back, not leaked, not freed
  CHECK_FALSE(u.pointer->w.is_pending());
  CHECK(life.alive() == 1);
  u.pointer.reset();
  CHECK(life.alive() == 0);

  auto ud =
      q.enqueue_delayed<&unique_delayed::d>(std::make_unique<unique_delayed>(&life, &runs), 5ms);
  CHECK(ud.status == queue_status::rejected);
  REQUIRE(ud.pointer != nullptr);
  ud.pointer.reset();
  CHECK(life.alive() == 0);

  auto s = q.enqueue<&shared_item::w>(shared);
  CHECK(s.status == queue_status::rejected);
  CHECK(s.pointer == shared);
  s.pointer.reset();
  auto sd = q.enqueue_delayed<&shared_item::d>(shared, 0ms);
  CHECK(sd.status == queue_status::rejected);
  sd.pointer.reset();
  CHECK(shared.use_count() == 1);

  auto r = q.enqueue<&ref_item::w>(ref);
  CHECK(r.status == queue_status::rejected);
  CHECK(r.pointer == ref);
  r.pointer.reset();
  CHECK(ref->use_count() == 1);

  CHECK(enqueue(q, raw) == queue_status::rejected);
  CHECK_FALSE(wq::queue_work(q, cw.w));
  CHECK(q.queue(cw.w) == queue_status::rejected);
  CHECK_FALSE(wq::queue_delayed_work(q, cd, 1ms));
  CHECK_FALSE(cw.w.is_pending());
  CHECK_FALSE(cd.is_pending());
  q.drain();  // returns at once on a destroyed queue
  CHECK(runs.load() == 0);
  CHECK(shared->runs.load() == 0);
  CHECK(ref->runs.load() == 0);

  // Items refused by a destroyed queue can be queued elsewhere.
  wq::workqueue elsewhere{"elsewhere", {.threads = 1}};
  CHECK(enqueue(elsewhere, raw) == queue_status::queued);
  CHECK(raw_ran.wait_for(must_happen));
  elsewhere.drain();
}

TEST_CASE(
    "workqueue: destroy cancels armed delayed items and releases their references without waiting (rule 50)",
    "[workqueue][destroy][rule50][delayed]") {
  wq_test::lifetime_counter life;
  std::atomic<int> runs{0};
  auto shared = std::make_shared<shared_item>();
  boost::intrusive_ptr<ref_item> ref{new ref_item};
  wq::delayed_work cd{wq::fn_ops<&c_delayed_fn>};
  c_delayed_runs.store(0);
  wq_test::warning_catcher warnings;
  wq::workqueue q{"doomed", {.threads = 2}};
  REQUIRE(q.enqueue_delayed<&shared_item::d>(shared, 1h));
  REQUIRE(q.enqueue_delayed<&ref_item::d>(ref, 1h));
  REQUIRE(
      q.enqueue_delayed<&unique_delayed::d>(std::make_unique<unique_delayed>(&life, &runs), 1h));
  REQUIRE(wq::queue_delayed_work(q, cd, 1h));
  CHECK(shared.use_count() == 2);
  CHECK(ref->use_count() == 2);
  CHECK(life.alive() == 1);
  const auto t0 = std::chrono::steady_clock::now();
  q.destroy();
  CHECK(std::chrono::steady_clock::now() - t0 < must_happen);  // did not wait for the timers
  CHECK(q.cancelled_on_destroy() == 4);
  CHECK(warnings.contains("4 armed item(s) cancelled"));
  CHECK(shared.use_count() == 1);
  CHECK(ref->use_count() == 1);
  CHECK(life.alive() == 0);
  CHECK_FALSE(shared->d.is_pending());
  CHECK_FALSE(ref->d.is_pending());
  CHECK_FALSE(cd.is_pending());
  CHECK(runs.load() + shared->runs.load() + ref->runs.load() + c_delayed_runs.load() == 0);
}

TEST_CASE("workqueue: destroy runs the chains that draining items queue (rule 50)",
          "[workqueue][destroy][rule50][rule49]") {
  // Rule 50: destroy drains, and "all currently pending items and their chains run to
  // completion"; workqueue.hpp: "every queued item and its chains run to completion".
  constexpr int chain = 5;
  latch x_running{1};
  latch gate{1};
  std::atomic<int> runs{0};
  std::atomic<int> chain_failures{0};
  far_item far;
  wq_test::warning_catcher destroying{wq::errc::armed_items_cancelled};
  wq::workqueue q{"chain", {.threads = 2}};
  fn_item x{[&](fn_item& self) {
    const int n = runs.fetch_add(1) + 1;
    if (n == 1) {
      x_running.count_down();
      (void)gate.wait_for(must_happen);
    }
    if (n <= chain && enqueue(q, self) != queue_status::queued) chain_failures.fetch_add(1);
  }};
  REQUIRE(enqueue(q, x) == queue_status::queued);
  REQUIRE(x_running.wait_for(must_happen));
  REQUIRE(q.enqueue_delayed<&far_item::d>(&far, 1h));
  {
    // destroy() warns about the armed item once it has begun; only then is x released.
    std::jthread opener([&] {
      if (destroying.fired.wait_for(must_happen)) gate.count_down();
    });
    q.destroy();
  }
  CHECK(chain_failures.load() == 0);
  CHECK(runs.load() == chain + 1);
}

TEST_CASE(
    "workqueue: destroy() from the only item in flight destroys the queue at once, "
    "without a report (issue 13, point 6)",
    "[workqueue][destroy][rule50]") {
  wq_test::warning_catcher warnings;
  latch done{1};
  std::error_code got = wq::errc::wait_on_own_queue;
  wq::workqueue q{"self-idle", {.threads = 2}};
  fn_item later{[](fn_item&) {}};
  fn_item x{[&](fn_item&) {
    got = q.destroy();
    done.count_down();
  }};
  REQUIRE(enqueue(q, x) == queue_status::queued);
  REQUIRE(done.wait_for(must_happen));
  CHECK(got == std::error_code{});
  CHECK(warnings.size() == 0);
  CHECK(enqueue(q, later) == queue_status::rejected);
}

TEST_CASE(
    "workqueue: drain and destroy called from the queue's own item are refused with a warning",
    "[workqueue][drain][destroy][rule49][rule50]") {
  wq_test::warning_catcher warnings;
  latch done{1};
  latch release{1};
  wq::workqueue q{"self", {.threads = 2}};
  fn_item blocker{[&](fn_item&) { (void)release.wait_for(must_happen); }};
  REQUIRE(enqueue(q, blocker) == queue_status::queued);
  fn_item x{[&](fn_item&) {
    q.drain();    // would wait for itself
    q.destroy();  // likewise (another item is in flight)
    done.count_down();
  }};
  REQUIRE(enqueue(q, x) == queue_status::queued);
  REQUIRE(done.wait_for(must_happen));  // neither call hung
  release.count_down();
  q.drain();
  CHECK(warnings.contains("drain of queue 'self'"));
  CHECK(warnings.contains("destroy of queue 'self'"));
  // The queue was not destroyed.
  CHECK(runs_an_item(q));
  q.destroy();
  CHECK(enqueue(q, x) == queue_status::rejected);
}

TEST_CASE("workqueue: current_work names the running item on its thread only (rule 51)",
          "[workqueue][rule51]") {
  latch inner_done{1};
  std::atomic<bool> outer_ok{false};
  std::atomic<bool> inner_ok{false};
  std::atomic<bool> outer_after_ok{false};
  wq::workqueue q1{"outer", {.threads = 1}};
  wq::workqueue q2{"inner", {.threads = 1}};
  fn_item inner{[&](fn_item& self) {
    inner_ok.store(wq::current_work() == &self.w);
    inner_done.count_down();
  }};
  fn_item outer{[&](fn_item& self) {
    outer_ok.store(wq::current_work() == &self.w);
    (void)enqueue(q2, inner);
    (void)inner_done.wait_for(must_happen);
    outer_after_ok.store(wq::current_work() == &self.w);
  }};
  CHECK(wq::current_work() == nullptr);
  REQUIRE(enqueue(q1, outer) == queue_status::queued);
  REQUIRE(inner_done.wait_for(must_happen));
  q1.drain();
  q2.drain();
  CHECK(outer_ok.load());
  CHECK(inner_ok.load());
  CHECK(outer_after_ok.load());
  CHECK(wq::current_work() == nullptr);
}

// ---- queue flush (rule 26) and pause/resume (rule 45) ------------------------------------

namespace {

struct flush_item {
  wq::work w;
  std::atomic<int> runs{0};
  std::atomic<bool> requeue{false};
  wq::workqueue* queue = nullptr;
  latch* gate = nullptr;  // if set, the run waits for it
  static void run(flush_item* self, wq::id<&flush_item::w>) noexcept {
    if (self->gate != nullptr) (void)self->gate->wait_for();
    self->runs.fetch_add(1);
    if (self->requeue.load()) (void)self->queue->enqueue<&flush_item::w>(self);
  }
};

}  // namespace

TEST_CASE("workqueue: flush waits for every item queued before the call (rule 26)",
          "[workqueue][flush][rule26]") {
  wq::workqueue q{"flush_snapshot"};
  std::vector<flush_item> items(2000);
  for (auto& it : items) REQUIRE(q.enqueue<&flush_item::w>(&it));
  q.flush();
  for (auto& it : items) REQUIRE(it.runs.load() == 1);
}

TEST_CASE("workqueue: a self-requeueing item cannot livelock flush (rule 26)",
          "[workqueue][flush][rule26]") {
  wq::workqueue q{"flush_livelock"};
  flush_item forever;
  forever.queue = &q;
  forever.requeue = true;
  REQUIRE(q.enqueue<&flush_item::w>(&forever));
  // Each flush returns although the item is pending again every time it has run.
  for (int i = 0; i < 100; ++i) q.flush();
  const int seen = forever.runs.load();
  REQUIRE(seen >= 100);  // every flush waited for at least one instance
  forever.requeue = false;
  (void)wq::flush_work(forever.w);
  REQUIRE_FALSE(forever.w.is_pending());
  q.flush();
}

TEST_CASE(
    "workqueue: flush waits for a running item but not for items queued after it "
    "started (rule 26)",
    "[workqueue][flush][rule26]") {
  wq::workqueue q{"flush_running", {.threads = 2}};
  latch gate(1);
  flush_item slow;
  slow.gate = &gate;
  REQUIRE(q.enqueue<&flush_item::w>(&slow));
  std::atomic<bool> flushed{false};
  std::thread flusher([&] {
    q.flush();
    flushed = true;
  });
  // The flush cannot finish while the gated item runs; bounded observation with idle threads.
  std::this_thread::sleep_for(50ms);
  REQUIRE_FALSE(flushed.load());
  gate.count_down();
  flusher.join();
  REQUIRE(slow.runs.load() == 1);
}

TEST_CASE(
    "workqueue: concurrent flushers each return while a producer keeps queueing "
    "(rule 26)",
    "[workqueue][flush][rule26][stress]") {
  wq::workqueue q{"flush_concurrent"};
  std::vector<flush_item> items(256);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    while (!stop.load())
      for (auto& it : items) (void)q.enqueue<&flush_item::w>(&it);
  });
  std::vector<std::thread> flushers;
  for (int t = 0; t < 3; ++t)
    flushers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) q.flush();
    });
  for (auto& t : flushers) t.join();
  stop = true;
  producer.join();
  q.flush();
  for (auto& it : items) REQUIRE_FALSE(it.w.is_pending());
}

TEST_CASE("workqueue: flush from one of the queue's own items is refused, not a hang (§5.2)",
          "[workqueue][flush][misuse]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"flush_self"};
  struct self_flusher {
    wq::work w;
    wq::workqueue* queue = nullptr;
    latch* done = nullptr;
    static void run(self_flusher* self, wq::id<&self_flusher::w>) noexcept {
      self->queue->flush();
      self->done->count_down();
    }
  };
  latch done(1);
  self_flusher item;
  item.queue = &q;
  item.done = &done;
  REQUIRE(q.enqueue<&self_flusher::w>(&item));
  REQUIRE(done.wait_for());
  q.flush();
  REQUIRE(warnings.contains("flush of queue 'flush_self' from one of its own items"));
}

TEST_CASE("workqueue: a paused queue starts nothing until resumed (rule 45)",
          "[workqueue][pause][rule45]") {
  wq::workqueue q{"paused"};
  std::vector<flush_item> items(100);
  q.pause();
  for (auto& it : items) REQUIRE(q.enqueue<&flush_item::w>(&it));
  // Bounded observation with every pool thread idle: nothing may start.
  std::this_thread::sleep_for(50ms);
  int started = 0;
  for (auto& it : items) started += it.runs.load();
  REQUIRE(started == 0);
  for (auto& it : items) REQUIRE(it.w.is_pending());
  q.resume();
  q.flush();
  for (auto& it : items) REQUIRE(it.runs.load() == 1);
}

TEST_CASE("workqueue: destroying a paused queue runs what it holds (rules 45, 50)",
          "[workqueue][pause][rule45][rule50]") {
  std::vector<flush_item> items(10);
  {
    wq::workqueue q{"paused_destroy"};
    q.pause();
    for (auto& it : items) REQUIRE(q.enqueue<&flush_item::w>(&it));
  }
  for (auto& it : items) REQUIRE(it.runs.load() == 1);
}

// Queueing posts the worker it starts after releasing the queue's mutex; a destroy (or the
// executor's context going) must not tear the executor down under that post. A producer thread
// queues while the test thread destroys: every item queued ran exactly once, every other one
// was refused (ThreadSanitizer and AddressSanitizer check the executor's lifetime).
TEST_CASE("workqueue: stress: destroy while another thread queues and posts workers (rule 50)",
          "[workqueue][destroy][rule50][stress]") {
  wq_test::warning_catcher warnings;  // refusals after destroy are reported (rule 17)
  constexpr int rounds = 150;
  constexpr int per_round = 64;
  for (int round = 0; round < rounds; ++round) {
    std::vector<flush_item> items(per_round);
    std::atomic<int> accepted{0};
    std::optional<boost::asio::io_context> io;
    std::optional<std::thread> runner;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
    std::optional<wq::workqueue> q;
    if (round % 2 == 0) {
      q.emplace("destroy-vs-post", wq::queue_options{.threads = 2});
    } else {
      io.emplace();
      guard.emplace(io->get_executor());
      runner.emplace([&] { io->run(); });
      q.emplace(io->get_executor(), "destroy-vs-post-io");
    }
    latch first{1};
    std::thread producer([&] {
      for (auto& it : items) {
        // One at a time onto a mostly idle queue: each queueing may start (post) a worker.
        if (q->enqueue<&flush_item::w>(&it) && accepted.fetch_add(1) == 0) first.count_down();
      }
    });
    REQUIRE(first.wait_for());  // destroy races the producer's later queueings
    q->destroy();
    producer.join();
    q.reset();
    if (runner) {
      guard.reset();
      runner->join();
    }
    int ran = 0;
    for (auto& it : items) ran += it.runs.load();
    REQUIRE(ran == accepted.load());
  }
}

TEST_CASE(
    "workqueue: destroying a queue with 100000 armed delayed items cancels them "
    "promptly (rule 50)",
    "[workqueue][destroy][rule50][stress]") {
  struct armed_item {
    wq::delayed_work d;
    std::atomic<int> runs{0};
    static void run(armed_item* self, wq::id<&armed_item::d>) noexcept { self->runs++; }
  };
  wq_test::warning_catcher warnings;
  std::vector<armed_item> items(100000);
  std::uint64_t cancelled = 0;
  const auto t0 = std::chrono::steady_clock::now();
  {
    wq::workqueue q{"destroy_100k"};
    for (auto& it : items) REQUIRE(q.enqueue_delayed<&armed_item::d>(&it, std::chrono::hours(1)));
    q.destroy();
    cancelled = q.cancelled_on_destroy();
  }
  items.clear();  // every item's outstanding timer wait is released before its memory
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  REQUIRE(cancelled == 100000);
  REQUIRE(warnings.contains("100000 armed item(s) cancelled"));
  // Tolerance: generous for sanitizer builds on 2 cores; the point is no wait for the timers.
  REQUIRE(elapsed < std::chrono::seconds(30));
}

TEST_CASE(
    "workqueue: an item queued through the lock-free intake while the only worker goes "
    "idle is never stranded",
    "[workqueue][intake][stress]") {
  // While its one worker is busy, queue_work pushes onto the intake without the queue's lock;
  // the worker, going idle, must see such a push (or the pusher must see it gone and start a
  // worker). Each round queues `a` and, at once, `b`, so `b` often arrives exactly while the
  // worker finishes `a`; a stranded `b` never runs and the round times out.
  wq::workqueue q{"intake-idle", {.threads = 1}};
  std::atomic<int> b_runs{0};
  fn_item a{[](fn_item&) {}};
  fn_item b{[&](fn_item&) { b_runs.fetch_add(1, std::memory_order_release); }};
  const auto end = std::chrono::steady_clock::now() + 2s;
  int rounds = 0;
  for (; rounds < 200000 && std::chrono::steady_clock::now() < end; ++rounds) {
    REQUIRE(enqueue(q, a) != queue_status::unbound);
    REQUIRE(enqueue(q, b) == queue_status::queued);
    const int want = rounds + 1;
    REQUIRE(wq_test::poll_until([&] { return b_runs.load(std::memory_order_acquire) == want; }));
  }
  INFO("rounds: " << rounds);
  CHECK(b_runs.load() == rounds);
}

TEST_CASE(
    "workqueue: a destroyed queue's memory goes back: 5000 queues made, used and destroyed "
    "leave at most the registry's 1024 spare cores (rule 50)",
    "[workqueue][rule50][memory]") {
  // Before issue 17's core freeing, every core ever made stayed allocated (recycled, never
  // freed): this count stayed at 5000 more after the queues were gone.
  const std::size_t before = wq::detail::cores_in_memory();
  {
    constexpr std::size_t n = 5000;
    std::deque<fn_item> items;  // items neither move nor copy
    std::atomic<int> runs{0};
    for (std::size_t i = 0; i < n; ++i) items.emplace_back([&](fn_item&) { runs.fetch_add(1); });
    std::vector<std::optional<wq::ordered_workqueue>> qs(n);
    for (auto& q : qs) q.emplace("memory");
    CHECK(wq::detail::cores_in_memory() >= n);  // (`before` may count cores ready for reuse)
    for (std::size_t i = 0; i < n; ++i) REQUIRE(enqueue(*qs[i], items[i]) == queue_status::queued);
    for (auto& q : qs) q.reset();  // each destroy runs its item first
    CHECK(runs.load() == static_cast<int>(n));
  }
  CHECK(wq::detail::cores_in_memory() <= before + 1024);
}

TEST_CASE(
    "workqueue: cancelling and flushing items from other threads while their queues are "
    "destroyed and freed touches no freed memory (ASan, TSan) (rules 50, 23, 24, 29, 31)",
    "[workqueue][rule50][rule23][rule24][rule29][rule31][memory][stress]") {
  // Each item's state word keeps the id of the queue it was last queued or armed on, and the
  // cancel and flush calls below look that queue up while the main thread destroys it. More
  // queues than the registry keeps as spares, so most destroyed cores really are freed while
  // those lookups run.
  constexpr std::size_t n = 1500;
  wq_test::warning_catcher warnings;  // destroy's armed_items_cancelled notices, one per queue
  std::deque<fn_item> items;          // items neither move nor copy
  std::deque<fn_delayed_item> timers;
  for (std::size_t i = 0; i < n; ++i) {
    items.emplace_back([](fn_item&) {});
    timers.emplace_back([](fn_delayed_item&) {});
  }
  const auto end = std::chrono::steady_clock::now() + 2s;
  int rounds = 0;
  for (; rounds < 20 && std::chrono::steady_clock::now() < end; ++rounds) {
    std::vector<std::optional<wq::ordered_workqueue>> qs(n);
    for (auto& q : qs) q.emplace("stale");
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(enqueue(*qs[i], items[i]) != queue_status::unbound);
      // Due now or soon, so that some fire while their queue is being destroyed.
      REQUIRE(enqueue_delayed(*qs[i], timers[i], std::chrono::microseconds(i % 3 * 500)) !=
              queue_status::unbound);
    }
    std::atomic<bool> stop{false};
    auto hammer = [&](std::size_t first) {
      while (!stop.load(std::memory_order_relaxed)) {
        for (std::size_t i = first; i < n; i += 2) {
          (void)wq::flush_work(items[i].w);
          (void)wq::cancel_delayed_work(timers[i].d);
          (void)wq::flush_delayed_work(timers[i].d);
          (void)wq::cancel_work_sync(items[i].w);
        }
      }
    };
    std::thread a(hammer, 0);
    std::thread b(hammer, 1);
    for (auto& q : qs) q.reset();
    stop.store(true, std::memory_order_relaxed);
    a.join();
    b.join();
    // Every item's queue is gone: nothing of any item is pending or running any more.
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE_FALSE(wq::work_pending(items[i].w));
      REQUIRE_FALSE(wq::delayed_work_pending(timers[i].d));
    }
  }
  INFO("rounds: " << rounds);
  CHECK(rounds > 0);
}

// flush() and drain() first check, without waiting, whether the calling thread may block on the
// queue (its own item, or a handler of the strand its workers run on); that check read the
// queue's executor, which a destroy() on another thread frees when the queue retires. Found by
// a user trial under ThreadSanitizer (a read of the freed executor box); ThreadSanitizer (CI)
// fails this test if the check reads it unlocked again.
TEST_CASE("workqueue: flush and drain racing destroy on other threads (rule 50)",
          "[workqueue][destroy][flush][drain][rule50]") {
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  int rounds = 0;
  int waits = 0;
  while (rounds < 300 && std::chrono::steady_clock::now() < until) {
    std::unique_ptr<wq::workqueue> q;
    if (rounds % 2 == 0)
      q = std::make_unique<wq::ordered_workqueue>("flush-vs-destroy");
    else
      q = std::make_unique<wq::workqueue>("flush-vs-destroy", wq::queue_options{.threads = 1});
    fn_item item{[](fn_item&) {}};
    REQUIRE(enqueue(*q, item) == queue_status::queued);
    std::atomic<bool> stop{false};
    std::atomic<int> failed{0};
    std::atomic<int> done{0};
    auto waiter = [&](bool drain) {
      while (!stop.load(std::memory_order_relaxed)) {
        const std::error_code ec = drain ? q->drain() : q->flush();
        if (ec) failed.fetch_add(1);
        done.fetch_add(1);
      }
    };
    std::thread a(waiter, false);
    std::thread b(waiter, true);
    const std::error_code ec = q->destroy();
    stop = true;
    a.join();
    b.join();
    CHECK_FALSE(ec);
    CHECK(failed.load() == 0);  // a wait on a destroyed queue returns at once, with no error
    waits += done.load();
    ++rounds;
  }
  INFO(rounds << " rounds, " << waits << " waits");
  CHECK(rounds >= 20);
}

// An outside queueing claims an item's PENDING before its queue, draining or dying, refuses it
// (rule 17). A queueing of the same item in that moment, here the item's own chained requeue,
// was told already_pending, and the refusal then gave PENDING up: the promised run never came
// and drain()/destroy() returned success (user trial 23: most rounds of the destroy case on the
// old code). Now that call marks the claim COALESCED and the refusal links the item anyway, as
// chained work. Every run an item's requeue was promised must happen.
namespace {
struct chaining_item {
  wq::work w;
  wq::workqueue* q = nullptr;
  std::atomic<long> runs{0};
  std::atomic<long> promised{0};
  std::atomic<long> chain{0};
  static void run(chaining_item* self, wq::id<&chaining_item::w>) noexcept {
    const long n = self->runs.fetch_add(1) + 1;
    if (self->chain.fetch_sub(1) > 0) {
      const queue_status st = self->q->enqueue<&chaining_item::w>(self).status;
      if (st == queue_status::queued || st == queue_status::already_pending)
        self->promised.store(n + 1);  // a run after this one (rules 3, 7)
    }
  }
};
}  // namespace

TEST_CASE(
    "workqueue: a requeue told already_pending while the queue refuses an outside queueing of "
    "the same item still runs (rules 1 7 17 49 50)",
    "[workqueue][drain][destroy][rule17][rule49][rule50]") {
  for (const bool destroy : {true, false}) {
    INFO((destroy ? "destroy" : "drain"));
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    int rounds = 0;
    int lost = 0;
    while (rounds < 2000 && std::chrono::steady_clock::now() < until) {
      chaining_item it;
      auto q =
          std::make_unique<wq::workqueue>("coalesced-refusal", wq::queue_options{.threads = 2});
      it.q = q.get();
      it.chain = 50;
      REQUIRE(q->enqueue<&chaining_item::w>(&it));
      std::atomic<bool> stop{false};
      std::thread outside([&] {
        while (!stop.load(std::memory_order_relaxed)) (void)q->enqueue<&chaining_item::w>(&it);
      });
      REQUIRE(wq_test::poll_until([&] { return it.runs.load() >= 2; }));
      const std::error_code ec = destroy ? q->destroy() : q->drain();
      stop = true;
      outside.join();
      CHECK_FALSE(ec);
      if (!destroy) CHECK_FALSE(q->drain());  // the outside queueings accepted since have run
      if (it.runs.load() < it.promised.load()) ++lost;
      q.reset();
      ++rounds;
    }
    INFO(rounds << " rounds, " << lost << " with a promised run missing");
    CHECK(lost == 0);
    CHECK(rounds >= 20);
  }
}

namespace {
// An item whose first run waits on a gate, holding a drain in progress; every later run records
// the newest stamp each of two outside producers stored before queueing it (the first started
// before any of those queueings, so it cannot be the run they were promised).
struct stamped_state {
  std::atomic<bool> gate{false};
  std::atomic<bool> gated{true};
  std::atomic<long> runs{0};
  std::atomic<long> stamp[2] = {0, 0};
  std::atomic<long> seen[2] = {0, 0};
  void on_run() noexcept {
    if (gated.exchange(false)) {
      gate.wait(false);
    } else {
      for (int p = 0; p < 2; ++p) seen[p].store(stamp[p].load());
    }
    runs.fetch_add(1);
  }
};

// The same item queued through a raw pointer, a boost::intrusive_ptr and a std::shared_ptr: a
// refused claim that keeps the item for a coalesced call hands its reference back to the item.
// `Field` is a work member, or a delayed one for mod_delayed_work.
template <class Field>
struct raw_stamped : stamped_state {
  Field w;
  static void run(raw_stamped* self, wq::id<&raw_stamped::w>) noexcept { self->on_run(); }
};
template <class Field>
struct ref_stamped : stamped_state,
                     boost::intrusive_ref_counter<ref_stamped<Field>, boost::thread_safe_counter> {
  Field w;
  static void run(boost::intrusive_ptr<ref_stamped> self, wq::id<&ref_stamped::w>) noexcept {
    self->on_run();
  }
};
template <class Field>
struct shared_stamped : stamped_state {
  Field w;
  static void run(std::shared_ptr<shared_stamped> self, wq::id<&shared_stamped::w>) noexcept {
    self->on_run();
  }
};

struct coalesced_rounds {
  int rounds = 0;
  long coalesced = 0;  // queueings told already_pending
  int lost = 0;        // producers whose promised run never saw their stamp
  int bad_refs = 0;    // rounds that left a reference held or released twice
};

// Rounds of: an item's first run held, a drain of its queue in progress, two outside producers
// queueing the item until each is promised a run. `own` makes the object a round uses (with one
// reference held by the round), `ptr` a pointer to hand to enqueue, `refs` its reference count.
// With `Mod`, the first producer calls mod_delayed_work (no delay) instead of enqueue.
template <class Item, bool Mod, class Own, class Ptr, class Refs>
coalesced_rounds race_coalesced_into_refusal(Own own, Ptr ptr, Refs refs) {
  coalesced_rounds r;
  // Until 20 calls were told already_pending over at least 200 rounds, or 2 s (the races with
  // mod_delayed_work, which waits out the other call's claim, coalesce less often).
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (r.rounds < 2000 && std::chrono::steady_clock::now() < until &&
         (r.rounds < 200 || r.coalesced < 20)) {
    auto owner = own();
    Item& it = *owner;
    wq::workqueue q("coalesced-outside", wq::queue_options{.threads = 2});
    REQUIRE(q.enqueue<&Item::w>(ptr(owner)));
    REQUIRE(wq_test::poll_until([&] { return it.runs.load() == 0 && !it.gated.load(); }));
    std::error_code drained;
    std::thread drainer([&] { drained = q.drain(); });
    // Queueing is refused once the drain is in progress (rule 49).
    auto probe_owner = own();
    probe_owner->gated = false;
    REQUIRE(wq_test::poll_until(
        [&] { return q.enqueue<&Item::w>(ptr(probe_owner)).status == queue_status::rejected; }));
    // A queueing told already_pending, or the refused one its answer turned into a queueing
    // (it returns queued then), promises a run; each producer stops at its first.
    long promised[2] = {0, 0};
    long told_pending[2] = {0, 0};
    {
      std::atomic<int> ready{0};
      std::atomic<int> producing{2};
      auto produce = [&](int p) {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        // 4000 calls, and more while the other producer still calls (a mod_delayed_work that
        // waits out this producer's claim makes few calls in the time this one makes 4000),
        // for 100 ms at most.
        const auto stop = std::chrono::steady_clock::now() + 100ms;
        for (long k = 1;
             promised[p] == 0 &&
             (k <= 4000 || (producing.load() == 2 && std::chrono::steady_clock::now() < stop));
             ++k) {
          it.stamp[p].store(k);
          queue_status st{};
          if constexpr (Mod) {
            st = p == 0 ? wq::mod_delayed_work<&Item::w>(q, ptr(owner), 0ms).status
                        : q.enqueue<&Item::w>(ptr(owner)).status;
          } else {
            st = q.enqueue<&Item::w>(ptr(owner)).status;
          }
          if (st != queue_status::rejected) promised[p] = k;
          if (st == queue_status::already_pending) ++told_pending[p];
        }
        producing.fetch_sub(1);
      };
      std::thread other(produce, 1);
      produce(0);
      other.join();
    }
    it.gate = true;
    it.gate.notify_all();
    drainer.join();
    CHECK_FALSE(drained);
    for (int p = 0; p < 2; ++p) {
      r.coalesced += told_pending[p];
      if (it.seen[p].load() < promised[p]) ++r.lost;
    }
    // The queue holds no reference once drained: only the round's own remains.
    if (refs(owner) != 1 || refs(probe_owner) != 1) ++r.bad_refs;
    ++r.rounds;
  }
  return r;
}

template <class Item>
struct raw_owner {
  std::unique_ptr<Item> p = std::make_unique<Item>();
  Item& operator*() const { return *p; }
  Item* operator->() const { return p.get(); }
};

void check_coalesced_rounds(const char* kind, const coalesced_rounds& r) {
  INFO(kind << ": " << r.rounds << " rounds, " << r.coalesced << " queueings told already_pending, "
            << r.lost << " promised runs missing, " << r.bad_refs << " with a reference count off");
  CHECK(r.lost == 0);
  CHECK(r.bad_refs == 0);
  CHECK(r.coalesced > 0);
}

// The race of race_coalesced_into_refusal through each pointer kind, `Field` the member type
// for the raw and intrusive items, `SharedField` for the shared_ptr item.
template <class Field, class SharedField, bool Mod>
void race_every_pointer_kind() {
  using raw = raw_stamped<Field>;
  using ref = ref_stamped<Field>;
  using shared = shared_stamped<SharedField>;
  check_coalesced_rounds("raw pointer", race_coalesced_into_refusal<raw, Mod>(
                                            [] { return raw_owner<raw>{}; },
                                            [](const raw_owner<raw>& o) { return o.p.get(); },
                                            [](const raw_owner<raw>&) { return 1L; }));
  check_coalesced_rounds(
      "boost::intrusive_ptr",
      race_coalesced_into_refusal<ref, Mod>(
          [] { return boost::intrusive_ptr<ref>(new ref); },
          [](const boost::intrusive_ptr<ref>& o) { return o; },
          [](const boost::intrusive_ptr<ref>& o) { return long{o->use_count()}; }));
  check_coalesced_rounds("std::shared_ptr",
                         race_coalesced_into_refusal<shared, Mod>(
                             [] { return std::make_shared<shared>(); },
                             [](const std::shared_ptr<shared>& o) { return o; },
                             [](const std::shared_ptr<shared>& o) { return o.use_count(); }));
}

}  // namespace

TEST_CASE(
    "workqueue: an outside queueing told already_pending while a draining queue refuses another "
    "outside queueing of the same item still runs (rules 1 7 49)",
    "[workqueue][drain][rule1][rule7][rule49]") {
  // Two outside producers queue one item on a queue that drains while the item's first run is
  // held: each queueing is refused, unless it finds the item claimed by the other's queueing
  // on its way to that refusal and is told already_pending. Such an answer promises a run that
  // sees the producer's stamp (rules 1, 7), so the refused claim must link the item anyway,
  // with the reference the refused call handed it when the item is owned through a pointer.
  race_every_pointer_kind<wq::work, wq::shared_work, false>();
}

TEST_CASE(
    "workqueue: an outside queueing told already_pending while a draining queue refuses an "
    "outside mod_delayed_work of the same item still runs (rules 1 7 20 49)",
    "[workqueue][drain][mod][rule1][rule7][rule20][rule49]") {
  // As above, one producer calling mod_delayed_work: its claim (or the instance it took over)
  // refused by the draining queue is linked anyway for a call told already_pending meanwhile.
  race_every_pointer_kind<wq::delayed_work, wq::shared_delayed_work, true>();
}

namespace {
struct held_item {
  wq::work w;
  std::atomic<bool> started{false};
  std::atomic<bool> gate{false};
  static void run(held_item* self, wq::id<&held_item::w>) noexcept {
    self->started = true;
    self->gate.wait(false);
  }
};
struct moddable_item {
  wq::delayed_work dw;
  std::atomic<int> runs{0};
  static void run(moddable_item* self, wq::id<&moddable_item::dw>) noexcept {
    self->runs.fetch_add(1);
  }
};
}  // namespace

TEST_CASE(
    "workqueue: a mod_delayed_work refused by a draining queue drops an instance that a call "
    "was told already_pending for before the mod took it over (rules 1 20 49)",
    "[workqueue][drain][mod][rule1][rule20][rule49]") {
  // Only a call told already_pending while the mod holds the instance makes the refusal keep it
  // (settle_claim); one told so while the instance was armed counts as made before the mod,
  // which drops the instance as a cancel would.
  for (const bool typed : {true, false}) {
    for (const bool moved_before : {false, true}) {
      INFO((typed ? "typed" : "untyped") << (moved_before ? ", deadline moved first" : ""));
      wq::workqueue q("stale-mark", wq::queue_options{.threads = 2});
      moddable_item it;
      held_item held;
      REQUIRE(q.enqueue_delayed<&moddable_item::dw>(&it, 10s));
      REQUIRE(q.enqueue<&moddable_item::dw>(&it).status == queue_status::already_pending);
      if (moved_before) {
        // The fast path: the deadline moves, the instance stays armed.
        const auto m = wq::mod_delayed_work<&moddable_item::dw>(q, &it, 20s);
        REQUIRE(m.was_pending);
        REQUIRE(m.status == queue_status::queued);
      }
      REQUIRE(q.enqueue<&held_item::w>(&held));
      REQUIRE(wq_test::poll_until([&] { return held.started.load(); }));
      std::error_code drained;
      std::thread drainer([&] { drained = q.drain(); });
      moddable_item probe;
      REQUIRE(wq_test::poll_until(
          [&] { return q.enqueue<&moddable_item::dw>(&probe).status == queue_status::rejected; }));
      if (typed) {
        const auto m = wq::mod_delayed_work<&moddable_item::dw>(q, &it, 0ms);
        CHECK(m.was_pending);
        CHECK(m.status == queue_status::rejected);
        CHECK(m.pointer == &it);
      } else {
        CHECK(wq::mod_delayed_work(q, it.dw, 0ms));
      }
      CHECK_FALSE(it.dw.is_pending());
      held.gate = true;
      held.gate.notify_all();
      drainer.join();
      CHECK_FALSE(drained);
      CHECK_FALSE(q.drain());
      CHECK(it.runs.load() == 0);
      CHECK_FALSE(it.dw.is_pending());
    }
  }
}
