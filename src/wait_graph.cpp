// SPDX-License-Identifier: BSL-1.0
// Blocking waits that complete or refuse in bounded time: the wait graph (cycle detection
// between blocked items) and the progress checks (paused queues, stopped or unrun executors).
// See wait_graph.hpp for the model and the lock order (graph mutex, then one queue mutex).
#include "wait_graph.hpp"

#include <wq/blocking_region.hpp>

#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>
#include <wq/impl/claim.hpp>

#include <algorithm>
#include <vector>

#include "engine/queue_core.hpp"
#include "engine/run_records.hpp"
#include "engine/waiters.hpp"

namespace wq {
namespace detail {
namespace {

// Guards every run_record::waiting. Immortal: waits may happen during static destruction.
std::mutex& graph_mu() {
  static auto* m = new std::mutex;  // Safety: intentionally leaked (see above).
  return *m;
}

constexpr int max_depth = 16;  // wait chains longer than this are not followed (no refusal)

bool needs_me(run_record* me, const wait_target& t, std::vector<run_record*>& path);

// Whether thread `r` cannot make progress once `me` waits: it is `me`, or it is blocked on
// something that cannot make progress. The blocked threads form an AND-OR graph (a running
// item waited for is needed; of the running items that could free a slot for a queued item,
// any one will do), and the threads that cannot make progress are its greatest fixed point:
// a thread that is blocked on everything it could get out through, with `me` taken as
// blocked. So the walk takes a thread it meets again on its own `path` as blocked: a way out
// through it leads back to the thread under evaluation, not out (the others of an OR decide).
// A cycle of running items that need each other (AND) never forms (the wait closing it was
// refused); one of items that need any of a full queue's running items (OR) becomes one only
// when the last of them would wait, which is the wait refused here. Chains deeper than
// max_depth are taken as making progress (no refusal).
bool thread_needs_me(run_record* me, run_record* r, std::vector<run_record*>& path) {
  if (r == me) return true;
  if (r == nullptr || path.size() >= max_depth) return false;
  if (std::find(path.begin(), path.end(), r) != path.end()) return true;
  if (r->waiting.what == wait_target::kind::none) return false;  // running freely
  path.push_back(r);
  const bool needs = needs_me(me, r->waiting, path);
  path.pop_back();
  return needs;
}

// The threads whose progress `t` needs, read under the queue's mutex: all of them (AND), or,
// with `any`, just one of them (OR: a queued item needs one running item to free a slot).
struct needed_threads {
  std::vector<run_record*> recs;
  bool any = false;
};

needed_threads needed_by(const wait_target& t) {
  needed_threads out;
  queue_core* core = t.core;
  std::lock_guard lk(core->mu);
  if (!core->reg.live) return out;
  auto running = [&](const work* item) {
    for (const worker_slot& s : core->wk.slots) {
      const work* cur = s.running();  // non-null: s.run is the running handler's
      if (s.active && cur != nullptr && (item == nullptr || cur == item))
        out.recs.push_back(s.run->rec);
    }
  };
  switch (t.what) {
    case wait_target::kind::none: break;
    case wait_target::kind::queue: running(nullptr); break;
    case wait_target::kind::running: running(t.item); break;
    case wait_target::kind::item: {
      running(t.item);
      // Safety: the state word is only read; QUEUED and LIST change under this mutex.
      const state_t s =
          work_access::state(const_cast<work&>(*t.item)).load(std::memory_order_relaxed);
      if ((s & st_queued) == 0 || queue_id_of(s) != core->id()) break;
      if (list_of(s) == list_kind::scheduled) {
        // Handed to the worker running its earlier instance (rule 10): after that one.
        bool handed = false;
        for (const worker_slot& slot : core->wk.slots) {
          if (slot.run == nullptr) continue;  // nothing is handed to a slot with no handler
          for (const work& w : slot.run->scheduled) {
            if (&w != t.item) continue;
            out.recs.push_back(slot.run->rec);
            handed = true;
          }
        }
        if (handed) break;
        // Otherwise a worker took it ahead: any worker with nothing else to run takes it back,
        // as it would take it off the ready list (below).
      }
      if (list_of(s) == list_kind::deferred) {
        running(nullptr);  // queued when the drain ends, i.e. once every running item is done
        break;
      }
      // A worker on its way, or a free slot for one, can start it without any running item
      // finishing (an inactive item also needs room under max_active).
      const bool startable =
          (list_of(s) != list_kind::inactive || core->wl.nr_active < core->wl.max_active) &&
          (core->wk.nr_unstarted > 0 || core->wk.nr_workers < core->wk.max_workers);
      if (startable) break;
      if (!out.recs.empty()) break;  // it is also running: that instance must finish (AND)
      running(nullptr);
      out.any = true;
      break;
    }
  }
  return out;
}

bool needs_me(run_record* me, const wait_target& t, std::vector<run_record*>& path) {
  needed_threads n = needed_by(t);
  if (n.recs.empty()) return false;
  if (n.any) {
    return std::all_of(n.recs.begin(), n.recs.end(),
                       [&](run_record* r) { return thread_needs_me(me, r, path); });
  }
  return std::any_of(n.recs.begin(), n.recs.end(),
                     [&](run_record* r) { return thread_needs_me(me, r, path); });
}

}  // namespace

bool wait_registration::enter(const wait_target& t) noexcept {
  run_record* me = claimed_run_record();
  if (me == nullptr || this_worker().current == nullptr) return true;  // cannot close a cycle
  std::lock_guard lk(graph_mu());
  try {
    std::vector<run_record*> path;
    path.reserve(max_depth);
    if (needs_me(me, t, path)) return false;
  } catch (...) {
    // Out of memory walking the graph: wait without the check (as before it existed).
  }
  me->waiting = t;
  rec_ = me;
  return true;
}

void wait_registration::leave() noexcept {
  if (rec_ == nullptr) return;
  std::lock_guard lk(graph_mu());
  rec_->waiting = wait_target{};
  rec_ = nullptr;
}

wait_registration::~wait_registration() { leave(); }

stuck_detector::stuck_detector(queue_core* core) noexcept
    : core_(core),
      starts_(core->wk.handler_starts),
      since_(std::chrono::steady_clock::now()),
      paused_since_(since_) {}

std::chrono::milliseconds stuck_detector::slice() const noexcept {
  const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(wait_limit());
  return std::clamp(limit / 4, std::chrono::milliseconds(1), std::chrono::milliseconds(50));
}

errc stuck_detector::check(const wait_target& t) noexcept {
  queue_core* core = core_;
  const auto now = std::chrono::steady_clock::now();
  if (!core->lc.paused) {
    paused_since_ = now;
  } else if (now - paused_since_ >= wait_limit()) {
    // Another thread may resume the queue while we wait; one that stays paused this long
    // would leave the wait hanging.
    // Rule 45: queued items do not start until resume(); running ones finish.
    bool needs_queued = false;
    switch (t.what) {
      case wait_target::kind::queue:
        needs_queued = !core->wl.ready.empty() || !core->wl.inactive.empty();
        for (const worker_slot& s : core->wk.slots)
          needs_queued |= s.run != nullptr && !s.run->scheduled.empty();
        break;
      case wait_target::kind::item: {
        // Safety: read only; QUEUED changes under this queue's mutex, held here.
        const state_t s =
            work_access::state(const_cast<work&>(*t.item)).load(std::memory_order_relaxed);
        needs_queued = (s & st_queued) != 0 && queue_id_of(s) == core->id();
        break;
      }
      case wait_target::kind::running:
      case wait_target::kind::none: break;
    }
    if (needs_queued) return errc::wait_on_paused_queue;
  }
  if (core->wk.nr_unstarted == 0 || core->wk.handler_starts != starts_) {
    // No worker is waiting for the executor, or one started since the last check: progress.
    starts_ = core->wk.handler_starts;
    since_ = now;
    return errc{};
  }
  if (core->wk.pool != nullptr) {
    // A shared pool runs every task it is given: a worker of this queue waits only while the
    // pool's workers are busy. As long as any of them makes progress (starts or finishes an
    // item), so will this queue; only a pool that made none for the wait limit is stuck
    // (items waiting for each other beyond max_threads, or no thread can be started).
    const std::uint64_t mark = core->wk.pool->progress_mark();
    if (mark != pool_mark_) {
      pool_mark_ = mark;
      since_ = now;
      return errc{};
    }
    core->wk.pool->nudge();  // after a failed thread start, nothing else may ask again
  }
  const executor_box* ex = core->wk.executor.get();
  if (ex != nullptr && ex->stopped != nullptr && ex->stopped(ex->storage))
    return errc::executor_stopped;
  if (now - since_ >= wait_limit()) return errc::executor_not_running;
  return errc{};
}

void report_refused_wait(errc why, const char* op, const queue_core* core) noexcept {
  const char* name = core->name.c_str();
  switch (why) {
    case errc::wait_on_own_queue:
      report(why, "%s of queue '%s' from one of its own items would wait for itself: refused", op,
             name);
      break;
    case errc::wait_needs_this_worker:
      report(why,
             "%s of queue '%s' needs the worker (or strand) the calling thread holds: "
             "refused",
             op, name);
      break;
    case errc::wait_cycle:
      report(why,
             "%s of queue '%s' from a running item would close a cycle of blocked items "
             "(each waits for the other): refused",
             op, name);
      break;
    case errc::wait_on_paused_queue:
      report(why,
             "%s of queue '%s' needs queued items of the paused queue to run (rule 45): "
             "refused; resume() it first",
             op, name);
      break;
    case errc::executor_stopped:
      report(why,
             "%s of queue '%s': its executor's io_context is stopped, so its queued items "
             "cannot run: refused",
             op, name);
      break;
    case errc::executor_not_running:
      if (core->wk.pool != nullptr) {
        report(why,
               "%s of queue '%s': no worker of its %s pool made progress for %lld ms "
               "(items waiting for each other beyond its max_threads, or no thread can be "
               "started; see wq::dump_pools()): refused",
               op, name, to_string(core->wk.pool->kind()),
               static_cast<long long>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(wait_limit()).count()));
        break;
      }
      report(why,
             "%s of queue '%s': no worker posted to its executor started for %lld ms "
             "(nobody runs that executor, or only the waiting thread would): refused",
             op, name,
             static_cast<long long>(
                 std::chrono::duration_cast<std::chrono::milliseconds>(wait_limit()).count()));
      break;
    default: report(why, "%s of queue '%s': refused", op, name); break;
  }
}

errc wait_until_impl(queue_core* core, core_lock& lk, const wait_target& t, blocked_kind kind,
                     const char* op, bool (*done)(void* arg), void* arg, bool report) noexcept {
  if (done(arg)) return errc{};
  wait_registration reg;
  if (this_worker().current != nullptr) {
    // A running item is about to block: register in the wait graph (graph mutex first).
    lk.unlock();
    const bool ok = reg.enter(t);
    lk.lock();
    if (!ok) {
      if (done(arg)) return errc{};
      if (report) report_refused_wait(errc::wait_cycle, op, core);
      return errc::wait_cycle;
    }
  }
  errc result{};
  stuck_detector stuck(core);
  // On a pool worker: the pool starts another worker while this one waits (rule 42).
  const blocking_region blocked;
  {
    blocked_wait me(core, kind);  // linked while mu is held through lk (released only in waits)
    while (!done(arg)) {
      if (const errc e = stuck.check(t); e != errc{}) {
        if (report) report_refused_wait(e, op, core);
        result = e;
        break;
      }
      me.wait_for(lk, stuck.slice());
    }
  }
  if (reg.registered()) {
    // The graph mutex is never taken under a queue mutex.
    lk.unlock();
    reg.leave();
    lk.lock();
  }
  return result;
}

}  // namespace detail

}  // namespace wq
