// SPDX-License-Identifier: BSL-1.0
// The worklist: see worklist.hpp.
#include "worklist.hpp"

#include "../trace.hpp"
#include "counters.hpp"

namespace wq::detail {

void set_list(work& w, list_kind kind) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  // Safety (relaxed): LIST is read only under the queue mutex, which orders it.
  while (!st.compare_exchange_weak(s, with_list(s, kind), std::memory_order_relaxed)) {
  }
}

namespace {

void set_queued(work& w, std::uint64_t id, list_kind kind, unsigned color) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  // Safety (release): publishes the queue id for lock-free readers that validate it under the
  // queue mutex; the mutex itself publishes everything else.
  while (!st.compare_exchange_weak(
      s, (with_color(with_list(with_queue_id(s, id), kind), color) | st_queued) & ~st_intake,
      std::memory_order_release, std::memory_order_relaxed)) {
  }
}

}  // namespace

void link_on_worklist(queue_core* core, work& w) noexcept {
  list_kind kind = list_kind::work;
  if (core->wl.nr_active < core->wl.max_active && core->wl.inactive.empty()) {
    core->wl.ready.push_back(w);
    ++core->wl.nr_active;
    WQ_TRACE_ACTIVATE_WORK(&w);
  } else {
    core->wl.inactive.push_back(w);  // rule 37: FIFO behind already-inactive items
    kind = list_kind::inactive;
  }
  if (++core->wl.nr_in_flight == 1) note_work_locked(core);  // idle to busy: hold the executor
  const unsigned color = core->wl.colors.add();
  set_queued(w, core->id(), kind, color);
  sample_queued(core->stats, w, core->wl.ready.size() + core->wl.inactive.size());
}

work* pop_runnable(queue_core* core) noexcept {
  if (!core->wl.ready.empty()) {
    work* w = &core->wl.ready.front();
    core->wl.ready.pop_front();
    return w;
  }
  if (core->wl.inactive.empty() || core->wl.nr_active >= core->wl.max_active) return nullptr;
  // Activation (rule 37), done when a worker takes the item: see has_runnable.
  work* w = &core->wl.inactive.front();
  core->wl.inactive.pop_front();
  ++core->wl.nr_active;
  if (observer* o = core->obs.load(std::memory_order_relaxed)) o->on_activated(core->name, *w);
  WQ_TRACE_ACTIVATE_WORK(w);
  return w;
}

void push_front_ready(queue_core* core, work& w) noexcept {
  core->wl.ready.push_front(w);
  set_list(w, list_kind::work);
}

work* mark_started(work& w) noexcept {
  // Safety (relaxed): QUEUED is read under the queue mutex, held here.
  work_access::state(w).fetch_and(~st_queued, std::memory_order_relaxed);
  return &w;
}

bool uncount(queue_core* core, unsigned color, bool active) noexcept {
  if (active) --core->wl.nr_active;
  if (--core->wl.nr_in_flight == 0) note_work_locked(core);  // busy to idle: let run() return
  return core->wl.colors.remove(color);
}

}  // namespace wq::detail
