// SPDX-License-Identifier: BSL-1.0
// Exit order (issue 6, item 5c): a queue destroyed before the items that last targeted it.
// Items keep no reference to a queue once idle: after the queue is destroyed they may be
// queued elsewhere, queueing them on the destroyed queue returns `rejected`, and they may be
// destroyed at any later time. An item armed on the queue when it was destroyed was cancelled
// (a notice) and is idle afterwards.
#include <wq/wq.hpp>

#include <chrono>
#include <cstdio>
#include <latch>
#include <memory>

namespace {

struct item {
  wq::work w;
  wq::delayed_work d;
  std::latch* done = nullptr;
  const char* where = "";
  static void run(item* self, wq::id<&item::w>) noexcept {
    std::printf("plain item ran on %s\n", self->where);
    self->done->count_down();
  }
  static void run(item* self, wq::id<&item::d>) noexcept {
    std::printf("delayed item ran on %s\n", self->where);
    self->done->count_down();
  }
};

}  // namespace

int main() {
  auto it = std::make_unique<item>();
  {
    auto first = std::make_unique<wq::workqueue>("first", wq::queue_options{.threads = 1});
    std::latch ran{1};
    it->done = &ran;
    it->where = "first";
    if (!first->enqueue<&item::w>(it.get())) return 2;
    ran.wait();
    if (!first->enqueue_delayed<&item::d>(it.get(), std::chrono::hours(1))) return 2;
    wq::workqueue* gone = first.get();
    if (gone->destroy()) return 3;  // cancels the armed item
    std::printf("destroyed 'first': %llu armed item cancelled, delayed item pending: %d\n",
                static_cast<unsigned long long>(gone->cancelled_on_destroy()),
                wq::delayed_work_pending(it->d) ? 1 : 0);
    std::printf("queueing on the destroyed queue: %s\n",
                wq::to_string(gone->enqueue<&item::w>(it.get()).status));
  }  // 'first' is freed here; the item lives on
  {
    wq::workqueue second{"second", {.threads = 1}};
    std::latch ran{2};
    it->done = &ran;
    it->where = "second";
    if (!second.enqueue<&item::w>(it.get())) return 4;
    if (!second.enqueue_delayed<&item::d>(it.get(), wq::jiffies{1})) return 4;
    ran.wait();
  }  // 'second' destroyed before the item too
  it.reset();
  std::printf("item destroyed after both queues\n");
  return 0;
}
