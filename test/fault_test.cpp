// SPDX-License-Identifier: BSL-1.0
// Fault injection (issue 6, item 3): allocation failure and thread-creation failure give an
// error (an error code, std::bad_alloc or std::system_error, as each contract says) and leave
// wq usable; queueing, cancelling and moving embedded items never allocate, so they cannot fail.
//
// Two injectors, both armed per thread so that only the code under test on the test's thread
// sees the failure:
//   - this executable replaces every global allocation function; `fail_nth(n)` makes the n-th
//     allocation from now fail (throwing forms throw std::bad_alloc, nothrow forms return
//     nullptr) and `fail_all` makes every one fail while it lives;
//   - it also defines `pthread_create`, which the dynamic linker binds before libc's (and before
//     the sanitizer runtimes' interceptors, which it forwards to through dlsym(RTLD_NEXT)); while
//     `fail_threads` lives it returns EAGAIN instead of creating a thread.
// The first test proves both injectors work in this build, so the other tests cannot pass by
// not injecting anything.
#include <wq/workqueue.hpp>

#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include <wq/cancel.hpp>
#include <wq/detail/handler_memory.hpp>
#include <wq/kernel.hpp>
#include <wq/ordered_workqueue.hpp>
#include <wq/spawn.hpp>
#include <wq/system_queues.hpp>

#include "support/queue_kinds.hpp"
#include "support/test_support.hpp"

#include "support/replaced_new.hpp"

