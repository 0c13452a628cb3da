// SPDX-License-Identifier: BSL-1.0
// Exit order (issue 6, item 5a): system queues during static destruction. A system queue is
// shut down at the point of static destruction that mirrors its first use: objects constructed
// after that first use are destroyed before the shutdown and may still queue and flush on it;
// objects constructed before it are destroyed after, and their queueing returns `rejected`
// (nothing runs, nothing touches joined threads). exit() also waits for an item that is running
// on a system queue. The ctest checks the exit code and the order of the lines printed.
#include <wq/wq.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <latch>

namespace {

std::atomic<bool> exiting{false};
std::atomic<int> long_item_done{0};

struct printer {
  wq::work w;
  const char* text = "";
  static void run(printer* self, wq::id<&printer::w>) noexcept { std::printf("%s\n", self->text); }
};

// Runs when main calls exit(), which must wait for it before the process ends.
struct long_item {
  wq::work w;
  std::latch* started = nullptr;
  static void run(long_item* self, wq::id<&long_item::w>) noexcept {
    self->started->count_down();
    while (!exiting.load()) exiting.wait(false);
    long_item_done.store(1);
    std::printf("long item: finished after exit() began\n");
  }
};

// Constructed before main, before system_wq's first use: destroyed after its shutdown.
struct early_user {
  printer p;
  ~early_user() {
    p.text = "early user: ran (must not happen)";
    const wq::queue_status st = wq::system_wq().enqueue<&printer::w>(&p).status;
    std::printf("early user: after the shutdown, queueing returns %s; the long item finished: %d\n",
                wq::to_string(st), long_item_done.load());
    std::fflush(stdout);
  }
} early;

// Constructed in main after system_wq's first use: destroyed before its shutdown.
struct late_user {
  printer p;
  ~late_user() {
    p.text = "late user: its item ran during static destruction";
    if (!wq::system_wq().enqueue<&printer::w>(&p)) std::printf("late user: refused\n");
    (void)wq::flush_work(p.w);
    std::fflush(stdout);
  }
};

long_item running;  // static storage: still alive while exit() waits for it

}  // namespace

int main() {
  std::latch started{1};
  running.started = &started;
  if (!wq::system_wq().enqueue<&long_item::w>(&running)) return 2;  // system_wq's first use
  static late_user late;
  started.wait();
  std::printf("main: calling exit(0) while an item runs\n");
  std::fflush(stdout);
  exiting.store(true);
  exiting.notify_all();
  std::exit(0);
}
