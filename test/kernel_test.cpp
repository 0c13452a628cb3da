// SPDX-License-Identifier: BSL-1.0
// Tests for wq/kernel.hpp, the kernel-named compatibility layer: each name forwards to the
// main-API call its comment names, with the kernel's return type. Written the way ported kernel
// code reads: a C-style work function recovers its object with container_of.
#include <wq/kernel.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <type_traits>

#include <wq/container_of.hpp>
#include <wq/flush.hpp>

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
  CHECK(wq::flush_work(dev.w) == false);  // already finished: nothing to wait for
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
