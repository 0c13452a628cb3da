// SPDX-License-Identifier: BSL-1.0
// The program that test/usdt/probes.py runs under gdb to see the USDT probes fire: four items,
// each queued once on one queue by a different route, then a line per item with its address
// and name, written to the file named by its argument (not to stdout, where gdb's own messages
// could split a line), which test/usdt/check_probes_fire.cmake looks for in the probes'
// arguments.
//
// The routes, one item each, are the four ways an item gets onto a queue, so that every
// workqueue_queue_work and workqueue_activate_work site is reached:
//   a  queued on the idle queue (locked path), active at once;
//   b  queued while `a` runs on the queue's only worker (the lock-free intake), then, with
//      max_active 1, put on the inactive list and activated when the worker takes it;
//   c  armed for 1 ms: queued by its timer;
//   d  armed for an hour, then queued at once by flush_delayed_work.
// Each stage waits until the queue is idle again (flush), so which list an item goes to does not
// depend on how fast the previous item's worker finishes. Every item is queued exactly once
// and outlives the queue, so each address names one item.
#include <wq/wq.hpp>

#include <chrono>
#include <cstdio>
#include <future>

namespace wq_usdt_test {

struct items {
  wq::work a;
  wq::work b;
  wq::delayed_work c;
  wq::delayed_work d;
  std::promise<void> a_started, c_ran;
  std::future<void> release_a;

  static void run(items* self, wq::id<&items::a>) noexcept {
    self->a_started.set_value();
    self->release_a.wait();  // holds the only worker while `b` is queued
  }
  static void run(items*, wq::id<&items::b>) noexcept {}
  static void run(items* self, wq::id<&items::c>) noexcept { self->c_ran.set_value(); }
  static void run(items*, wq::id<&items::d>) noexcept {}
};

}  // namespace wq_usdt_test

namespace {

void print_item(std::FILE* out, const char* label, const wq::work& item) {
  std::fprintf(out, "item %s %p %s\n", label, static_cast<const void*>(&item), wq::work_name(item));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: usdt_probes ITEMS_FILE\n");
    return 1;
  }
  using namespace std::chrono_literals;
  using wq_usdt_test::items;
  items it;
  std::promise<void> release;
  it.release_a = release.get_future();
  {
    // One thread and max_active 1: while `a` runs, the queue has no idle worker to start.
    wq::workqueue q("usdt_probe", {.max_active = 1, .threads = 1});
    if (!q.enqueue<&items::a>(&it)) return 2;
    it.a_started.get_future().wait();
    if (!q.enqueue<&items::b>(&it)) return 3;
    release.set_value();
    if (q.flush()) return 8;
    if (!q.enqueue_delayed<&items::c>(&it, 1ms)) return 4;
    it.c_ran.get_future().wait();  // flush() does not wait for an armed item
    if (q.flush()) return 8;
    if (!q.enqueue_delayed<&items::d>(&it, 1h)) return 5;
    if (!wq::flush_delayed_work(it.d)) return 6;
    if (q.destroy()) return 7;
  }
  std::FILE* out = std::fopen(argv[1], "w");
  if (out == nullptr) return 9;
  print_item(out, "a", it.a);
  print_item(out, "b", it.b);
  print_item(out, "c", it.c);
  print_item(out, "d", it.d);
  if (std::fclose(out) != 0) return 9;
  return 0;
}
