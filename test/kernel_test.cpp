// SPDX-License-Identifier: BSL-1.0
// Tests for wq/kernel.hpp, the kernel-named compatibility layer: each name forwards to the
// main-API call its comment names, with the kernel's return type. Written the way ported kernel
// code reads: a C-style work function recovers its object with container_of.
#include <wq/kernel.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <type_traits>

#include <pthread.h>

#include <wq/container_of.hpp>
#include <wq/flush.hpp>
#include <wq/spawn.hpp>

#include "support/test_support.hpp"

namespace {

using namespace std::chrono_literals;
using wq_test::latch;
using wq_test::must_happen;

// A driver-style object: one work item and one delayed item, each bumping its counter.
struct device {
  std::atomic<int> works{0};
  std::atomic<int> timeouts{0};
  latch* ran = nullptr;
  wq::work w{wq::fn_ops<&device::work_fn>};
  wq::delayed_work d{wq::fn_ops<&device::timeout_fn>};

  static void work_fn(wq::work* item) noexcept {
    // Safety: `item` is the `w` member of a device (the only item built with this function).
    device* dev = wq::container_of<&device::w>(item);
    dev->works.fetch_add(1, std::memory_order_relaxed);
    if (dev->ran != nullptr) dev->ran->count_down();
  }
  static void timeout_fn(wq::work* item) noexcept {
    // Safety: `item` is the `d` member of a device (the only item built with this function).
    device* dev = wq::container_of<&device::d>(wq::to_delayed_work(item));
    dev->timeouts.fetch_add(1, std::memory_order_relaxed);
    if (dev->ran != nullptr) dev->ran->count_down();
  }
};

}  // namespace

TEST_CASE(
    "kernel: alloc_workqueue / queue_work / flush_workqueue / destroy_workqueue "
    "(rules 1, 14, 26, 36, 50)",
    "[kernel][rule1][rule14][rule26][rule36][rule50]") {
  std::unique_ptr<wq::workqueue> q =
      wq::alloc_workqueue("kernel-events", wq::queue_flags::unbound, 4);
  REQUIRE(q != nullptr);
  CHECK(q->name() == "kernel-events");
  CHECK(q->flags() == wq::queue_flags::unbound);
  CHECK(q->max_active() == 4);
  device dev;
  STATIC_REQUIRE(std::is_same_v<decltype(wq::queue_work(*q, dev.w)), bool>);
  CHECK(wq::queue_work(*q, dev.w));
  CHECK_FALSE(wq::flush_workqueue(*q));  // no error
  CHECK(dev.works.load(std::memory_order_relaxed) == 1);
  CHECK_FALSE(wq::work_pending(dev.w));
  CHECK_FALSE(wq::destroy_workqueue(q));  // destroys and frees, like the kernel's
  CHECK(q == nullptr);
  CHECK_FALSE(wq::destroy_workqueue(q));  // a null pointer: nothing to do
}

TEST_CASE("kernel: queue_work returns false for a pending item, like the kernel (rule 1)",
          "[kernel][rule1]") {
  wq::workqueue q{"kernel-pending"};
  q.pause();  // nothing starts: the item stays pending
  device dev;
  CHECK(wq::queue_work(q, dev.w));
  CHECK(wq::work_pending(dev.w));
  CHECK_FALSE(wq::queue_work(q, dev.w));  // already pending: a no-op returning false
  q.resume();
  CHECK_FALSE(wq::drain_workqueue(q));
  CHECK(dev.works.load(std::memory_order_relaxed) == 1);
  CHECK_FALSE(wq::destroy_workqueue(q));
}

