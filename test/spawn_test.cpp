// SPDX-License-Identifier: BSL-1.0
// Tests for wq/spawn.hpp: try_spawn and spawn run a closure once on a queue and destroy it; a
// refusing queue gives spawn_errc::rejected (spawn: std::system_error); an allocation failure
// gives std::errc::not_enough_memory (spawn: std::bad_alloc); the closure is destroyed without
// running in both cases and the queue keeps working.
//
// To make the box allocation fail on demand this file replaces the global allocation functions:
// every form forwards to malloc/free, and the nothrow form (the one try_spawn uses) returns
// nullptr while `fail_nothrow_new` is set on the calling thread.
#include <wq/spawn.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <wq/ordered_workqueue.hpp>

#include "support/test_support.hpp"

namespace {
thread_local bool fail_nothrow_new = false;
std::atomic<int> failed_allocations{0};

void* checked_malloc(std::size_t n) {
  if (n == 0) n = 1;
  for (;;) {
    if (void* p = std::malloc(n)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}
// Out of line so that GCC does not see free() applied to the result of operator new after
// inlining (-Wmismatched-new-delete): the pairing is new -> delete, both replaced here.
[[gnu::noinline]] void checked_free(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) { return checked_malloc(n); }
void* operator new[](std::size_t n) { return checked_malloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (fail_nothrow_new) {
    failed_allocations.fetch_add(1);
    return nullptr;
  }
  try {
    return checked_malloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return checked_malloc(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { checked_free(p); }
void operator delete[](void* p) noexcept { checked_free(p); }
void operator delete(void* p, std::size_t) noexcept { checked_free(p); }
void operator delete[](void* p, std::size_t) noexcept { checked_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { checked_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { checked_free(p); }

namespace {

using namespace std::chrono_literals;
using wq_test::latch;
using wq_test::lifetime_counter;

constexpr std::chrono::milliseconds must_happen{5000};

// Sets fail_nothrow_new on this thread while alive.
struct failing_allocations {
  failing_allocations() { fail_nothrow_new = true; }
  ~failing_allocations() { fail_nothrow_new = false; }
  failing_allocations(const failing_allocations&) = delete;
  failing_allocations& operator=(const failing_allocations&) = delete;
};

using capture = wq_test::counted_capture;

}  // namespace

TEST_CASE("try_spawn: runs the closure once, destroys its captures and returns no error (rule 6)",
          "[spawn][rule6]") {
  lifetime_counter life;
  std::atomic<int> runs{0};
  std::atomic<bool> saw_payload{false};
  latch done{1};
  wq::workqueue q{"spawn", {.threads = 2}};
  std::vector<int> payload;  // plain: visibility comes from the queueing call (rule 6)
  payload = {1, 2, 3};
  const std::error_code ec =
      wq::try_spawn(q, [c = capture(&life), &runs, &saw_payload, &payload, &done] {
        saw_payload.store(payload.size() == 3 && payload[2] == 3);
        runs.fetch_add(1);
        done.count_down();
      });
  CHECK_FALSE(ec);
  REQUIRE(done.wait_for(must_happen));
  q.drain();  // the box is freed on the worker right after the closure returns
  CHECK(runs.load() == 1);
  CHECK(saw_payload.load());
  CHECK(life.constructed.load() >= 1);
  CHECK(life.alive() == 0);
}

TEST_CASE("try_spawn: takes move-only closures", "[spawn]") {
  latch done{1};
  std::atomic<int> value{0};
  wq::workqueue q{"move-only", {.threads = 1}};
  auto owned = std::make_unique<int>(7);
  CHECK_FALSE(wq::try_spawn(q, [p = std::move(owned), &value, &done] {
    value.store(*p);
    done.count_down();
  }));
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(value.load() == 7);
}

TEST_CASE("try_spawn: is noexcept when the closure's construction is", "[spawn]") {
  wq::workqueue q{"noexcept", {.threads = 1}};
  auto plain = [] {};
  std::string s = "not nothrow-copyable";
  auto copies_string = [s] { (void)s.size(); };
  STATIC_REQUIRE(noexcept(wq::try_spawn(q, std::move(plain))));
  STATIC_REQUIRE_FALSE(noexcept(wq::try_spawn(q, copies_string)));
  q.drain();
}

TEST_CASE(
    "try_spawn: a destroyed queue rejects the closure, which is destroyed without running (rule 50)",
    "[spawn][rule50]") {
  lifetime_counter life;
  std::atomic<int> runs{0};
  wq::workqueue q{"gone", {.threads = 1}};
  q.destroy();
  const std::error_code ec = wq::try_spawn(q, [c = capture(&life), &runs] { runs.fetch_add(1); });
  CHECK(ec == wq::make_error_code(wq::spawn_errc::rejected));
  CHECK(ec.category() == wq::spawn_category());
  CHECK(std::string(ec.category().name()) == "wq.spawn");
  CHECK_FALSE(ec.message().empty());
  CHECK(ec != std::errc::not_enough_memory);
  CHECK(runs.load() == 0);
  CHECK(life.alive() == 0);
}

TEST_CASE("spawn: throws std::system_error with spawn_errc::rejected on a destroyed queue",
          "[spawn][rule50]") {
  lifetime_counter life;
  std::atomic<int> runs{0};
  wq::workqueue q{"gone", {.threads = 1}};
  q.destroy();
  bool threw = false;
  try {
    wq::spawn(q, [c = capture(&life), &runs] { runs.fetch_add(1); });
  } catch (const std::system_error& e) {
    threw = true;
    CHECK(e.code() == wq::make_error_code(wq::spawn_errc::rejected));
  }
  CHECK(threw);
  CHECK(runs.load() == 0);
  CHECK(life.alive() == 0);
}

TEST_CASE("try_spawn: an allocation failure returns not_enough_memory and the queue keeps working",
          "[spawn][alloc]") {
  lifetime_counter life;
  std::atomic<int> runs{0};
  wq::workqueue q{"oom", {.threads = 2}};
  std::error_code ec;
  failed_allocations.store(0);
  {
    failing_allocations fail;
    ec = wq::try_spawn(q, [c = capture(&life), &runs] { runs.fetch_add(1); });
  }
  CHECK(failed_allocations.load() == 1);
  CHECK(ec == std::errc::not_enough_memory);
  CHECK(runs.load() == 0);
  CHECK(life.alive() == 0);  // the closure was destroyed without running

  latch done{1};
  CHECK_FALSE(wq::try_spawn(q, [c = capture(&life), &runs, &done] {
    runs.fetch_add(1);
    done.count_down();
  }));
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  CHECK(runs.load() == 1);
  CHECK(life.alive() == 0);
}

TEST_CASE("spawn: throws std::bad_alloc when the closure's box cannot be allocated",
          "[spawn][alloc]") {
  lifetime_counter life;
  std::atomic<int> runs{0};
  wq::workqueue q{"oom", {.threads = 1}};
  bool threw = false;
  {
    failing_allocations fail;
    try {
      wq::spawn(q, [c = capture(&life), &runs] { runs.fetch_add(1); });
    } catch (const std::bad_alloc&) {
      threw = true;
    }
  }
  CHECK(threw);
  CHECK(runs.load() == 0);
  CHECK(life.alive() == 0);
  latch done{1};
  wq::spawn(q, [&done] { done.count_down(); });  // works again
  CHECK(done.wait_for(must_happen));
  q.drain();
}

TEST_CASE("spawn: closures spawned on an ordered queue run in spawn order (rule 39)",
          "[spawn][rule39]") {
  constexpr int total = 200;
  wq::ordered_workqueue q{"ordered-spawn"};
  std::vector<int> order;  // not atomic: the queue is ordered
  latch done{total};
  for (int i = 0; i < total; ++i) {
    wq::spawn(q, [i, &order, &done] {
      order.push_back(i);
      done.count_down();
    });
  }
  REQUIRE(done.wait_for(must_happen));
  q.drain();
  std::vector<int> expected;
  for (int i = 0; i < total; ++i) expected.push_back(i);
  CHECK(order == expected);
}

TEST_CASE("try_spawn: callable from many threads and from inside a closure (chained, rule 49)",
          "[spawn][rule49]") {
  constexpr int threads = 4;
  constexpr int per_thread = 100;
  std::atomic<int> runs{0};
  std::atomic<int> errors{0};
  wq::workqueue q{"many", {.threads = 2}};
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        // Each closure spawns a follow-up from the worker: chained queueing, drained too.
        const auto ec = wq::try_spawn(q, [&] {
          runs.fetch_add(1);
          if (wq::try_spawn(q, [&] { runs.fetch_add(1); })) errors.fetch_add(1);
        });
        if (ec) errors.fetch_add(1);
      }
    });
  }
  for (auto& t : producers) t.join();
  q.drain();
  CHECK(errors.load() == 0);
  CHECK(runs.load() == 2 * threads * per_thread);
}

TEST_CASE("spawn_errc: converts implicitly to std::error_code like other error enums", "[spawn]") {
  // The std::is_error_code_enum specialisation plus the ADL make_error_code let an
  // error_code be compared with the enum directly.
  CHECK(std::is_error_code_enum<wq::spawn_errc>::value);
  const std::error_code ec = wq::spawn_errc::rejected;
  CHECK(ec == wq::spawn_errc::rejected);
  CHECK(ec.category().name() == std::string("wq.spawn"));
}