namespace {

// ---- the allocation injector -------------------------------------------------------------
// Thread-local and trivially destructible, so usable from any thread at any time.
thread_local long tl_countdown = 0;     // > 0: the allocation that brings it to 0 fails
thread_local bool tl_fail_all = false;  // every allocation fails
thread_local long tl_attempts = 0;      // allocations attempted on this thread
thread_local long tl_failures = 0;      // allocations failed on this thread

bool inject_alloc_failure() noexcept {
  ++tl_attempts;
  if (tl_fail_all || (tl_countdown > 0 && --tl_countdown == 0)) {
    ++tl_failures;
    return true;
  }
  return false;
}

void* plain_alloc(std::size_t n) noexcept { return std::malloc(n == 0 ? 1 : n); }
void* aligned_alloc_for(std::size_t n, std::align_val_t a) noexcept {
  const auto al = static_cast<std::size_t>(a);
  return std::aligned_alloc(al, (n + al - 1) / al * al + (n == 0 ? al : 0));
}
// Out of line so GCC does not pair free() with the operator new it inlined.
[[gnu::noinline]] void plain_free(void* p) noexcept { std::free(p); }

void* throwing(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) {
  return throwing(inject_alloc_failure() ? nullptr : plain_alloc(n));
}
void* operator new[](std::size_t n) {
  return throwing(inject_alloc_failure() ? nullptr : plain_alloc(n));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return inject_alloc_failure() ? nullptr : plain_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return inject_alloc_failure() ? nullptr : plain_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return throwing(inject_alloc_failure() ? nullptr : aligned_alloc_for(n, a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return throwing(inject_alloc_failure() ? nullptr : aligned_alloc_for(n, a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return inject_alloc_failure() ? nullptr : aligned_alloc_for(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return inject_alloc_failure() ? nullptr : aligned_alloc_for(n, a);
}
void operator delete(void* p) noexcept { plain_free(p); }
void operator delete[](void* p) noexcept { plain_free(p); }
void operator delete(void* p, std::size_t) noexcept { plain_free(p); }
void operator delete[](void* p, std::size_t) noexcept { plain_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { plain_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { plain_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { plain_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { plain_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { plain_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { plain_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { plain_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { plain_free(p); }

// ---- the thread-creation injector --------------------------------------------------------

namespace {
thread_local bool tl_fail_threads = false;
thread_local int tl_thread_failures = 0;
// Every thread's pthread_create fails while set (the pools start threads from their manager).
std::atomic<bool> g_fail_threads{false};
std::atomic<int> g_thread_failures{0};
using pthread_create_fn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

pthread_create_fn next_pthread_create() noexcept {
  // Safety: POSIX guarantees that a function's address returned by dlsym can be converted to
  // a pointer to a function of its type; RTLD_NEXT finds the definition this one hides (the
  // sanitizer runtime's interceptor, or libc's).
  static const auto next = reinterpret_cast<pthread_create_fn>(dlsym(RTLD_NEXT, "pthread_create"));
  return next;
}
}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*),
                              void* arg) noexcept {
  if (tl_fail_threads) {
    ++tl_thread_failures;
    return EAGAIN;
  }
  if (g_fail_threads.load()) {
    ++g_thread_failures;
    return EAGAIN;
  }
  pthread_create_fn next = next_pthread_create();
  if (next == nullptr) return ENOSYS;
  return next(thread, attr, start, arg);
}

namespace {

using namespace std::chrono_literals;
using wq_test::latch;
using wq_test::lifetime_counter;

constexpr std::chrono::milliseconds must_happen{20000};

/// Makes the n-th allocation on this thread from now fail while alive.
struct fail_nth {
  explicit fail_nth(long n) { tl_countdown = n; }
  ~fail_nth() { tl_countdown = 0; }
  fail_nth(const fail_nth&) = delete;
  fail_nth& operator=(const fail_nth&) = delete;
  /// Whether the armed allocation was reached (and failed).
  [[nodiscard]] static bool fired() noexcept { return tl_countdown == 0; }
};

/// Makes every allocation on this thread fail while alive.
struct fail_all {
  fail_all() { tl_fail_all = true; }
  ~fail_all() { tl_fail_all = false; }
  fail_all(const fail_all&) = delete;
  fail_all& operator=(const fail_all&) = delete;
};

/// Makes every pthread_create in the process fail with EAGAIN while alive.
struct fail_all_threads {
  fail_all_threads() { g_fail_threads = true; }
  ~fail_all_threads() { g_fail_threads = false; }
  fail_all_threads(const fail_all_threads&) = delete;
  fail_all_threads& operator=(const fail_all_threads&) = delete;
};

/// Makes every pthread_create on this thread fail with EAGAIN while alive; counts the failures from
/// zero (in tl_thread_failures), so an earlier test case's count does not carry over when the whole
/// executable runs in one process.
struct fail_threads {
  fail_threads() {
    tl_thread_failures = 0;
    tl_fail_threads = true;
  }
  ~fail_threads() { tl_fail_threads = false; }
  fail_threads(const fail_threads&) = delete;
  fail_threads& operator=(const fail_threads&) = delete;
};

struct counted {
  wq::work w;
  wq::delayed_work d;
  std::atomic<int>* runs = nullptr;
  latch* done = nullptr;
  static void run(counted* self, wq::id<&counted::w>) noexcept {
    self->runs->fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
  static void run(counted* self, wq::id<&counted::d>) noexcept {
    self->runs->fetch_add(1);
    if (self->done != nullptr) self->done->count_down();
  }
};

// The queue still works after a fault: one embedded item queued on it runs exactly once.
void require_runs_one_item(wq::workqueue& q) {
  std::atomic<int> runs{0};
  latch done{1};
  counted it;
  it.runs = &runs;
  it.done = &done;
  REQUIRE(q.enqueue<&counted::w>(&it));
  REQUIRE(done.wait_for(must_happen));
  REQUIRE_FALSE(q.flush());
  CHECK(runs.load() == 1);
}

using capture = wq_test::counted_capture;

// Takes every block the handler pool can give this thread without allocating (its cache and
// the process-wide free list) and gives them back on destruction. The blocks are chained
// through their own first word, so holding them allocates nothing.
class handler_pool_drain {
 public:
  handler_pool_drain() {
    fail_all no_new_blocks;
    for (std::size_t c = 0; c < sizes_.size(); ++c) {
      for (;;) {
        void* b = nullptr;
        try {
          b = wq::detail::handler_allocate(sizes_[c], alignof(std::max_align_t));
        } catch (const std::bad_alloc&) {
          break;  // empty: the next request of this size must call operator new
        }
        // Safety: every block is at least 128 bytes and max_align_t-aligned; it is ours until
        // handed back below.
        *static_cast<void**>(b) = heads_[c];
        heads_[c] = b;
        ++taken_;
      }
    }
  }
  ~handler_pool_drain() {
    for (std::size_t c = 0; c < sizes_.size(); ++c) {
      while (void* b = heads_[c]) {
        heads_[c] = *static_cast<void**>(b);
        wq::detail::handler_deallocate(b, sizes_[c], alignof(std::max_align_t));
      }
    }
  }
  handler_pool_drain(const handler_pool_drain&) = delete;
  handler_pool_drain& operator=(const handler_pool_drain&) = delete;
  [[nodiscard]] long taken() const noexcept { return taken_; }

 private:
  static constexpr std::array<std::size_t, 3> sizes_{128, 256, 512};
  std::array<void*, 3> heads_{};
  long taken_ = 0;
};

}  // namespace

TEST_CASE("fault: the injectors work in this build (the fault tests can fail)", "[fault]") {
  {
    fail_nth second(2);
    auto* first = new int(1);  // the first allocation succeeds
    bool threw = false;
    try {
      auto* p = new int(2);
      delete p;
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    delete first;
    CHECK(threw);
    CHECK(fail_nth::fired());
  }
  {
    fail_all all;
    int* p = new (std::nothrow) int(3);
    CHECK(p == nullptr);
  }
  INFO("pthread_create resolved through dlsym(RTLD_NEXT): " << (next_pthread_create() != nullptr));
  REQUIRE(next_pthread_create() != nullptr);
  std::error_code ec;
  {
    fail_threads no_threads;
    try {
      std::thread t([] {});
      t.join();
    } catch (const std::system_error& e) {
      ec = e.code();
    }
  }
  CHECK(ec == std::errc::resource_unavailable_try_again);
  std::thread t([] {});  // disarmed: creates threads again
  t.join();
}

TEST_CASE(
    "fault: try_spawn under allocation failure returns not_enough_memory, loses nothing, "
    "and the queue keeps working",
    "[fault][spawn]") {
  lifetime_counter life;
  std::atomic<int> runs{0};
  std::atomic<int> spawned_runs{0};
  wq::workqueue q{"fault-spawn", {.threads = 2}};
  q.pause();  // keep the embedded items queued while the spawns fail
  std::vector<counted> items(100);
  for (auto& it : items) {
    it.runs = &runs;
    REQUIRE(q.enqueue<&counted::w>(&it));
  }
  constexpr int attempts = 10;
  std::vector<std::error_code> results(attempts);  // sized before injecting
  {
    fail_all all;
    for (auto& ec : results)
      ec = wq::try_spawn(q, [c = capture(&life), &spawned_runs] { spawned_runs.fetch_add(1); });
  }
  for (const auto& ec : results) CHECK(ec == std::errc::not_enough_memory);
  CHECK(life.alive() == 0);  // each refused closure was destroyed without running

  // The one allocation of try_spawn is the box: failing the first allocation fails the spawn.
  std::error_code first;
  {
    fail_nth one(1);
    first = wq::try_spawn(q, [c = capture(&life), &spawned_runs] { spawned_runs.fetch_add(1); });
  }
  CHECK(first == std::errc::not_enough_memory);

  q.resume();
  latch done{1};
  CHECK_FALSE(wq::try_spawn(q, [c = capture(&life), &spawned_runs, &done] {
    spawned_runs.fetch_add(1);
    done.count_down();
  }));
  REQUIRE(done.wait_for(must_happen));
  REQUIRE_FALSE(q.drain());
  CHECK(runs.load() == 100);  // nothing queued before the failures was lost
  CHECK(spawned_runs.load() == 1);
  CHECK(life.alive() == 0);
}

TEST_CASE(
    "fault: queueing and cancelling and disabling and moving embedded items never "
    "allocate (so they cannot fail)",
    "[fault][alloc]") {
  wq::workqueue q{"fault-noalloc", {.threads = 2}};
  std::atomic<int> runs{0};
  std::vector<counted> items(200);
  for (auto& it : items) it.runs = &runs;

  // One round: queue every plain item; arm every delayed item, move half its deadlines, then
  // cancel the armed ones; disable and re-enable; the plain items then run.
  auto round = [&](std::vector<int>& outcome) {
    std::size_t i = 0;
    for (auto& it : items) outcome[i++] = q.enqueue<&counted::w>(&it).queued() ? 1 : 0;
    for (auto& it : items)
      outcome[i++] = q.enqueue_delayed<&counted::d>(&it, std::chrono::hours(1)).queued() ? 1 : 0;
    for (auto& it : items)
      outcome[i++] = wq::mod_delayed_work(q, it.d, std::chrono::hours(2)) ? 1 : 0;
    for (auto& it : items) outcome[i++] = wq::cancel_delayed_work(it.d) ? 1 : 0;
    for (auto& it : items) {
      const bool disabled = !wq::disable_delayed_work(it.d);  // was not pending: false
      const bool enabled = wq::enable_delayed_work(it.d);     // count back to 0: true
      outcome[i++] = disabled && enabled ? 1 : 0;
    }
  };
  std::vector<int> warm(items.size() * 5);
  std::vector<int> injected(items.size() * 5);
  round(warm);  // grows Asio's timer heap and the handler pool to this round's needs
  REQUIRE_FALSE(q.drain());
  // Room for every handler this round can have in flight (one worker handler per worker, one
  // timer wait per armed item) plus what other threads' caches may hold.
  for (std::size_t size : {128u, 256u, 512u})
    wq::detail::handler_reserve(size,
                                items.size() + 32 * (std::thread::hardware_concurrency() + 4));
  tl_attempts = 0;
  tl_failures = 0;
  {
    fail_all all;
    round(injected);
  }
  const long attempts = tl_attempts;
  REQUIRE_FALSE(q.drain());
  CHECK(attempts == 0);
  CHECK(tl_failures == 0);
  CHECK(injected == warm);
  CHECK(std::count(injected.begin(), injected.end(), 1) == static_cast<long>(injected.size()));
  CHECK(runs.load() == 2 * static_cast<int>(items.size()));  // plain items ran in both rounds
}

namespace {
std::atomic<int> g_post_failed{0};
// A diagnostic handler that allocates nothing (it runs while allocations fail).
void count_post_failures(const wq::diagnostic& d) noexcept {
  if (d.code == wq::errc::worker_post_failed) g_post_failed.fetch_add(1);
  wq::print_diagnostic(d);
}
}  // namespace

TEST_CASE(
    "fault: a worker post that cannot get memory leaves the item queued, reports "
    "worker_post_failed, and the next queueing call starts it",
    "[fault][handler_memory]") {
  const wq::diagnostic_handler previous = wq::set_diagnostic_handler(&count_post_failures);
  g_post_failed = 0;
  wq::workqueue q{"fault-worker", {.threads = 1}};
  std::atomic<int> runs{0};
  counted first;
  counted second;
  latch done{2};
  first.runs = second.runs = &runs;
  first.done = second.done = &done;
  wq::queue_status st{};
  {
    handler_pool_drain no_recycled_blocks;  // the worker handler must come from operator new
    fail_all all;
    st = q.enqueue<&counted::w>(&first).status;
  }
  wq::set_diagnostic_handler(previous);
  CHECK(st == wq::queue_status::queued);  // linked: the item is pending, not lost
  CHECK(g_post_failed.load() == 1);
  CHECK(wq::work_pending(first.w));
  CHECK(runs.load() == 0);
  REQUIRE(q.enqueue<&counted::w>(&second));  // posts a worker, which runs both
  REQUIRE(done.wait_for(must_happen));
  REQUIRE_FALSE(q.drain());
  CHECK(runs.load() == 2);
}

TEST_CASE(
    "fault: allocation failure anywhere in a queue's constructor throws std::bad_alloc, "
    "leaks nothing, and later queues work",
    "[fault][alloc][construct]") {
  // Fails the 1st, 2nd, ... allocation the constructor makes on this thread until one
  // construction makes no more allocations than the armed index.
  const std::string name = "a queue name longer than the small-string buffer";
  auto sweep = [&](auto make) {
    int failures = 0;
    for (long n = 1; n < 1000; ++n) {
      bool threw = false;
      bool fired = false;
      {
        fail_nth nth(n);
        try {
          make();
        } catch (const std::bad_alloc&) {
          threw = true;
        }
        fired = fail_nth::fired();
      }
      if (!fired) return failures;  // constructed (and destroyed) with every allocation made
      // An allocation failure either reaches the caller as bad_alloc or is absorbed by a path
      // documented to survive it; the queue below must work in both cases.
      if (threw) ++failures;
    }
    FAIL("the constructor made 1000 allocations");
    return failures;
  };
  // One thread: with more, a failure after the first thread started blocks inside Boost.Asio's
  // thread_pool constructor (see docs/bad-input.md, "Known limitation").
  const int pool_failures = sweep([&] { wq::workqueue q{name, {.threads = 1}}; });
  // Not swept: ordered queues (Boost.Asio 1.81's make_strand crashes when the shared_ptr
  // control block of a new strand cannot be allocated: its strand_impl destructor reads members
  // not yet set; see docs/bad-input.md, "Known limitations").
  boost::asio::io_context io;
  const int executor_failures = sweep([&] { wq::workqueue q{io, name}; });
  INFO("bad_alloc reached the caller " << pool_failures << " and " << executor_failures
                                       << " times");
  CHECK(pool_failures > 0);
  CHECK(executor_failures > 0);

  wq::workqueue q{name, {.threads = 2}};
  require_runs_one_item(q);
  REQUIRE_FALSE(q.drain());
}

TEST_CASE(
    "fault: a queue whose threads cannot be created throws std::system_error, leaks "
    "nothing, and the next one works",
    "[fault][threads][construct]") {
  for (unsigned threads : {1u, 4u}) {
    std::error_code ec;
    bool other = false;
    {
      fail_threads no_threads;
      try {
        wq::workqueue q{"no-threads", {.threads = threads}};
      } catch (const std::system_error& e) {
        ec = e.code();
      } catch (...) {
        other = true;
      }
    }
    INFO("threads: " << threads);
    CHECK_FALSE(other);
    CHECK(ec == std::errc::resource_unavailable_try_again);
  }
  std::error_code ordered_ec;
  {
    fail_threads no_threads;
    try {
      wq::ordered_workqueue q{"no-thread", {.max_active = 1, .threads = 1}};
    } catch (const std::system_error& e) {
      ordered_ec = e.code();
    }
  }
  CHECK(ordered_ec == std::errc::resource_unavailable_try_again);

  wq::workqueue q{"threads-again", {.threads = 4}};
  require_runs_one_item(q);
  REQUIRE_FALSE(q.drain());
}

TEST_CASE(
    "fault: a shared pool whose threads cannot be created keeps the items queued, "
    "reports it, and runs them once threads can be created",
    "[fault][threads][pool]") {
  // The unbound highpri pool is used by no other test case in this executable, so none of its
  // workers exists yet; the pool manager may or may not (both paths are covered: its start
  // and a worker's start are both pthread_create).
  wq_test::warning_catcher warnings;
  std::atomic<int> ran{0};
  wq_test::fn_item first{[&](wq_test::fn_item&) { ++ran; }};
  wq_test::fn_item second{[&](wq_test::fn_item&) { ++ran; }};
  {
    // Creating a queue on a shared pool starts no thread, so it cannot fail for want of one.
    fail_all_threads no_threads;
    wq::workqueue q{"no-threads", {.flags = wq::queue_flags::unbound | wq::queue_flags::highpri}};
    REQUIRE(wq_test::enqueue(q, first) == wq::queue_status::queued);
    REQUIRE(wq_test::poll_until([&] { return warnings.contains(wq::errc::worker_post_failed); }));
    CHECK(g_thread_failures.load() > 0);
    CHECK(ran.load() == 0);  // nothing ran, nothing was lost
    g_fail_threads = false;
    // The next queueing (or the manager's next look) starts the thread.
    REQUIRE(wq_test::enqueue(q, second) == wq::queue_status::queued);
    REQUIRE_FALSE(q.flush());
    CHECK(ran.load() == 2);
  }
  // Creating a system queue starts no thread either: its first use cannot fail for want of one.
  {
    fail_threads no_threads;
    (void)wq::system_long_wq();
    CHECK(tl_thread_failures == 0);
  }
  require_runs_one_item(wq::system_long_wq());
}

TEST_CASE(
    "fault: a system queue whose construction runs out of memory throws bad_alloc, and "
    "the next use creates it",
    "[fault][alloc][system_queues]") {
  // system_highpri_wq is used by no other test case in this executable.
  bool threw = false;
  {
    fail_nth first(1);  // the queue object itself
    try {
      (void)wq::system_highpri_wq();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
  }
  CHECK(threw);
  wq::workqueue& q = wq::system_highpri_wq();
  require_runs_one_item(q);
}