TEST_CASE(
    "kernel: queue_delayed_work, delayed_work_pending and the _delayed_ cancels "
    "(rules 15, 18, 31, 32)",
    "[kernel][rule15][rule18][rule31][rule32]") {
  wq::workqueue q{"kernel-delayed"};
  device dev;
  CHECK(wq::queue_delayed_work(q, dev.d, 1h));
  CHECK(wq::delayed_work_pending(dev.d));
  CHECK_FALSE(wq::queue_delayed_work(q, dev.d, 0ms));  // pending: its timer is left alone
  CHECK(wq::cancel_delayed_work(dev.d));
  CHECK_FALSE(wq::delayed_work_pending(dev.d));
  CHECK(wq::queue_delayed_work(q, dev.d, 1h));
  CHECK(wq::cancel_delayed_work_sync(dev.d));
  CHECK_FALSE(wq::cancel_delayed_work_sync(dev.d));
  CHECK(dev.timeouts.load(std::memory_order_relaxed) == 0);
}

TEST_CASE("kernel: disable_delayed_work[_sync] / enable_delayed_work (rules 16, 33, 34)",
          "[kernel][rule16][rule33][rule34]") {
  wq::workqueue q{"kernel-disable"};
  device dev;
  CHECK(wq::queue_delayed_work(q, dev.d, 1h));
  CHECK(wq::disable_delayed_work(dev.d));              // was pending
  CHECK_FALSE(wq::queue_delayed_work(q, dev.d, 0ms));  // disabled: refused
  CHECK_FALSE(wq::disable_delayed_work_sync(dev.d));   // nested, nothing pending
  CHECK_FALSE(wq::enable_delayed_work(dev.d));         // count 2 -> 1
  CHECK(wq::enable_delayed_work(dev.d));               // count 1 -> 0
  latch ran{1};
  dev.ran = &ran;
  CHECK(wq::queue_delayed_work(q, dev.d, 0ms));  // a zero delay queues at once (rule 19)
  CHECK(ran.wait_for(must_happen));
  CHECK(dev.timeouts.load(std::memory_order_relaxed) == 1);
}

TEST_CASE("kernel: schedule_work and schedule_delayed_work use the system queue (rule 48)",
          "[kernel][rule48]") {
  device dev;
  latch ran{2};
  dev.ran = &ran;
  CHECK(wq::schedule_work(dev.w));
  CHECK(wq::schedule_delayed_work(dev.d, 1ms));
  CHECK(ran.wait_for(must_happen));
  // Its latch is counted down just before the function returns, so the item may still be
  // finishing: flush waits for that, after which it is neither pending nor running (rule 23).
  (void)wq::flush_work(dev.w);
  CHECK_FALSE(wq::work_pending(dev.w));
  CHECK_FALSE(dev.w.is_running());
  CHECK(dev.works.load(std::memory_order_relaxed) == 1);
  CHECK(dev.timeouts.load(std::memory_order_relaxed) == 1);
  (void)wq::cancel_work_sync(dev.w);  // neither runs any more when dev goes
  (void)wq::cancel_work_sync(dev.d);
}

TEST_CASE("kernel: alloc_ordered_workqueue returns an ordered queue (rule 39)",
          "[kernel][rule39]") {
  std::unique_ptr<wq::ordered_workqueue> q =
      wq::alloc_ordered_workqueue("kernel-ordered", wq::queue_flags::highpri);
  REQUIRE(q != nullptr);
  CHECK(q->ordered());
  CHECK(q->max_active() == 1);
  CHECK(q->flags() == wq::queue_flags::highpri);
  device dev;
  CHECK(wq::queue_work(*q, dev.w));
  CHECK_FALSE(wq::destroy_workqueue(q));  // drains first (rule 50)
  CHECK(dev.works.load(std::memory_order_relaxed) == 1);
}

// ---- issue 18: the rest of the kernel surface -------------------------------------------------

namespace {

// An item whose function blocks until released, so a test can look at it while it runs.
struct blocker {
  latch started{1};
  latch release{1};
  std::atomic<int> runs{0};
  wq::work w{wq::fn_ops<&blocker::fn>};
  static void fn(wq::work* item) noexcept {
    // Safety: `item` is the `w` member of a blocker (the only item built with this function).
    blocker* b = wq::container_of<&blocker::w>(item);
    b->runs.fetch_add(1, std::memory_order_relaxed);
    b->started.count_down();
    (void)b->release.wait_for(must_happen);
  }
};

}  // namespace

