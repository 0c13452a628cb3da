// SPDX-License-Identifier: BSL-1.0
// A driver written the kernel's way, against an installed wq: it uses every kernel name in
// README's "Names: kernel C -> Rust -> wq" table (the wq spellings of the C column), so a name
// that disappears or changes breaks the install smoke test (the rcu_work names, which need liburcu,
// are in rcu_snippet.cpp). It runs and prints "kernel snippet ok".
#include <wq/wq.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>

namespace {

struct my_device {
  int id = 0;
  std::atomic<int> work_runs{0};
  std::atomic<int> timeout_runs{0};
  wq::work work{wq::fn_ops<&my_device::work_fn>};                // INIT_WORK
  wq::delayed_work timeout{wq::fn_ops<&my_device::timeout_fn>};  // INIT_DELAYED_WORK

  static void work_fn(wq::work* w) noexcept {                // void f(struct work_struct *)
    my_device* dev = wq::container_of<&my_device::work>(w);  // container_of / from_work
    wq::set_worker_desc("dev%d work", dev->id);
    (void)wq::current_work();
    dev->work_runs.fetch_add(1);
  }
  static void timeout_fn(wq::work* w) noexcept {
    my_device* dev = wq::container_of<&my_device::timeout>(wq::to_delayed_work(w));
    dev->timeout_runs.fetch_add(1);
  }
};

}  // namespace

int main() {
  using namespace wq::literals;
  bool ok = true;
  auto check = [&ok](bool c, const char* what) {
    if (!c) {
      std::printf("FAILED: %s\n", what);
      ok = false;
    }
  };

  // alloc_workqueue / alloc_ordered_workqueue / WQ_* flags / WQ_DFL_ACTIVE / WQ_MAX_ACTIVE
  std::unique_ptr<wq::workqueue> wq_ =
      wq::alloc_workqueue("mydev%d", wq::queue_flags::unbound, wq::default_max_active, 0);
  std::unique_ptr<wq::ordered_workqueue> owq =
      wq::alloc_ordered_workqueue("mydev%d-ordered", wq::queue_flags::highpri, 0);
  check(wq_->max_active() <= wq::max_max_active, "max_active");
  check(wq_->set_max_active(16) == 16, "workqueue_set_max_active");  // workqueue_set_max_active

  my_device dev;
  dev.id = 7;
  // queue_work, queue_work_on, queue_work_node, work_pending, work_busy, workqueue_congested
  check(wq::queue_work(*wq_, dev.work), "queue_work");
  (void)wq::queue_work_on(wq::WORK_CPU_UNBOUND, *wq_, dev.work);
  (void)wq::queue_work_node(wq::NUMA_NO_NODE, *wq_, dev.work);
  (void)wq::work_pending(dev.work);
  (void)(wq::work_busy(dev.work) & (wq::WORK_BUSY_PENDING | wq::WORK_BUSY_RUNNING));
  (void)wq::workqueue_congested(wq::WORK_CPU_UNBOUND, *wq_);
  check(!wq::flush_workqueue(*wq_), "flush_workqueue");  // flush_workqueue
  check(!wq::flush_work(dev.work), "flush_work");        // already finished: nothing to wait for

  // queue_delayed_work[_on], mod_delayed_work[_on], delayed_work_pending, jiffies helpers
  check(wq::queue_delayed_work(*wq_, dev.timeout, wq::msecs_to_jiffies(60'000)), "qdw");
  check(wq::delayed_work_pending(dev.timeout), "delayed_work_pending");
  check(!wq::queue_delayed_work_on(wq::WORK_CPU_UNBOUND, *wq_, dev.timeout, 5_jiffies), "qdw_on");
  check(wq::mod_delayed_work(*wq_, dev.timeout, 2_jiffies), "mod_delayed_work");  // was pending
  (void)wq::mod_delayed_work_on(wq::WORK_CPU_UNBOUND, *wq_, dev.timeout, 0_jiffies);
  check(wq::flush_delayed_work(dev.timeout) || dev.timeout_runs.load() == 1, "flush_delayed_work");
  const wq::jiffies deadline = wq::jiffies_now() + wq::msecs_to_jiffies(10);
  (void)wq::time_after(deadline, wq::jiffies_now());
  (void)wq::time_is_before_jiffies(deadline);
  check(wq::time_after_eq64(wq::get_jiffies_64(), wq::get_jiffies_64() - 1), "time_after_eq64");
  (void)wq::jiffies_to_msecs(wq::jiffies{static_cast<unsigned long>(wq::initial_jiffies)});

  // cancel_*, disable_* / enable_*, enable_and_queue_work
  check(wq::queue_delayed_work(*owq, dev.timeout, std::chrono::hours(1)), "arm again");
  check(wq::cancel_delayed_work(dev.timeout), "cancel_delayed_work");
  check(!wq::cancel_delayed_work_sync(dev.timeout), "cancel_delayed_work_sync");
  check(!wq::cancel_work(dev.work) && !wq::cancel_work_sync(dev.work), "cancel_work[_sync]");
  (void)wq::disable_work(dev.work);
  (void)wq::disable_work_sync(dev.work);
  check(!wq::queue_work(*wq_, dev.work), "disabled: refused");
  (void)wq::enable_work(dev.work);
  check(wq::enable_and_queue_work(*wq_, dev.work), "enable_and_queue_work");
  (void)wq::disable_delayed_work(dev.timeout);
  (void)wq::disable_delayed_work_sync(dev.timeout);
  (void)wq::enable_delayed_work(dev.timeout);

  // system queues and schedule_*
  (void)wq::schedule_work(dev.work);  // may still be pending from enable_and_queue_work
  (void)wq::schedule_work_on(wq::WORK_CPU_UNBOUND, dev.work);
  (void)wq::schedule_delayed_work(dev.timeout, 1_jiffies);
  (void)wq::schedule_delayed_work_on(wq::WORK_CPU_UNBOUND, dev.timeout, 1_jiffies);
  (void)wq::system_wq();
  (void)wq::system_highpri_wq();
  (void)wq::system_long_wq();
  (void)wq::system_unbound_wq();
  (void)wq::system_percpu_wq();
  (void)wq::system_dfl_wq();
  (void)wq::system_dfl_long_wq();
  (void)wq::system_freezable_wq();
  (void)wq::system_power_efficient_wq();
  (void)wq::system_freezable_power_efficient_wq();
  (void)wq::cancel_work_sync(dev.work);
  (void)wq::cancel_delayed_work_sync(dev.timeout);

  // freezing, drain_workqueue, destroy_workqueue; try_spawn
  wq_->pause();
  wq_->resume();
  check(!wq::try_spawn(*wq_, [] {}), "try_spawn");
  check(!wq::drain_workqueue(*wq_), "drain_workqueue");
  check(!wq::destroy_workqueue(wq_) && wq_ == nullptr, "destroy_workqueue");
  check(!wq::destroy_workqueue(owq), "destroy ordered");
  check(dev.work_runs.load() >= 1 && dev.timeout_runs.load() >= 1, "items ran");

  if (!ok) return 1;
  std::printf("kernel snippet ok\n");
  return 0;
}
