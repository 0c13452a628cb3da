// SPDX-License-Identifier: BSL-1.0
// The stall watchdog: compares each queue's progress counters between periodic looks.
#include <wq/watchdog.hpp>

#include <algorithm>
#include <atomic>
#include <unordered_map>

#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>

#include "engine/queue_core.hpp"
#include "engine/registry.hpp"
#include "engine/workers.hpp"
#include "engine/worklist.hpp"

namespace wq {

struct watchdog::state {
  using clock = std::chrono::steady_clock;
  std::chrono::milliseconds threshold;
  std::mutex mu;  // guards stop and the maps (check_now may race the thread)
  std::condition_variable cv;
  bool stop = false;
  std::atomic<std::uint64_t> reports{0};  // relaxed: a count, publishes nothing

  struct item_mark {
    std::uint32_t runs = 0;  // the slot's start count when this run was first seen
    clock::time_point since{};
    bool reported = false;
  };
  struct queue_mark {
    std::uint64_t started = 0;
    clock::time_point since{};
    bool reported = false;
  };
  std::unordered_map<std::uint64_t, item_mark> items;    // key: core id, worker index
  std::unordered_map<std::uint64_t, queue_mark> queues;  // key: core id

  std::size_t check() {
    std::lock_guard guard(mu);
    const auto now = clock::now();
    std::size_t found = 0;
    std::unordered_map<std::uint64_t, item_mark> seen_items;
    std::unordered_map<std::uint64_t, queue_mark> seen_queues;
    detail::for_each_core([&](detail::queue_core* core) {
      std::lock_guard lk(core->mu);
      if (!core->reg.live) return;
      detail::start_workers_locked(core);  // items on the intake are waiting too
      const std::uint64_t id = core->id();
      for (std::size_t i = 0; i < core->wk.slots.size(); ++i) {
        const detail::worker_slot& s = core->wk.slots[i];
        if (s.running() == nullptr) continue;  // read under the queue's mutex, as running() asks
        const wq::work_ops* ops = s.running_ops();
        const std::uint64_t key = (id << 12) ^ i;
        item_mark m{s.runs, now, false};
        if (auto it = items.find(key); it != items.end() && it->second.runs == s.runs)
          m = it->second;
        if (!m.reported && now - m.since >= threshold) {
          m.reported = true;
          ++found;
          detail::report(
              errc::item_stalled, "queue '%s': '%s' has been running for %lld ms on worker %zu",
              core->name.c_str(), ops != nullptr ? ops->name : "?",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(now - m.since).count()),
              i);
        }
        seen_items.emplace(key, m);
      }
      // Saturated: items wait behind max_active (the running ones may be waiting for them,
      // semantics §5.14; rule 48 advises a queue of their own for such items).
      const bool saturated =
          !core->wl.inactive.empty() && core->wl.nr_active >= core->wl.max_active;
      if ((detail::has_runnable(core) || saturated) && !core->lc.paused) {
        queue_mark m{core->stats.started, now, false};
        if (auto it = queues.find(id); it != queues.end() && it->second.started == m.started)
          m = it->second;
        if (!m.reported && now - m.since >= threshold) {
          m.reported = true;
          ++found;
          const auto for_ms = static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(now - m.since).count());
          if (saturated && !detail::has_runnable(core)) {
            detail::report(errc::queue_stalled,
                           "queue '%s' saturated: %zu item(s) inactive behind max_active %d, "
                           "none started for %lld ms; items that wait for items of their own "
                           "queue beyond max_active deadlock (rule 48: give them a queue of "
                           "their own)",
                           core->name.c_str(), core->wl.inactive.size(), core->wl.max_active,
                           for_ms);
          } else {
            detail::report(errc::queue_stalled,
                           "queue '%s': %zu item(s) waiting, none started for %lld ms",
                           core->name.c_str(), detail::nr_runnable(core), for_ms);
          }
        }
        seen_queues.emplace(id, m);
      }
    });
    // Forget what ended (finished items, queues that emptied or were destroyed).
    items.swap(seen_items);
    queues.swap(seen_queues);
    reports.fetch_add(found, std::memory_order_relaxed);
    return found;
  }
};

watchdog::watchdog(std::chrono::milliseconds threshold) : state_(std::make_unique<state>()) {
  state_->threshold = std::max(threshold, std::chrono::milliseconds{1});
  thread_ = std::thread([s = state_.get()] {
    const auto period = std::max(s->threshold / 4, std::chrono::milliseconds{1});
    std::unique_lock lk(s->mu);
    while (!s->cv.wait_for(lk, period, [s] { return s->stop; })) {
      lk.unlock();
      s->check();
      lk.lock();
    }
  });
}

watchdog::~watchdog() {
  {
    std::lock_guard lk(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  thread_.join();
}

std::uint64_t watchdog::reports() const noexcept {
  return state_->reports.load(std::memory_order_relaxed);
}

std::size_t watchdog::check_now() { return state_->check(); }

}  // namespace wq
