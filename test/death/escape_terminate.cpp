// SPDX-License-Identifier: BSL-1.0
// Death tests for the exception policy (issue 6, item 2) and the one fault that ends the
// program: an exception escaping a work function ends in std::terminate, whichever way the
// function was queued; arming a delayed item when no memory is left for its timer wait does too.
//
// ctest runs this program once per case (argv[1]) through test/misuse/expect_abort.cmake and
// expects an abnormal exit whose stderr carries the marker printed by the terminate handler
// installed below, naming the exception that escaped. "caught" is the control: a work function
// that catches its own exception, as users should, lets the program finish normally.
#include <wq/wq.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <latch>
#include <new>
#include <stdexcept>

#include <boost/asio/post.hpp>

#include <wq/detail/handler_memory.hpp>

#include "support/replaced_new.hpp"

namespace {
thread_local bool tl_fail_new = false;  // operator new fails on this thread while set
[[gnu::noinline]] void plain_free(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) {
  if (!tl_fail_new) {
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { plain_free(p); }
void operator delete(void* p, std::size_t) noexcept { plain_free(p); }

namespace {

// Prints which exception ended the program, then aborts as the default handler would.
[[noreturn]] void report_terminate() noexcept {
  const char* what = "no exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
      what = "an exception not derived from std::exception";
    }
  }
  std::fprintf(stderr, "wq-test: std::terminate called: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

[[noreturn]] void throw_from(const char* where) { throw std::runtime_error(where); }

// (a) A typed member work function. Its `run` must be noexcept (a compile error otherwise,
// test/compile_fail/run_not_noexcept.cpp), so the exception cannot leave it.
struct typed_item {
  wq::work w;
  static void run(typed_item*, wq::id<&typed_item::w>) noexcept {
    throw_from("escaped from a typed member work function");
  }
};

// (b) A C-style work function (wq::work_func is a noexcept function pointer type).
void c_style_function(wq::work*) noexcept { throw_from("escaped from a C-style work function"); }

// (e) A delayed item's function, run after its timer fired.
struct delayed_item {
  wq::delayed_work d;
  static void run(delayed_item*, wq::id<&delayed_item::d>) noexcept {
    throw_from("escaped from a delayed work function");
  }
};

// The control: what users should do instead.
struct careful_item {
  wq::work w;
  std::latch* done = nullptr;
  static void run(careful_item* self, wq::id<&careful_item::w>) noexcept {
    try {
      throw_from("thrown inside the function");
    } catch (const std::exception& e) {
      std::printf("caught inside the work function: %s\n", e.what());
    }
    self->done->count_down();
  }
};

// Returns when `q` has run everything: only reached if the case did not terminate.
int finished(wq::workqueue& q) {
  (void)q.drain();
  std::fprintf(stderr, "wq-test: the work function returned normally\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(&report_terminate);
  const char* c = argc > 1 ? argv[1] : "";
  wq::workqueue q{"escape", {.threads = 2}};
  if (std::strcmp(c, "member") == 0) {
    static typed_item item;
    if (!q.enqueue<&typed_item::w>(&item)) return 2;
    return finished(q);
  }
  if (std::strcmp(c, "c_style") == 0) {
    static wq::work item{wq::fn_ops<&c_style_function>};
    if (!wq::queue_work(q, item)) return 2;
    return finished(q);
  }
  if (std::strcmp(c, "spawn") == 0) {
    if (wq::try_spawn(q, [] { throw_from("escaped from a try_spawn closure"); })) return 2;
    return finished(q);
  }
  if (std::strcmp(c, "executor") == 0) {
    boost::asio::post(q.get_executor(),
                      [] { throw_from("escaped from a function posted to get_executor()"); });
    return finished(q);
  }
  if (std::strcmp(c, "delayed") == 0) {
    static delayed_item item;
    if (!q.enqueue_delayed<&delayed_item::d>(&item, wq::jiffies{1})) return 2;
    (void)wq::flush_delayed_work(item.d);
    return finished(q);
  }
  if (std::strcmp(c, "arm_oom") == 0) {
    // The handler pool starts empty in a new process, so the timer wait's operation needs a
    // new block: with operator new failing, arming cannot keep its promise to queue the item
    // later and ends the program instead (src/delayed_work.cpp, start_wait).
    static delayed_item item;
    tl_fail_new = true;
    (void)q.enqueue_delayed<&delayed_item::d>(&item, std::chrono::hours(1));
    tl_fail_new = false;
    std::fprintf(stderr, "wq-test: arming survived\n");
    (void)wq::cancel_delayed_work_sync(item.d);
    return 0;
  }
  if (std::strcmp(c, "caught") == 0) {
    std::latch done{1};
    careful_item item;
    item.done = &done;
    if (!q.enqueue<&careful_item::w>(&item)) return 2;
    done.wait();
    return finished(q);
  }
  std::fprintf(stderr, "unknown case '%s'\n", c);
  return 2;
}
