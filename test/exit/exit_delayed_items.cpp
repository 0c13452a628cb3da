// SPDX-License-Identifier: BSL-1.0
// Exit order (issue 6, item 5b): delayed items alive at exit. An armed item of static storage
// duration that targets a system queue is cancelled when that queue shuts down (a notice, the
// function never runs), so its own destructor later finds it idle. An armed item on a user
// queue that is never destroyed (leaked at exit) simply never fires: nothing of it runs and
// nothing crashes while the process ends; wq's timer thread and registries are immortal and
// stay reachable, so LeakSanitizer reports none of them.
#include <wq/wq.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

struct timed {
  wq::delayed_work d;
  const char* name = "";
  static void run(timed* self, wq::id<&timed::d>) noexcept {
    std::printf("%s: ran (must not happen)\n", self->name);
  }
};

// Constructed before system_wq's first use, so destroyed after its shutdown cancelled it.
struct holder {
  timed item;
  ~holder() {
    std::printf("static item: pending at its destruction: %d\n",
                wq::delayed_work_pending(item.d) ? 1 : 0);
    std::fflush(stdout);
  }
} armed_static;

// Prints diagnostics to stdout, so they interleave with this program's lines in order.
void to_stdout(const wq::diagnostic& d) noexcept {
  std::printf("diagnostic %d%s: %s\n", static_cast<int>(d.code), d.misuse() ? " (misuse)" : "",
              d.message);
  std::fflush(stdout);
}

// A user queue and an item armed on it, deliberately never destroyed.
wq::workqueue* leaked_queue = nullptr;
timed* leaked_item = nullptr;

}  // namespace

int main() {
  wq::set_diagnostic_handler(&to_stdout);
  armed_static.item.name = "static item";
  if (!wq::system_wq().enqueue_delayed<&timed::d>(&armed_static.item, std::chrono::hours(1)))
    return 2;
  leaked_queue = new wq::workqueue("leaked", {.threads = 1});
  leaked_item = new timed;
  leaked_item->name = "leaked item";
  if (!leaked_queue->enqueue_delayed<&timed::d>(leaked_item, std::chrono::hours(1))) return 2;
  std::printf("main: exiting with two armed items\n");
  std::fflush(stdout);
  return 0;
}
