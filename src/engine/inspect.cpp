// SPDX-License-Identifier: BSL-1.0
// Reading a queue's state for people: see inspect.hpp.
#include "inspect.hpp"

#include <wq/observer.hpp>
#include <wq/pool.hpp>

#include <chrono>
#include <cstdio>
#include <new>

#include "../virtual_time.hpp"
#include "counters.hpp"
#include "descriptions.hpp"
#include "workers.hpp"

namespace wq::detail {

queue_stats snapshot_stats_locked(const queue_core* core, const std::string& name) {
  queue_stats out;
  out.name = name;
  out.sample_every = sample_every;
  const queue_counters& s = core->stats;
  out.queued = s.queued;
  out.coalesced = core->stats.coalesced.load(std::memory_order_relaxed);
  out.started = s.started;
  out.finished = s.finished;
  out.cancelled = s.cancelled;
  out.in_flight = core->wl.nr_in_flight;
  for (const auto& slot : core->wk.slots) out.running += slot.running() != nullptr ? 1 : 0;
  // An instance whose deadline a mod_delayed_work is moving is off the armed list for a
  // moment, and is still this queue's armed instance.
  out.armed = core->tm.armed.size() + core->stats.moving;
  out.max_depth = s.max_depth;
  out.peak_workers = s.peak_workers;
  if (s.latency) {
    out.queue_latency = s.latency->widen(latency_histograms::kind::queue_latency);
    out.run_time = s.latency->widen(latency_histograms::kind::run_time);
  }
  return out;
}

bool stats_empty_locked(const queue_core* core) noexcept {
  const queue_counters& s = core->stats;
  return s.queued == 0 && s.cancelled == 0 && s.coalesced.load(std::memory_order_relaxed) == 0;
}

void dump_locked(queue_core* core, const std::string& name, std::size_t limit, std::string& out) {
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    const int n = std::snprintf(line, sizeof line, fmt, args...);
    if (n < 0) return;
    if (static_cast<std::size_t>(n) < sizeof line) {
      out += line;
      return;
    }
    // Longer than the line buffer (a long queue or item name): formatted whole in place.
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(n) + 1);
    std::snprintf(out.data() + at, static_cast<std::size_t>(n) + 1, fmt, args...);
    out.resize(at + static_cast<std::size_t>(n));
  };
  start_workers_locked(core);  // show items on the intake as waiting
  const queue_core& c = *core;
  add("queue '%s': max_active %d, in flight %llu, waiting %zu (+%zu inactive), armed %zu%s%s\n",
      name.c_str(), c.wl.max_active, static_cast<unsigned long long>(c.wl.nr_in_flight),
      c.wl.ready.size(), c.wl.inactive.size(), c.tm.armed.size(), c.lc.paused ? ", paused" : "",
      c.lc.draining > 0 ? ", draining" : "");
  if (c.wk.pool != nullptr) {
    const pool_state ps = c.wk.pool->state();
    add("  on pool %s: %u workers (%u running, %u idle, %u blocked, %u cpu-intensive), %zu "
        "waiting\n",
        to_string(ps.kind), ps.threads, ps.running, ps.idle, ps.blocked, ps.cpu_intensive,
        ps.waiting);
  } else if (c.reg.own_pool != nullptr) {
    add("%s", "  on its own thread pool\n");
  } else {
    add("%s", "  on the application's executor\n");
  }
  for (std::size_t i = 0; i < c.wk.slots.size(); ++i) {
    const worker_slot& s = c.wk.slots[i];
    if (s.running() == nullptr) continue;  // (so s.run is the running handler's)
    const work_ops* ops = s.running_ops();
    char desc[description_len + 1] = "";
    const bool described = s.described && copy_description(&s, desc) && desc[0] != '\0';
    std::size_t ahead = 0;
    if (const ahead_batch* b = s.run->ahead; b != nullptr)
      for (int k = 0; k < b->n; ++k)
        ahead += b->items[static_cast<std::size_t>(k)].load(std::memory_order_relaxed) != nullptr;
    add("  running  slot %zu: %s%s%s%s (%zu more instance(s) queued behind it, rule 10; %zu "
        "taken ahead)\n",
        i, ops != nullptr ? ops->name : "?", described ? " [" : "", described ? desc : "",
        described ? "]" : "", s.run->scheduled.size(), ahead);
  }
  auto list = [&](const char* what, const work_list& l) {
    std::size_t n = 0;
    for (const work& item : l) {
      if (n++ == limit) {
        add("  %-8s ... %zu more\n", what, l.size() - limit);
        break;
      }
      add("  %-8s %s\n", what, work_name(item));
    }
  };
  list("waiting", c.wl.ready);
  list("inactive", c.wl.inactive);
  // Armed deadlines are on virtual time while a test_clock is installed.
  const auto virt = virtual_now.load(std::memory_order_relaxed);
  const auto now = virt != no_virtual_time ? virt : std::chrono::steady_clock::now();
  std::size_t n = 0;
  for (const work& item : c.tm.armed) {
    if (n++ == limit) {
      add("  armed    ... %zu more\n", c.tm.armed.size() - limit);
      break;
    }
    // Safety: only delayed items are linked on the armed list.
    const auto& dw = static_cast<const delayed_work&>(item);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(dw.deadline() - now);
    add("  armed    %s (due in %lld ms)\n", work_name(item), static_cast<long long>(left.count()));
  }
}

bool congested_locked(const queue_core* core) noexcept { return !core->wl.inactive.empty(); }

bool describe_locked(worker_slot& slot, const char* desc) noexcept {
  if (!set_description(&slot, desc)) return false;
  slot.described = true;
  return true;
}

}  // namespace wq::detail
