// SPDX-License-Identifier: BSL-1.0
// Tests for wq/diagnostics.hpp: the "wq" error codes, the diagnostic handler, and the misuse
// that is reported *and repaired* rather than left to crash or hang (semantics.md §5.2, §5.10):
// destroying a pending item, destroying an item whose function runs on another thread, and
// destroying a queue from one of its own items. The debug-build abort of each misuse is tested
// by test/misuse (ctest "misuse: ...").
//
// Worker threads never call Catch2 macros; they record into atomics the test thread checks.
#include <wq/diagnostics.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <wq/cancel.hpp>
#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/flush.hpp>
#include <wq/kernel.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/shared_work.hpp>
#include <wq/workqueue.hpp>

#include "support/items.hpp"
#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

namespace {

using wq::errc;
using wq::queue_flags;
using wq::queue_status;
using wq_test::latch;
using wq_test::must_happen;

struct plain_item {
  wq::work w;
  std::atomic<int>* runs = nullptr;
  static void run(plain_item* self, wq::id<&plain_item::w>) noexcept { self->runs->fetch_add(1); }
};

struct delayed_item {
  wq::delayed_work dw;
  std::atomic<int>* runs = nullptr;
  static void run(delayed_item* self, wq::id<&delayed_item::dw>) noexcept {
    self->runs->fetch_add(1);
  }
};

// ---- codes and handler ------------------------------------------------------------------------

TEST_CASE("diagnostics: codes form the \"wq\" error category and say whether they are misuse",
          "[diagnostics]") {
  const std::error_code ec = errc::flush_self;
  CHECK(ec.category().name() == std::string("wq"));
  CHECK(ec == errc::flush_self);
  CHECK(ec != errc::cancel_sync_self);
  CHECK(ec.message().find("own work function") != std::string::npos);
  for (errc e :
       {errc::flush_self, errc::cancel_sync_self, errc::wait_on_own_queue,
        errc::wait_needs_this_worker, errc::destroyed_while_pending, errc::destroyed_while_running,
        errc::no_work_function, errc::disable_count_overflow, errc::disable_count_underflow,
        errc::set_max_active_on_ordered, errc::untyped_on_owning_item, errc::null_pointer,
        errc::wait_on_paused_queue, errc::executor_stopped, errc::executor_not_running,
        errc::wait_cycle, errc::blocking_region_misuse, errc::wait_in_rcu_read_section,
        errc::typed_on_c_style_item}) {
    CHECK(wq::is_misuse(e));
    CHECK(make_error_code(e).message() != "unknown wq error");
  }
  for (errc e : {errc::max_active_clamped, errc::armed_items_cancelled, errc::worker_post_failed,
                 errc::item_stalled, errc::queue_stalled, errc::items_dropped, errc::pool_saturated,
                 errc::priority_not_raised, errc::bad_cpu_hint, errc::system_queue_flushed,
                 errc::rcu_grace_period_stalled}) {
    CHECK_FALSE(wq::is_misuse(e));
    CHECK(make_error_code(e).message() != "unknown wq error");
  }
}

TEST_CASE(
    "diagnostics: set_diagnostic_handler returns the previous handler, nullptr restores the "
    "default",
    "[diagnostics]") {
  static std::atomic<int> calls{0};
  calls.store(0);
  const wq::diagnostic_handler counting = [](const wq::diagnostic& d) noexcept {
    if (d.code == errc::max_active_clamped && d.error() == errc::max_active_clamped && !d.misuse())
      calls.fetch_add(1);
  };
  const wq::diagnostic_handler original = wq::set_diagnostic_handler(counting);
  { wq::workqueue q{"clamp", {.max_active = 5000, .threads = 1}}; }
  CHECK(calls.load() == 1);
  CHECK(wq::set_diagnostic_handler(nullptr) == counting);
  // The default is back: installing the original again hands the default out.
  const wq::diagnostic_handler def = wq::set_diagnostic_handler(original);
  CHECK((def == &wq::abort_on_misuse || def == &wq::print_diagnostic));
  CHECK(calls.load() == 1);
}

// ---- printing: the notice limit -----------------------------------------------------------------

// Sends what this process writes to stderr into a temporary file until text() is called.
class stderr_capture {
 public:
  stderr_capture() : file_(std::tmpfile()) {
    REQUIRE(file_ != nullptr);
    std::fflush(stderr);
    saved_ = ::dup(2);
    REQUIRE(saved_ >= 0);
    REQUIRE(::dup2(::fileno(file_), 2) == 2);
  }
  ~stderr_capture() { restore(); }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;

