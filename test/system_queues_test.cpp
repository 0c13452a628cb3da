// SPDX-License-Identifier: BSL-1.0
// Tests for wq/system_queues.hpp: the ten process-wide queues (rule 48): one object per
// accessor, their names, flags and max_active, items running on each, queueing from many
// threads, and the separation the header promises (highpri and long-running items do not wait
// behind system_wq's items).
//
// The system queues live for the whole process, so these tests never drain or destroy them;
// items are owned by std::unique_ptr, so nothing the test owns is touched after an item ran.
#include <wq/system_queues.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <wq/spawn.hpp>

#include "support/test_support.hpp"

namespace {

using wq_test::latch;
using wq_test::lifetime_counter;

constexpr std::chrono::milliseconds must_happen{5000};

// An owned item: counts down `done` after checking current_work() and freeing itself.
struct owned_item {
  wq::work w;
  latch* done;
  std::atomic<int>* runs;
  std::atomic<int>* bad;
  lifetime_counter* life;
  owned_item(latch* d, std::atomic<int>* r, std::atomic<int>* b, lifetime_counter* l)
      : done(d), runs(r), bad(b), life(l) {
    life->constructed.fetch_add(1);
  }
  ~owned_item() { life->destroyed.fetch_add(1); }
  owned_item(const owned_item&) = delete;
  owned_item& operator=(const owned_item&) = delete;
  static void run(std::unique_ptr<owned_item> self, wq::id<&owned_item::w>) noexcept {
    if (wq::current_work() != &self->w) self->bad->fetch_add(1);
    self->runs->fetch_add(1);
    latch* d = self->done;
    self.reset();
    d->count_down();
  }
};

using accessor = wq::workqueue& (*)();

struct system_queue_row {
  accessor get;
  const char* name;
  wq::queue_flags flags;
  int max_active;
};

const system_queue_row system_queues[] = {
    {&wq::system_wq, "events", wq::queue_flags::none, 1024},
    {&wq::system_highpri_wq, "events_highpri", wq::queue_flags::highpri, 1024},
    {&wq::system_long_wq, "events_long", wq::queue_flags::long_running, 1024},
    {&wq::system_unbound_wq, "events_unbound", wq::queue_flags::unbound, 2048},
    {&wq::system_percpu_wq, "events", wq::queue_flags::none, 1024},
    {&wq::system_dfl_wq, "events_unbound", wq::queue_flags::unbound, 2048},
    {&wq::system_dfl_long_wq, "events_dfl_long",
     wq::queue_flags::unbound | wq::queue_flags::long_running, 2048},
    {&wq::system_freezable_wq, "events_freezable", wq::queue_flags::none, 1024},
    {&wq::system_power_efficient_wq, "events_power_efficient", wq::queue_flags::none, 1024},
    {&wq::system_freezable_power_efficient_wq, "events_freezable_pwr_efficient",
     wq::queue_flags::none, 1024},
};

// Occupies every worker system_wq has (it has one per hardware thread): returns once all of
// them run a blocking item, which waits for `release`.
struct occupy_system_wq {
  unsigned n = std::max(1u, std::thread::hardware_concurrency());
  latch all_running{static_cast<std::ptrdiff_t>(n)};
  latch release{1};
  latch finished{static_cast<std::ptrdiff_t>(n)};
  std::atomic<int> spawn_errors{0};
  occupy_system_wq() {
    for (unsigned i = 0; i < n; ++i) {
      if (wq::try_spawn(wq::system_wq(), [this] {
            all_running.count_down();
            (void)all_running.wait_for(must_happen);
            (void)release.wait_for(must_happen);
            finished.count_down();
          })) {
        spawn_errors.fetch_add(1);
      }
    }
  }
  ~occupy_system_wq() {
    release.count_down();
    (void)finished.wait_for(must_happen);
  }
  occupy_system_wq(const occupy_system_wq&) = delete;
  occupy_system_wq& operator=(const occupy_system_wq&) = delete;
};

}  // namespace

TEST_CASE(
    "system queues: each accessor returns the same queue every time, from any thread (rule 48)",
    "[system_queues][rule48]") {
  std::set<const wq::workqueue*> distinct;
  for (const auto& row : system_queues) {
    wq::workqueue* first = &row.get();
    CHECK(&row.get() == first);
    std::vector<const wq::workqueue*> seen(8, nullptr);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < seen.size(); ++t) {
      threads.emplace_back([&, t] { seen[t] = &row.get(); });
    }
    for (auto& t : threads) t.join();
    for (const auto* q : seen) CHECK(q == first);
    distinct.insert(first);
  }
  CHECK(distinct.size() == std::size(system_queues));  // all different queues
}

TEST_CASE("system queues: names, flags and max_active (rule 48)",
          "[system_queues][rule48][rule37]") {
  for (const auto& row : system_queues) {
    INFO(row.name);
    wq::workqueue& q = row.get();
    CHECK(q.name() == row.name);
    CHECK(q.flags() == row.flags);
    CHECK(q.max_active() == row.max_active);
    CHECK_FALSE(q.ordered());
  }
}

TEST_CASE("system queues: items run on each queue", "[system_queues][rule48][rule51]") {
  lifetime_counter life;
  std::atomic<int> runs{0};
  std::atomic<int> bad{0};
  for (const auto& row : system_queues) {
    INFO(row.name);
    latch done{1};
    auto r =
        row.get().enqueue<&owned_item::w>(std::make_unique<owned_item>(&done, &runs, &bad, &life));
    REQUIRE(r.status == wq::queue_status::queued);
    CHECK(done.wait_for(must_happen));
  }
  CHECK(runs.load() == static_cast<int>(std::size(system_queues)));
  CHECK(bad.load() == 0);
  CHECK(life.alive() == 0);
}

TEST_CASE("system queues: items queued from many threads all run once", "[system_queues][rule48]") {
  constexpr int threads = 4;
  constexpr int per_thread = 250;
  lifetime_counter life;
  std::atomic<int> runs{0};
  std::atomic<int> bad{0};
  std::atomic<int> not_queued{0};
  latch done{2 * threads * per_thread};
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        for (accessor get : {&wq::system_wq, &wq::system_unbound_wq}) {
          auto r = get().enqueue<&owned_item::w>(
              std::make_unique<owned_item>(&done, &runs, &bad, &life));
          if (!r) not_queued.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  REQUIRE(done.wait_for(must_happen));
  CHECK(not_queued.load() == 0);
  CHECK(runs.load() == 2 * threads * per_thread);
  CHECK(bad.load() == 0);
  CHECK(life.alive() == 0);
}

TEST_CASE(
    "system queues: highpri, long and unbound items do not wait behind a busy system_wq (rule 48)",
    "[system_queues][rule48][rule43]") {
  occupy_system_wq busy;
  REQUIRE(busy.spawn_errors.load() == 0);
  REQUIRE(busy.all_running.wait_for(must_happen));  // every system_wq worker is blocked
  for (accessor get : {&wq::system_highpri_wq, &wq::system_long_wq, &wq::system_unbound_wq}) {
    INFO(get().name());
    latch ran{1};
    REQUIRE_FALSE(wq::try_spawn(get(), [&ran] { ran.count_down(); }));
    CHECK(ran.wait_for(must_happen));
  }
  CHECK(busy.finished.remaining() == static_cast<std::ptrdiff_t>(busy.n));  // still blocked
}