TEST_CASE("kernel: work_busy reports PENDING and RUNNING, on any queue (rule 5)",
          "[kernel][rule5]") {
  wq::workqueue q{"busy", {.threads = 2}};
  blocker b;
  CHECK(wq::work_busy(b.w) == 0u);
  REQUIRE(wq::queue_work(q, b.w));
  REQUIRE(b.started.wait_for(must_happen));
  CHECK(wq::work_busy(b.w) == wq::WORK_BUSY_RUNNING);
  CHECK(b.w.is_running());
  CHECK_FALSE(b.w.is_pending());
  wq::workqueue other{"busy-other", {.threads = 1}};
  other.pause();
  REQUIRE(wq::queue_work(other, b.w));  // pending on another queue while running here
  CHECK(wq::work_busy(b.w) == (wq::WORK_BUSY_PENDING | wq::WORK_BUSY_RUNNING));
  b.release.count_down();
  REQUIRE(wq::cancel_work_sync(b.w));  // the pending instance on `other`; waits for the run
  CHECK(wq::work_busy(b.w) == 0u);
  CHECK_FALSE(b.w.is_running());
  CHECK(b.runs.load(std::memory_order_relaxed) == 1);
}

TEST_CASE(
    "kernel: the _on and _node forms queue as the plain forms, a bad hint is reported "
    "(rule 14)",
    "[kernel][rule14]") {
  using namespace std::chrono_literals;
  wq::workqueue q{"hints"};
  q.pause();
  device dev;
  {
    wq_test::warning_catcher warnings;
    CHECK(wq::queue_work_on(0, q, dev.w));
    CHECK_FALSE(wq::queue_work_on(wq::WORK_CPU_UNBOUND, q, dev.w));  // pending: false, as plain
    CHECK_FALSE(wq::queue_work_node(wq::NUMA_NO_NODE, q, dev.w));
    CHECK(wq::queue_delayed_work_on(wq::WORK_CPU_UNBOUND, q, dev.d, 1h));
    CHECK(wq::mod_delayed_work_on(0, q, dev.d, 2h));  // was pending: true
    CHECK_FALSE(wq::workqueue_congested(0, q));
    CHECK(warnings.messages().empty());
  }
  {
    wq_test::warning_catcher warnings;
    CHECK(wq::cancel_work_sync(dev.w));
    CHECK(wq::queue_work_on(1 << 20, q, dev.w));  // queued all the same
    CHECK(warnings.count(wq::errc::bad_cpu_hint) == 1);
    CHECK(warnings.contains("queue_work_on: CPU 1048576"));
    CHECK(wq::cancel_work_sync(dev.w));
    CHECK(wq::queue_work_node(-5, q, dev.w));
    CHECK(warnings.count(wq::errc::bad_cpu_hint) == 2);
    CHECK(warnings.contains("queue_work_node: NUMA node -5"));
  }
  CHECK(wq::cancel_work_sync(dev.w));
  CHECK(wq::cancel_work_sync(dev.d));
  latch ran{2};
  dev.ran = &ran;
  CHECK(wq::schedule_work_on(0, dev.w));
  CHECK(wq::schedule_delayed_work_on(wq::WORK_CPU_UNBOUND, dev.d, 1ms));
  CHECK(ran.wait_for(must_happen));
  (void)wq::cancel_work_sync(dev.w);
  (void)wq::cancel_work_sync(dev.d);
}

