// SPDX-License-Identifier: BSL-1.0
// Misuse under the debug-build policy (diagnostics.hpp): with wq::abort_on_misuse installed,
// each misuse of semantics.md §5 the kernel would WARN about must end the program with its
// report. ctest runs this program once per case (argv[1]) and expects an abort whose stderr
// names the code. "notice" is the control: a notice must not abort.
#include <wq/wq.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <latch>

#include <boost/asio/io_context.hpp>

namespace {

struct item {
  wq::work w;
  static void run(item*, wq::id<&item::w>) noexcept {}
};

// An item whose function runs `body` once.
struct fn_item {
  wq::work w;
  void (*body)(fn_item&) = nullptr;
  void* ctx = nullptr;
  static void run(fn_item* self, wq::id<&fn_item::w>) noexcept { self->body(*self); }
};

int run_in_item(void (*body)(fn_item&), void* ctx, wq::workqueue& q) {
  fn_item it;
  it.body = body;
  it.ctx = ctx;
  if (!q.enqueue<&fn_item::w>(&it)) return 2;
  (void)q.drain();
  return 0;
}

int destroy_pending() {
  boost::asio::io_context io;  // never run: the item stays queued
  wq::workqueue q{io.get_executor(), "misuse"};
  auto* p = new item;
  if (!q.enqueue<&item::w>(p)) return 2;
  delete p;  // misuse: reported here
  return 0;
}

struct running_item {
  wq::work w;
  std::latch* started = nullptr;
  std::atomic<bool>* release = nullptr;
  static void run(running_item* self, wq::id<&running_item::w>) noexcept {
    std::atomic<bool>* release = self->release;
    self->started->count_down();
    release->wait(false);  // never released: the program aborts first
  }
};

int destroy_running() {
  wq::workqueue q{"misuse"};
  std::latch started{1};
  std::atomic<bool> release{false};
  auto* p = new running_item;
  p->started = &started;
  p->release = &release;
  if (!q.enqueue<&running_item::w>(p)) return 2;
  started.wait();
  delete p;  // misuse: its function runs on the pool thread
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  wq::set_diagnostic_handler(&wq::abort_on_misuse);
  const char* c = argc > 1 ? argv[1] : "";
  wq::workqueue q{"misuse", {.threads = 2}};
  if (std::strcmp(c, "destroyed_while_pending") == 0) return destroy_pending();
  if (std::strcmp(c, "destroyed_while_running") == 0) return destroy_running();
  if (std::strcmp(c, "flush_self") == 0)
    return run_in_item([](fn_item& self) { (void)wq::flush_work(self.w); }, nullptr, q);
  if (std::strcmp(c, "cancel_sync_self") == 0)
    return run_in_item([](fn_item& self) { (void)wq::cancel_work_sync(self.w); }, nullptr, q);
  if (std::strcmp(c, "wait_on_own_queue") == 0)
    return run_in_item([](fn_item& self) { (void)static_cast<wq::workqueue*>(self.ctx)->flush(); },
                       &q, q);
  if (std::strcmp(c, "wait_needs_this_worker") == 0) {
    wq::ordered_workqueue oq{"misuse-ordered"};
    static item behind;
    return run_in_item(
        [](fn_item& self) {
          auto* queue = static_cast<wq::workqueue*>(self.ctx);
          if (queue->enqueue<&item::w>(&behind)) (void)wq::flush_work(behind.w);
        },
        &oq, oq);
  }
  if (std::strcmp(c, "disable_count_underflow") == 0) {
    item it;
    (void)wq::enable_work(it.w);
    return 0;
  }
  if (std::strcmp(c, "no_work_function") == 0) {
    wq::work w;
    (void)wq::queue_work(q, w);
    return 0;
  }
  if (std::strcmp(c, "set_max_active_on_ordered") == 0) {
    wq::ordered_workqueue oq{"misuse-ordered"};
    (void)oq.set_max_active(4);
    return 0;
  }
  if (std::strcmp(c, "notice") == 0) {
    wq::workqueue clamped{"clamped", {.max_active = 99999}};  // a notice: no abort
    std::fprintf(stderr, "max_active %d\n", clamped.max_active());
    return 0;
  }
  std::fprintf(stderr, "unknown case '%s'\n", c);
  return 2;
}