  /// Restores stderr and returns everything written to it meanwhile.
  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_ = -1;
};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_CASE(
    "diagnostics: print_diagnostic prints a burst of each notice code per interval and counts "
    "the rest but prints every misuse",
    "[diagnostics]") {
  const wq::notice_limit before =
      wq::set_notice_limit({.burst = 3, .interval = std::chrono::hours(1)});
  stderr_capture cap;
  for (int i = 0; i < 100; ++i)
    wq::print_diagnostic(
        {errc::armed_items_cancelled, "queue 'session': 1 armed item(s) cancelled"});
  for (int i = 0; i < 5; ++i) wq::print_diagnostic({errc::max_active_clamped, "clamped"});
  for (int i = 0; i < 20; ++i) wq::print_diagnostic({errc::flush_self, "from itself"});
  // Setting the limit again prints what was counted.
  const wq::notice_limit mine = wq::set_notice_limit(before);
  const std::string out = cap.text();
  CHECK(mine.burst == 3);
  CHECK(count_of(out, "wq: notice armed_items_cancelled: queue 'session'") == 3);
  CHECK(count_of(out, "wq: notice armed_items_cancelled: 97 more like this suppressed") == 1);
  CHECK(count_of(out, "wq: notice max_active_clamped: clamped") == 3);
  CHECK(count_of(out, "wq: notice max_active_clamped: 2 more like this suppressed") == 1);
  CHECK(count_of(out, "wq: misuse flush_self: from itself") == 20);
  CHECK(count_of(out, "\n") == 3 + 1 + 3 + 1 + 20);
}

TEST_CASE("diagnostics: a burst of 0 or an interval of 0 prints every notice", "[diagnostics]") {
  const wq::notice_limit before = wq::set_notice_limit({.burst = 0, .interval = {}});
  {
    stderr_capture cap;
    for (int i = 0; i < 50; ++i) wq::print_diagnostic({errc::bad_cpu_hint, "cpu 4096"});
    CHECK(count_of(cap.text(), "wq: notice bad_cpu_hint: cpu 4096") == 50);
  }
  // An interval of 0: every line starts a window, so the burst never runs out.
  wq::set_notice_limit({.burst = 1, .interval = {}});
  {
    stderr_capture cap;
    for (int i = 0; i < 50; ++i) wq::print_diagnostic({errc::bad_cpu_hint, "cpu 4096"});
    const std::string out = cap.text();
    CHECK(count_of(out, "wq: notice bad_cpu_hint: cpu 4096") == 50);
    CHECK(count_of(out, "suppressed") == 0);
  }
  wq::set_notice_limit(before);
}

TEST_CASE(
    "diagnostics: each new window prints the count of the last one first so printed and counted "
    "lines add up to every notice",
    "[diagnostics]") {
  const wq::notice_limit before =
      wq::set_notice_limit({.burst = 2, .interval = std::chrono::milliseconds(5)});
  stderr_capture cap;
  // Notices for 60 ms: about 12 windows of 5 ms, each printing 2 lines and counting the rest.
  long total = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(60);
  while (std::chrono::steady_clock::now() < end) {
    wq::print_diagnostic({errc::pool_saturated, "pool 'p'"});
    ++total;
  }
  wq::set_notice_limit(before);  // prints the last window's count
  const std::string out = cap.text();
  long printed = 0;
  long counted = 0;
  long counts = 0;
  const std::string count_line = "wq: notice pool_saturated: ";
  for (std::size_t at = 0, nl = 0; at < out.size(); at = nl + 1) {
    nl = out.find('\n', at);
    if (nl == std::string::npos) nl = out.size();
    const std::string line = out.substr(at, nl - at);
    if (line == "wq: notice pool_saturated: pool 'p'") {
      ++printed;
    } else if (line.rfind(count_line, 0) == 0 &&
               line.find("more like this suppressed") != std::string::npos) {
      counted += std::stol(line.substr(count_line.size()));
      ++counts;
    } else {
      FAIL("unexpected line: " << line);
    }
  }
  CHECK(printed + counted == total);
  CHECK(printed >= 4);  // at least two windows in 60 ms
  CHECK(counts >= 2);
  CHECK(printed <= 2 * (counts + 1));  // never more than the burst per window
}

TEST_CASE("diagnostics: threads printing the same notice at once share its burst and count",
          "[diagnostics]") {
  const wq::notice_limit before =
      wq::set_notice_limit({.burst = 10, .interval = std::chrono::hours(1)});
  stderr_capture cap;
  {
    std::jthread a([] {
      for (int i = 0; i < 1000; ++i) wq::print_diagnostic({errc::queue_stalled, "stalled"});
    });
    std::jthread b([] {
      for (int i = 0; i < 1000; ++i) wq::print_diagnostic({errc::queue_stalled, "stalled"});
    });
  }
  wq::set_notice_limit(before);
  const std::string out = cap.text();
  CHECK(count_of(out, "wq: notice queue_stalled: stalled") == 10);
  CHECK(count_of(out, "wq: notice queue_stalled: 1990 more like this suppressed") == 1);
}

TEST_CASE("diagnostics: notices suppressed when the program exits are counted at exit",
          "[diagnostics]") {
  char path[] = "/tmp/wq-notice-exit-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(nullptr);  // nothing buffered is written twice by the child
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(fd, 2);
    wq::set_notice_limit({.burst = 1, .interval = std::chrono::hours(1)});
    for (int i = 0; i < 4; ++i) wq::print_diagnostic({errc::items_dropped, "dropped"});
    std::exit(0);  // runs the atexit hook the first suppressed notice registered
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n = 0; (n = ::read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  ::unlink(path);
  CHECK(count_of(out, "wq: notice items_dropped: dropped") == 1);
  CHECK(count_of(out, "wq: notice items_dropped: 3 more like this suppressed") == 1);
}

// ---- §5.2: queue-wide waits from the queue's own items ---------------------------------------

TEST_CASE(
    "diagnostics: flush, drain and destroy from the queue's own item return "
    "errc::wait_on_own_queue and change nothing (§5.2)",
    "[diagnostics][misuse][rule26][rule49][rule50]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"self", {.threads = 2}};
  std::atomic<int> ok{0};
  latch done{1};
  latch release{1};
  // Another item in flight, so that destroy() has something to wait for (destroying a queue
  // with nothing but the caller in flight is allowed, see the next test).
  wq_test::fn_item blocker{[&](wq_test::fn_item&) { (void)release.wait_for(must_happen); }};
  REQUIRE(wq_test::enqueue(q, blocker) == queue_status::queued);
  wq_test::fn_item x{[&](wq_test::fn_item&) {
    ok.fetch_add(q.flush() == errc::wait_on_own_queue ? 1 : 0);
    ok.fetch_add(q.drain() == errc::wait_on_own_queue ? 1 : 0);
    ok.fetch_add(q.destroy() == errc::wait_on_own_queue ? 1 : 0);
    done.count_down();
  }};
  REQUIRE(wq_test::enqueue(q, x) == queue_status::queued);
  REQUIRE(done.wait_for(must_happen));
  release.count_down();
  CHECK(q.drain() == std::error_code{});
  CHECK(ok.load() == 3);
  CHECK(warnings.count(errc::wait_on_own_queue) == 3);
  latch again{1};
  wq_test::fn_item y{[&](wq_test::fn_item&) { again.count_down(); }};
  REQUIRE(wq_test::enqueue(q, y) == queue_status::queued);  // not destroyed
  CHECK(again.wait_for(must_happen));
  CHECK(q.destroy() == std::error_code{});
}

/// Owns a queue and an item on it; the item's run drops the last reference, so the queue's
/// destructor runs on one of the queue's own workers.
struct self_owner {
  std::unique_ptr<wq::workqueue> queue;
  wq::shared_work last;
  std::atomic<int>* after_runs = nullptr;
  latch* released = nullptr;
  latch* go = nullptr;  // the test has dropped its reference: ours is the last
  static void run(std::shared_ptr<self_owner> self, wq::id<&self_owner::last>) noexcept {
    latch* released = self->released;
    (void)self->go->wait_for(must_happen);
    self.reset();  // destroys the queue from its own item
    released->count_down();
  }
};

TEST_CASE(
    "diagnostics: a queue destroyed from one of its own items finishes in the background, "
    "never hangs (§5.2, rule 50)",
    "[diagnostics][misuse][rule50]") {
  wq_test::warning_catcher warnings;
  std::atomic<int> runs{0};
  latch released{1};
  latch go{1};
  boost::asio::io_context io;

  SECTION("owning its pool: the pool is joined by a helper thread") {
    auto owner = std::make_shared<self_owner>();
    owner->queue = std::make_unique<wq::workqueue>(
        "self-destroy", wq::queue_options{.max_active = 1, .threads = 1});
    owner->released = &released;
    owner->go = &go;
    // Behind the destroying item (max_active 1): these still run, as a drain would run them.
    plain_item behind[3];
    for (auto& b : behind) b.runs = &runs;
    REQUIRE(owner->queue->enqueue<&self_owner::last>(owner));
    for (auto& b : behind) REQUIRE(owner->queue->enqueue<&plain_item::w>(&b));
    owner.reset();
    go.count_down();
    REQUIRE(released.wait_for(must_happen));
    REQUIRE(wq_test::poll_until([&] { return runs.load() == 3; }));
    CHECK(warnings.count(errc::wait_on_own_queue) == 1);
    // The items are idle and may go; the queue they last ran on is gone.
    for (auto& b : behind) CHECK_FALSE(b.w.is_pending());
  }
  SECTION("on an io_context, with items behind: the last item retires it") {
    auto owner = std::make_shared<self_owner>();
    owner->queue = std::make_unique<wq::workqueue>(io.get_executor(), "self-destroy-io",
                                                   wq::queue_options{.max_active = 1});
    owner->released = &released;
    owner->go = &go;
    plain_item behind;
    behind.runs = &runs;
    REQUIRE(owner->queue->enqueue<&self_owner::last>(owner));
    REQUIRE(owner->queue->enqueue<&plain_item::w>(&behind));
    owner.reset();
    go.count_down();
    io.run();  // returns: nothing of the queue is left to run
    CHECK(released.remaining() == 0);
    CHECK(runs.load() == 1);
    CHECK(warnings.count(errc::wait_on_own_queue) == 1);
  }
  SECTION("the only item in flight destroys it at once: not a misuse (issue 13, point 6)") {
    auto owner = std::make_shared<self_owner>();
    owner->queue = std::make_unique<wq::workqueue>(io.get_executor(), "self-destroy-idle");
    owner->released = &released;
    owner->go = &go;
    REQUIRE(owner->queue->enqueue<&self_owner::last>(owner));
    owner.reset();
    go.count_down();
    io.run();
    CHECK(released.remaining() == 0);
    CHECK(warnings.size() == 0);
  }
}

// ---- §5.10: destroying items that are pending or running -------------------------------------

TEST_CASE(
    "diagnostics: destroying a pending item cancels it and reports "
    "errc::destroyed_while_pending, the queue keeps working (§5.10)",
    "[diagnostics][misuse]") {
  wq_test::warning_catcher warnings;
  std::atomic<int> runs{0};
  boost::asio::io_context io;
  wq::workqueue q{io.get_executor(), "pending-destroy"};
  wq_test::drive_on_exit drive{io};

  SECTION("queued") {
    auto* p = new plain_item;
    p->runs = &runs;
    REQUIRE(q.enqueue<&plain_item::w>(p));
    delete p;  // misuse: repaired by unlinking it
    CHECK(warnings.count(errc::destroyed_while_pending) == 1);
  }
  SECTION("armed") {
    auto* p = new delayed_item;
    p->runs = &runs;
    REQUIRE(q.enqueue_delayed<&delayed_item::dw>(p, wq::jiffies{1}));
    delete p;  // misuse: repaired by cancelling its timer
    CHECK(warnings.count(errc::destroyed_while_pending) == 1);
  }
  // Nothing of the destroyed item runs (ASan would report a use after free) and the queue
  // still works and drains.
  plain_item ok;
  ok.runs = &runs;
  REQUIRE(q.enqueue<&plain_item::w>(&ok));
  io.restart();
  io.run_for(std::chrono::milliseconds(50));  // long enough for a 1-jiffy timer to have fired
  CHECK(runs.load() == 1);
  CHECK(q.destroy() == std::error_code{});
  CHECK(q.cancelled_on_destroy() == 0);
}

/// An item whose function signals that it started, then waits for `release`.
struct blocking_item {
  wq::work w;
  latch* started = nullptr;
  latch* release = nullptr;
  std::atomic<bool>* finished = nullptr;
  static void run(blocking_item* self, wq::id<&blocking_item::w>) noexcept {
    latch* release = self->release;
    std::atomic<bool>* finished = self->finished;
    self->started->count_down();
    (void)release->wait_for(must_happen);
    finished->store(true);  // touches no member: the item is being destroyed meanwhile
  }
};

TEST_CASE(
    "diagnostics: destroying an item while its function runs on another thread reports "
    "errc::destroyed_while_running and waits for the function (§5.10)",
    "[diagnostics][misuse]") {
  wq_test::warning_catcher reported{errc::destroyed_while_running};
  wq::workqueue q{"running-destroy", {.threads = 1}};
  latch started{1};
  latch release{1};
  std::atomic<bool> finished{false};
  auto* p = new blocking_item;
  p->started = &started;
  p->release = &release;
  p->finished = &finished;
  REQUIRE(q.enqueue<&blocking_item::w>(p));
  REQUIRE(started.wait_for(must_happen));
  // Releases the function only once the destructor has reported: the destructor is then
  // blocked until the function returns.
  std::thread releaser([&] {
    if (reported.fired.wait_for(must_happen)) release.count_down();
  });
  delete p;  // misuse: waits for the function
  const bool finished_first = finished.load();
  releaser.join();
  CHECK(reported.count() == 1);
  CHECK(finished_first);
  CHECK(q.drain() == std::error_code{});
}

/// Destroys itself in its function (rule 4), then keeps running until released. C-style: its
/// work function is bound at construction, so every object of the type has the same identity
/// function (rule 11) whether it was ever queued or not.
struct self_freeing_item {
  wq::work w{wq::fn_ops<&self_freeing_item::fn>};
  latch* freed = nullptr;
  latch* release = nullptr;
  static void fn(wq::work* item) noexcept {
    self_freeing_item* self = wq::container_of<&self_freeing_item::w>(item);
    latch* freed = self->freed;
    latch* release = self->release;
    self->~self_freeing_item();  // legal: the library never touches the item after the call
    freed->count_down();
    (void)release->wait_for(must_happen);
  }
};

TEST_CASE(
    "diagnostics: an object built where an item freed itself inside its still-running "
    "function is not taken for the running one (no false destroyed_while_running)",
    "[diagnostics][rule4][rule11]") {
  // Issue 13, observed point 8: the new object's destructor matched the old run (same address,
  // same function), waited the 1 s grace, reported destroyed_while_running, then waited for a
  // function that here waits for the test thread: a hang.
  wq_test::warning_catcher warnings;
  wq::workqueue q{"self-free", {.threads = 1}};
  alignas(self_freeing_item) unsigned char storage[sizeof(self_freeing_item)];
  latch freed{1};
  latch release{1};
  auto* first = ::new (static_cast<void*>(storage)) self_freeing_item;
  first->freed = &freed;
  first->release = &release;
  REQUIRE(wq::queue_work(q, first->w));
  REQUIRE(freed.wait_for(must_happen));  // its function runs on, its object is gone
  const auto start = std::chrono::steady_clock::now();
  auto* second = ::new (static_cast<void*>(storage)) self_freeing_item;  // same address
  second->~self_freeing_item();  // idle, never queued: no report, no wait
  const auto took = std::chrono::steady_clock::now() - start;
  release.count_down();
  CHECK(q.drain() == std::error_code{});
  CHECK(warnings.size() == 0);
  CHECK(took < std::chrono::milliseconds(500));
}

/// Hands itself to the test thread as the last thing its function does.
struct handoff_item {
  wq::work w;
  latch* handed = nullptr;
  static void run(handoff_item* self, wq::id<&handoff_item::w>) noexcept {
    self->handed->count_down();  // from here on the test thread may destroy *self
  }
};

TEST_CASE(
    "diagnostics: an item handed off by its function just before it returns may be "
    "destroyed at once, without a report (rule 4)",
    "[diagnostics][rule4]") {
  wq_test::warning_catcher warnings;
  wq::workqueue q{"handoff", {.threads = 2}};
  constexpr int rounds = 2000;
  int ok = 0;
  for (int i = 0; i < rounds; ++i) {
    latch handed{1};
    auto* p = new handoff_item;
    p->handed = &handed;
    if (!q.enqueue<&handoff_item::w>(p)) break;
    if (!handed.wait_for(must_happen)) break;
    delete p;  // the worker may not have left the function's epilogue yet: not misuse
    ++ok;
  }
  CHECK(ok == rounds);
  CHECK(warnings.size() == 0);
}

TEST_CASE("diagnostics: an item may destroy itself inside its own function (rule 4)",
          "[diagnostics][rule4]") {
  struct self_deleting {
    wq::work w;
    latch* done = nullptr;
    static void run(std::unique_ptr<self_deleting> self, wq::id<&self_deleting::w>) noexcept {
      latch* done = self->done;
      self.reset();
      done->count_down();
    }
  };
  wq_test::warning_catcher warnings;
  wq::workqueue q{"self-delete", {.threads = 2}};
  latch done{100};
  for (int i = 0; i < 100; ++i) {
    auto p = std::make_unique<self_deleting>();
    p->done = &done;
    REQUIRE(q.enqueue<&self_deleting::w>(std::move(p)));
  }
  REQUIRE(done.wait_for(must_happen));
  CHECK(q.drain() == std::error_code{});
  CHECK(warnings.size() == 0);
}

}  // namespace

// ---- §5.3: waits from a handler of the strand the queue runs on ------------------------------

TEST_CASE(
    "diagnostics: waits from a handler of the queue's own strand are refused with "
    "errc::wait_needs_this_worker (§5.3)",
    "[diagnostics][misuse][rule26][rule49][rule23]") {
  wq_test::warning_catcher warnings;
  boost::asio::io_context io;
  auto strand = boost::asio::make_strand(io);
  auto q = std::make_unique<wq::ordered_workqueue>(strand, "session");
  std::atomic<int> runs{0};
  plain_item queued;
  queued.runs = &runs;
  std::atomic<int> refused{0};
  boost::asio::post(strand, [&] {
    // Queued on the strand this handler holds: it cannot run until the handler returns.
    if (!q->enqueue<&plain_item::w>(&queued)) return;
    refused.fetch_add(q->flush() == errc::wait_needs_this_worker ? 1 : 0);
    refused.fetch_add(q->drain() == errc::wait_needs_this_worker ? 1 : 0);
    refused.fetch_add(q->destroy() == errc::wait_needs_this_worker ? 1 : 0);
    refused.fetch_add(wq::flush_work(queued.w) ? 0 : 1);
  });
  io.run();  // would never return if any of them had waited
  CHECK(refused.load() == 4);
  CHECK(warnings.count(errc::wait_needs_this_worker) == 4);
  CHECK(runs.load() == 1);  // the queue was not destroyed and ran the item afterwards
  // From outside the strand the same calls wait as usual.
  CHECK(q->flush() == std::error_code{});
  CHECK(q->destroy() == std::error_code{});
}

/// A session whose ordered queue shares its strand, destroyed by a handler on that strand.
struct strand_session {
  explicit strand_session(boost::asio::strand<boost::asio::io_context::executor_type> s)
      : strand(s), queue(s, "session-queue") {}
  boost::asio::strand<boost::asio::io_context::executor_type> strand;
  wq::ordered_workqueue queue;
};

TEST_CASE(
    "diagnostics: a queue destroyed from a handler of its own strand finishes in the "
    "background (§5.3, rule 50)",
    "[diagnostics][misuse][rule50]") {
  wq_test::warning_catcher warnings;
  boost::asio::io_context io;
  std::atomic<int> runs{0};
  plain_item items[3];
  for (auto& it : items) it.runs = &runs;
  auto* s = new strand_session(boost::asio::make_strand(io));
  boost::asio::post(s->strand, [&, s] {
    for (auto& it : items) (void)s->queue.enqueue<&plain_item::w>(&it);
    delete s;  // ~workqueue from the strand: cannot drain here
  });
  io.run();  // returns once the queue has run its items and retired
  CHECK(runs.load() == 3);
  CHECK(warnings.count(errc::wait_needs_this_worker) == 1);
  for (auto& it : items) CHECK_FALSE(it.w.is_pending());
}

namespace {
/// A delayed item whose type name (and so its work_name) is over 300 characters.
struct
    item_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_ {
  wq::delayed_work d;
  static void run(
      item_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_*,
      wq::id<
          &item_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_::
              d>) noexcept {}
};
}  // namespace

TEST_CASE("diagnostics: long queue and item names are kept whole in dump() and in reports",
          "[diagnostics][dump]") {
  // dump() formatted each line into 256 bytes and report() each message into 512: a long name
  // cut off the counters, the deadlines and the newlines of dump(), and the count of a report.
  wq_test::warning_catcher warnings;
  const std::string name = std::string(600, 'q') + "-end";
  auto q = std::make_unique<wq::workqueue>(name);
  item_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_
      item;
  REQUIRE(q->enqueue_delayed<
          &item_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_with_a_name_long_enough_to_pass_any_fixed_line_buffer_::
              d>(&item, std::chrono::hours(1)));
  const std::string dump = q->dump();
  CHECK(dump.find("queue '" + name + "': max_active") == 0);
  CHECK(dump.find("armed 1\n") != std::string::npos);
  const std::string armed_line = std::string("  armed    ") + wq::work_name(item.d);
  const auto at = dump.find(armed_line);
  REQUIRE(at != std::string::npos);
  CHECK(dump.find(" ms)\n", at) != std::string::npos);
  CHECK(std::string(wq::work_name(item.d)).size() > 300);
  CHECK(q->destroy() == std::error_code{});
  CHECK(warnings.contains("queue '" + name + "': 1 armed item(s) cancelled"));
}