TEST_CASE(
    "kernel: alloc_workqueue and alloc_ordered_workqueue format the name, kept whole "
    "(rules 36, 39)",
    "[kernel][rule36][rule39]") {
  auto q = wq::alloc_workqueue("eth%d-%s", wq::queue_flags::unbound, 4, 3, "rx");
  CHECK(q->name() == "eth3-rx");
  CHECK(q->max_active() == 4);
  CHECK(q->flags() == wq::queue_flags::unbound);
  // Longer than the kernel's 31 characters: kept whole (a deliberate difference).
  auto longer = wq::alloc_workqueue("%s-%d", wq::queue_flags::none, 0,
                                    "a-queue-name-longer-than-the-kernel-allows", 42);
  CHECK(longer->name() == "a-queue-name-longer-than-the-kernel-allows-42");
  auto ordered = wq::alloc_ordered_workqueue("ord/%u", wq::queue_flags::highpri, 7u);
  CHECK(ordered->name() == "ord/7");
  CHECK(ordered->ordered());
  CHECK(ordered->flags() == wq::queue_flags::highpri);
  auto percent = wq::alloc_workqueue("100%% busy", wq::queue_flags::none, 0);
  CHECK(percent->name() == "100% busy");
}

TEST_CASE("kernel: workqueue_congested is true while items wait beyond max_active (rule 51)",
          "[kernel][rule51]") {
  wq::workqueue q{"congested", {.max_active = 1, .threads = 2}};
  blocker b;
  device dev;
  CHECK_FALSE(wq::workqueue_congested(wq::WORK_CPU_UNBOUND, q));
  REQUIRE(wq::queue_work(q, b.w));
  REQUIRE(b.started.wait_for(must_happen));
  CHECK_FALSE(q.congested());         // one running, nothing waiting
  REQUIRE(wq::queue_work(q, dev.w));  // beyond max_active 1: inactive
  CHECK(q.congested());
  CHECK(wq::workqueue_congested(0, q));
  b.release.count_down();
  CHECK_FALSE(q.flush());
  CHECK_FALSE(q.congested());
  CHECK(dev.works.load(std::memory_order_relaxed) == 1);
  CHECK_FALSE(q.destroy());
  CHECK_FALSE(q.congested());  // destroyed: false
}

TEST_CASE("kernel: set_worker_desc shows in dump() and names the thread for one item (rule 51)",
          "[kernel][rule51]") {
  wq::workqueue q{"described", {.threads = 1}};
  std::string dumped;
  char during[16] = {};
  char after[16] = {};
  char before[16] = {};
  std::atomic<bool> done{false};
  auto name_of_this_thread = [](char(&out)[16]) {
    (void)pthread_getname_np(pthread_self(), out, sizeof out);
  };
  wq::spawn(q, [&] { name_of_this_thread(before); });
  wq::spawn(q, [&] {
    wq::set_worker_desc("rx queue %d of %s", 3, "eth0");
    name_of_this_thread(during);
    dumped = q.dump();
  });
  wq::spawn(q, [&] {
    name_of_this_thread(after);
    done.store(true);
  });
  REQUIRE_FALSE(q.flush());
  REQUIRE(done.load());
  CHECK(dumped.find("[rx queue 3 of eth0]") != std::string::npos);
  CHECK(std::string(during) == "rx queue 3 of e");   // the platform's 15 characters
  CHECK(std::string(after) == std::string(before));  // restored when the item returned
  CHECK(q.dump().find("rx queue") == std::string::npos);
  wq::set_worker_desc("outside %d", 1);  // not a worker: nothing happens
}

TEST_CASE("kernel: flushing a system queue is reported once per process (rule 27, §5.6)",
          "[kernel][rule27]") {
  wq_test::warning_catcher warnings;
  CHECK_FALSE(wq::flush_scheduled_work());
  CHECK_FALSE(wq::flush_workqueue(wq::system_unbound_wq()));
  CHECK(warnings.count(wq::errc::system_queue_flushed) == 1);
  CHECK(warnings.contains("flush of system queue 'events'"));
  wq::workqueue own{"not-a-system-queue"};
  CHECK_FALSE(own.flush());
  CHECK(warnings.count(wq::errc::system_queue_flushed) == 1);
}
