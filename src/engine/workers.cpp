// SPDX-License-Identifier: BSL-1.0
// The workers: see workers.hpp.
#include "workers.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "../trace.hpp"
#include "backoff.hpp"
#include "counters.hpp"
#include "descriptions.hpp"
#include "intake.hpp"
#include "queueing.hpp"
#include "registry.hpp"
#include "worklist.hpp"

namespace wq::detail {

namespace {

// How often (in items) a busy worker links what producers left on the intake.
constexpr int intake_period = 16;
static_assert(worker_budget % intake_period == 0, "a new handler looks at the intake first");

// A sampled run at least this long marks the worker's items long (worker_slot::long_items):
// its re-lock after an item then spins before it sleeps (relock_after_run). Between the 100 ns
// items, where spinning loses, and the 1 us items, where it wins (docs/benchmarks.md).
constexpr std::chrono::nanoseconds relock_spin_after{800};
// Spin steps (cpu_relax) before the re-lock sleeps: a few microseconds at most, well over the
// few hundred nanoseconds a worker holds the mutex between two items.
constexpr int relock_spins = 64;

// Returns: whether a worker took items ahead that it has not started (a new worker with nothing
// else to run takes them back, pop_next). Requires: mu held. Complexity: O(slots x
// ahead_batch::capacity), reached only when the lists are empty and a worker could start.
bool ahead_waiting_locked(const queue_core* core) noexcept {
  for (const auto& slot : core->wk.slots) {
    const ahead_batch* b = slot.run != nullptr ? slot.run->ahead : nullptr;
    if (b == nullptr) continue;
    for (int i = 0; i < b->n; ++i)
      // Safety (relaxed): a hint; whoever takes the entry decides by its exchange.
      if (b->items[static_cast<std::size_t>(i)].load(std::memory_order_relaxed) != nullptr)
        return true;
  }
  return false;
}

int claim_worker_slot(queue_core* core) noexcept {
  if (core->lc.paused || core->wk.executor_dead || core->wk.nr_workers >= core->wk.max_workers)
    return -1;
  // A worker already on its way takes the next item and posts the next worker if more are
  // runnable (take_next): one thread wake-up per idle-to-busy transition, paid by the worker
  // rather than by every queueing thread (a timer completion paid one per expiry).
  if (core->wk.nr_unstarted > 0) return -1;
  // Items a busy worker took ahead are runnable too: on a shared pool whose workers block
  // (rule 42), the pool starts another worker for the slot posted here, which takes them back.
  if (!has_runnable(core) && !ahead_waiting_locked(core)) return -1;
  std::size_t i = 0;
  while (i < core->wk.slots.size() && core->wk.slots[i].active) ++i;
  if (i == core->wk.slots.size()) {
    // All slots busy, fewer than max_workers: a shared pool's queue grows one (its workers may
    // be blocked; the pool replaces them, rule 42). Allocates only past the queue's peak.
    try {
      core->wk.slots.emplace_back(core);
    } catch (...) {
      return -1;  // out of memory: the items wait for a running worker
    }
  }
  core->wk.slots[i].active = true;
  ++core->wk.nr_workers;
  count_peak_workers(core->stats, core->wk.nr_workers);
  update_saturated(core);
  ++core->reg.outstanding_handlers;
  return static_cast<int>(i);
}

}  // namespace

void set_pool_entry(void (*entry)(pool_task*) noexcept) noexcept {
  worker_pool::set_task_entry(entry);
}

void submit_handler_locked(queue_core* core, std::uint32_t gen, std::uint32_t slot) {
  if (core->wk.pool != nullptr) {
    worker_slot& s = core->wk.slots[slot];
    s.gen = gen;  // its index is its own (slot_store::emplace_back)
    core->wk.pool->submit(&s);
  } else {
    core->wk.executor->post(core->wk.executor->storage, worker_handler(core, gen, slot));
  }
  ++core->wk.nr_unstarted;
  update_saturated(core);  // producers may now leave items on the intake for it
}

void handler_gone_locked(queue_core* core, core_lock& lk) noexcept {
  if (--core->reg.outstanding_handlers == 0 && !core->reg.live) maybe_recycle(core, lk);
}

// Posts a handler for a claimed slot. Requires mu held (see the file comment).
namespace {

// Posts a handler for a claimed slot, if `slot` is not -1. Requires mu held.
void post_locked(queue_core* core, int slot) noexcept {
  if (slot < 0) return;
  try {
    submit_handler_locked(core, core->reg.gen, static_cast<std::uint32_t>(slot));
  } catch (...) {
    // Out of memory for the handler: undo the claim. The items stay queued and the next
    // queueing call (or a finishing worker) tries again.
    core->wk.slots[static_cast<std::size_t>(slot)].active = false;
    --core->wk.nr_workers;
    update_saturated(core);
    --core->reg.outstanding_handlers;
    report(errc::worker_post_failed, "queue '%s': items stay queued, retried later",
           core->name.c_str());
  }
}

}  // namespace

void queue_locked(queue_core* core, work& w) noexcept {
  link_locked(core, w);
  post_locked(core, claim_worker_slot(core));
}

void start_workers_locked(queue_core* core) noexcept {
  take_intake_locked(core);
  for (int slot = claim_worker_slot(core); slot >= 0; slot = claim_worker_slot(core))
    post_locked(core, slot);
}

int start_workers_deferred_locked(queue_core* core) noexcept {
  take_intake_locked(core);
  const int slot = claim_worker_slot(core);
  if (slot < 0) return -1;
  // What submit_handler_locked records under mu, recorded now; only the post call waits.
  core->wk.slots[static_cast<std::size_t>(slot)].gen = core->reg.gen;
  ++core->wk.nr_unstarted;
  update_saturated(core);
  // Safety (relaxed): under mu; the executor and pool are torn down under mu after
  // wait_posts_done has seen 0, so they stay while this count is held.
  core->wk.posting.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

void post_claimed(queue_core* core, int slot, std::uint32_t gen) noexcept {
  const auto index = static_cast<std::uint32_t>(slot);
  try {
    if (core->wk.pool != nullptr) {
      // Safety: the slot's fields were set under mu; the deque never moves a slot.
      core->wk.pool->submit(&core->wk.slots[index]);
    } else {
      core->wk.executor->post(core->wk.executor->storage, worker_handler(core, gen, index));
    }
  } catch (...) {
    std::lock_guard lk(core->mu);
    core->wk.slots[index].active = false;
    --core->wk.nr_workers;
    --core->wk.nr_unstarted;
    update_saturated(core);
    --core->reg.outstanding_handlers;
    report(errc::worker_post_failed, "queue '%s': items stay queued, retried later",
           core->name.c_str());
    // Safety (release): the undo above happens before a retirer's acquire sees 0.
    core->wk.posting.fetch_sub(1, std::memory_order_release);
    return;
  }
  // Safety (release): the post call happens before a retirer's acquire sees 0 and tears the
  // executor down.
  core->wk.posting.fetch_sub(1, std::memory_order_release);
}

void wait_posts_done(queue_core* core, core_lock& lk) noexcept {
  // Safety (acquire): pairs with post_claimed's release decrement.
  for (unsigned spins = 0; core->wk.posting.load(std::memory_order_acquire) != 0; ++spins) {
    lk.unlock();
    backoff(spins);
    lk.lock();
  }
}

worker_slot* find_running(queue_core* core, const work* w, const work_ops* ops,
                          const worker_slot* self) noexcept {
  // Active slots are claimed lowest index first, so stopping after the last active one keeps
  // this short even on queues with many slots.
  int seen = 0;
  for (auto& s : core->wk.slots) {
    if (seen == core->wk.nr_workers) break;
    if (!s.active) continue;
    ++seen;
    if (&s != self && s.running() == w && s.running_ops() == ops) return &s;
  }
  return nullptr;
}

namespace {

// Pops the next item this worker may run, handing items that are already running on another
// worker of this queue to that worker (non-reentrancy, rules 9-11).
work* pop_next(queue_core* core, worker_slot& me, worker_run& run) noexcept {
  if (!run.scheduled.empty()) {
    work& w = run.scheduled.front();
    run.scheduled.pop_front();
    return mark_started(w);
  }
  while (work* w = pop_runnable(core)) {
    const work_ops* ops = work_access::ops(*w).load(std::memory_order_relaxed);
    if (worker_slot* owner = find_running(core, w, ops, &me)) {
      owner->run->scheduled.push_back(*w);  // running: its handler's run is published
      set_list(*w, list_kind::scheduled);
      continue;
    }
    return mark_started(*w);
  }
  // Nothing left on the lists: items another worker took ahead and has not started come back
  // (a worker must not go idle, or wait in an item, while they wait behind a long item there).
  if (take_back_ahead_locked(core, &me)) return pop_next(core, me, run);
  return nullptr;
}

// Takes the mutex back after an item ran. Items that take a microsecond or more leave two
// workers rarely meeting here, and each meeting costs the loser a futex sleep and its wake-up
// (tens of microseconds on a VM) while the holder is done within a few hundred nanoseconds:
// there, a bounded spin wins. Short items are the opposite: the workers meet often, and the
// loser's sleep is what lets the other run on alone with the queue's lines in its cache;
// spinning there keeps both contending and halves the throughput (docs/benchmarks.md, "The
// worker's re-lock after an item"). Memory ordering: the mutex's.
void relock_after_run(const worker_slot& me, core_lock& lk) noexcept {
  if (me.long_items) {
    for (int i = 0; i < relock_spins; ++i) {
      if (lk.try_lock()) return;
      cpu_relax();
    }
  }
  lk.lock();
}

}  // namespace

worker_slot* running_slot_locked(const queue_core* core, const work* item) noexcept {
  for (const auto& slot : core->wk.slots)
    // Safety: const_cast back to the core's own (non-const) slot: constness of the query only.
    if (slot.active && slot.running() == item) return const_cast<worker_slot*>(&slot);
  return nullptr;
}

worker_scope::worker_scope(queue_core* c, std::uint32_t g, std::uint32_t index) noexcept
    : core(c),
      gen(g),
      slot(index),
      me(c->wk.slots[index]),
      // Claimed here, once per handler, rather than before each item: a pool thread's first
      // worker handler (it may find nothing to run) takes its one-time allocation, not a
      // later item in an application's steady state.
      rec(this_run_record()),
      ctx(this_worker()),
      saved_(ctx) {
  --core->wk.nr_unstarted;
  ++core->wk.handler_starts;
  update_saturated(core);
  // Safety (seq_cst): pairs with producers' push + load of `saturated` (see update_saturated):
  // an item left on the intake while this worker was on its way is seen here.
  if (intake_nonempty(core, std::memory_order_seq_cst)) start_workers_locked(core);
  run.rec = rec;
  me.run = &run;
  ctx.core = core;
  ctx.slot = &me;
}

worker_scope::~worker_scope() {
  me.run = nullptr;
  ctx = saved_;
}

next_step take_next(worker_scope& s, int& budget, work*& out) noexcept {
  queue_core* const core = s.core;
  worker_slot& me = s.me;
  worker_run& run = s.run;
  for (;; --budget) {
    // Items queued through the intake since this worker last held the mutex: link them (and
    // start more workers if slots are free). Everything on the lists is older than everything
    // on the intake (each locked insert takes the intake first), so while this worker has
    // items to pop FIFO holds without looking. Looking only every intake_period items, and
    // before going idle, leaves the intake's cache line with the producers pushing to it
    // instead of pulling it across cores once per item.
    if ((budget % intake_period == 0 || (run.scheduled.empty() && !has_runnable(core))) &&
        intake_nonempty(core))
      start_workers_locked(core);
    if (budget == 0 && (!run.scheduled.empty() || has_runnable(core))) {
      // Fairness: let other handlers on this executor run, then continue in a new handler.
      // The slot stays active and the outstanding-handler count passes to the new handler.
      try {
        submit_handler_locked(core, s.gen, s.slot);
        // Items handed to this worker go back to the front of the worklist, in their order:
        // no instance of them runs once it leaves, and what it held leaves with it.
        give_back_scheduled_locked(core, run);
        return next_step::yielded;
      } catch (...) {
        budget = worker_budget;  // could not yield: keep going here
      }
    }
    // Rule 45: stop starting items; items handed to this worker go back to the worklist.
    if (core->lc.paused) give_back_scheduled_locked(core, run);
    work* w = core->lc.paused ? nullptr : pop_next(core, me, run);
    if (w == nullptr) {
      me.active = false;
      --core->wk.nr_workers;
      update_saturated(core);
      // Safety (seq_cst): the store above and this load pair with a producer's push and its
      // load of `saturated` (try_push): if the producer saw this worker still running, this
      // load sees its item, which is then not left stranded on the intake.
      if (!core->lc.paused && intake_nonempty(core, std::memory_order_seq_cst)) {
        me.active = true;
        ++core->wk.nr_workers;
        update_saturated(core);
        continue;
      }
      return next_step::idle;
    }
    // More runnable items than this worker: start the next worker (one at a time, see
    // claim_worker_slot, which finds none to start otherwise), before this one disappears
    // into a possibly long function.
    post_locked(core, claim_worker_slot(core));
    run.current_ops.store(work_access::ops(*w).load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
    run.current.store(w, std::memory_order_relaxed);  // Safety: see worker_run::current
    ++me.runs;
    s.timing = sample_started(core->stats, w, s.started_at);
    // Safety (static_cast): a color is below nr_colors (<= 16).
    run.current_color =
        static_cast<std::uint8_t>(color_of(work_access::state(*w).load(std::memory_order_relaxed)));
    out = w;
    return next_step::run;
  }
}

namespace {

// Runs `w` (ops `ops`) on the worker `s`, without mu: publishes it in the run record, calls its
// function (which may free it, rule 4), tells the observer and the pool, restores the record.
void run_item(worker_scope& s, work* w, const work_ops* ops) noexcept {
  queue_core* const core = s.core;
  run_record* const rec = s.rec;
  // Rule 2: the trampoline clears PENDING right before calling the function (after taking
  // the queue's reference out of the item), so a queue call made while it runs succeeds.
  s.ctx.current = w;
  const work* outer = nullptr;
  const work_ops* outer_ops = nullptr;
  std::uint32_t outer_core = 0;
  bool hidden = rec == nullptr;
  if (rec != nullptr) {
    outer = rec->item.load(std::memory_order_relaxed);
    outer_ops = rec->ops.load(std::memory_order_relaxed);
    outer_core = rec->core_index.load(std::memory_order_relaxed);
    hidden = outer != nullptr;  // the outer item leaves the record while this one runs
  }
  // Safety (seq_cst): counted before the run is published (below) and before the trampoline
  // clears PENDING, so a _sync cancel that saw either sees the count (hidden_runs).
  if (hidden) hidden_runs().fetch_add(hidden_run_begins, std::memory_order_seq_cst);
  if (rec != nullptr) {
    rec->ops.store(ops, std::memory_order_release);
    rec->core_index.store(core->reg.index, std::memory_order_release);
    // Safety (release): a destructor that learnt of this run from the function sees it,
    // and the ops stored above.
    rec->item.store(w, std::memory_order_release);
  }
  observer* const obs = core->obs.load(std::memory_order_relaxed);
  const bool long_running = has_flag(core->flags, queue_flags::long_running);
  pool_item_begin(long_running);  // rule 42: progress mark; CPU-intensive items
  if (obs != nullptr) obs->on_started(core->name, *w);
  WQ_TRACE_EXECUTE_START(w, ops->name);
  // Safety: the mutex is not held while user code runs. `w` may be freed by the function
  // (rule 4); only its address is kept (in run.current and rec, cleared below) as an
  // identity key.
  ops->run(w);
  restore_thread_name(s.ctx);  // set_worker_desc names the thread for one item only
  if (rec != nullptr) {
    // The outer item's ops and queue first: a reader that acquires `item` == outer pairs it
    // with them, not with this run's (as when it was published). Safety (release): a reader
    // that still saw `item` == w but reads these restored values learns that the run is over
    // from them alone, so they must carry its effects (run_record).
    rec->ops.store(outer_ops, std::memory_order_release);
    rec->core_index.store(outer_core, std::memory_order_release);
    rec->item.store(outer, std::memory_order_release);
  }
  // Safety (seq_cst): after the record shows the outer item again (hidden_runs).
  if (hidden) hidden_runs().fetch_add(hidden_run_ends, std::memory_order_seq_cst);
  WQ_TRACE_EXECUTE_END(w, ops->name);  // ops is static storage: not read through `w`
  if (obs != nullptr) obs->on_finished(core->name, w, ops->name);
  // After the observer, which is user code run for the item: the pool judges a worker that
  // sleeps or runs long inside either (rule 42), and only there.
  pool_item_end();
}

// Runs the items the worker took ahead (ahead_batch), without mu, in order, until they are
// done or someone watches the queue. Each is published as the worker's current item before
// its function clears PENDING (rules 9-11: a new instance can only be queued after that).
void run_ahead(worker_scope& s, ahead_batch& b) noexcept {
  for (int i = 0; i < b.n; ++i) {
    // Safety (relaxed): a hint (workers_state::watched); what ran is counted either way, and an
    // entry not started goes back to the ready list (give_back_ahead_locked).
    if (s.core->wk.watched.load(std::memory_order_relaxed)) return;
    // Safety (acq_rel): the one exchange or compare-exchange of this entry that finds the
    // item owns it (ahead_batch); acquire pairs with the fill under mu.
    work* x = b.items[static_cast<std::size_t>(i)].exchange(nullptr, std::memory_order_acq_rel);
    if (x == nullptr) continue;  // taken back by a canceller, pause or another worker
    const work_ops* ops = work_access::ops(*x).load(std::memory_order_relaxed);
    s.run.current_ops.store(ops, std::memory_order_relaxed);
    s.run.current.store(x, std::memory_order_relaxed);  // Safety: see worker_run::current
    run_item(s, x, ops);
    b.done_colors[static_cast<std::size_t>(b.ran)] = b.colors[static_cast<std::size_t>(i)];
    ++b.ran;
  }
}

}  // namespace

void run_one(worker_scope& s, work* w, core_lock& lk, done_list& done) noexcept {
  const work_ops* const ops = s.run.current_ops.load(std::memory_order_relaxed);
  ahead_batch* const ahead = s.run.ahead;
  const bool any_ahead = ahead != nullptr && ahead->n > 0;
  lk.unlock();
  done.complete();
  run_item(s, w, ops);
  // Safety: W (s's times are this handler's own, me.long_items this worker's, see
  // worker_slot).
  if (s.timing) {
    s.finished_at = std::chrono::steady_clock::now();
    s.me.long_items = s.finished_at - s.started_at >= relock_spin_after && spinning_may_help();
  }
  if (any_ahead) run_ahead(s, *ahead);
  relock_after_run(s.me, lk);
}

unsigned finish_one(worker_scope& s) noexcept {
  queue_core* const core = s.core;
  worker_slot& me = s.me;
  // Items queued while this one ran were queued before it finished. If max_active was
  // reached then, they belong on the inactive list (rule 37): link them before this item's
  // slot frees up. (With items already inactive, they go there whenever they are linked.)
  if (core->wl.inactive.empty() && core->wl.nr_active >= core->wl.max_active &&
      intake_nonempty(core))
    take_intake_locked(core);
  ++core->stats.finished;
  if (s.timing) {
    // Sampled: the histograms were made.
    latency_histograms::add(core->stats.latency, latency_histograms::kind::run_time,
                            s.finished_at - s.started_at);
    s.timing = false;
  }
  s.ctx.current = nullptr;
  s.run.current.store(nullptr, std::memory_order_relaxed);
  if (me.described) {
    clear_description(&me);
    me.described = false;
  }
  s.run.current_ops.store(nullptr, std::memory_order_relaxed);
  uncount(core, s.run.current_color, true);
  return s.run.current_color;
}

int take_ahead_locked(worker_scope& s, ahead_batch& b, int budget) noexcept {
  queue_core* const core = s.core;
  worker_slot& me = s.me;
  // A worker that could run beside this one is free: it takes the items (in parallel) rather
  // than this one after its own. On a shared pool the queue's slots may outnumber the workers
  // the pool runs at once (it replaces blocked ones, rule 42): that number is the bound there.
  int busy_at = core->wk.max_workers;
  if (on_shared_pool(core))
    busy_at = static_cast<int>(
        std::min<unsigned>(static_cast<unsigned>(busy_at), core->wk.pool->concurrency()));
  if (core->wk.nr_workers < busy_at || !s.run.scheduled.empty()) return 0;
  // Safety (relaxed): set under mu by every watcher (watch_locked), cleared here under mu.
  if (core->wk.watched.load(std::memory_order_relaxed)) {
    if (watchers_locked(core)) return 0;
    core->wk.watched.store(false, std::memory_order_relaxed);
  }
  const int most = std::min(ahead_batch::capacity, budget - 1);
  int n = 0;
  while (n < most) {
    work* x = pop_runnable(core);  // activates an inactive item as take_next would (rule 37)
    if (x == nullptr) break;
    const work_ops* ops = work_access::ops(*x).load(std::memory_order_relaxed);
    if (worker_slot* owner = find_running(core, x, ops, &me)) {
      owner->run->scheduled.push_back(*x);  // rules 9-11, as pop_next
      set_list(*x, list_kind::scheduled);
      continue;
    }
    if (is_sampled(core->stats, x)) {
      push_front_ready(core, *x);  // its start is timed by take_next, under mu
      break;
    }
    set_list(*x, list_kind::scheduled);
    const auto i = static_cast<std::size_t>(n++);
    b.colors[i] = color_of(work_access::state(*x).load(std::memory_order_relaxed));
    // Safety (relaxed): published to the worker and to takers by the mutex.
    b.items[i].store(x, std::memory_order_relaxed);
  }
  b.n = n;
  b.ran = 0;
  me.runs += static_cast<std::uint32_t>(n);  // modulo 2^32 (worker_slot::runs)
  return n;
}

unsigned finish_ahead_locked(worker_scope& s, const ahead_batch& b, int i) noexcept {
  queue_core* const core = s.core;
  const unsigned color = b.done_colors[static_cast<std::size_t>(i)];
  // Counted started now, with its end: a snapshot of stats() under mu then accounts for each
  // instance once (an item running ahead is one of the in-flight ones until then).
  ++core->stats.started;
  ++core->stats.finished;
  uncount(core, color, true);
  return color;
}

namespace {

// Takes back the entries of `b` not started yet (front of the ready list, in order). Returns
// whether it took any. Requires: mu held.
bool take_back_locked(queue_core* core, ahead_batch& b) noexcept {
  bool any = false;
  for (int i = b.n; i-- > 0;) {
    // Safety (acq_rel): see run_ahead; an entry already exchanged reads null.
    work* x = b.items[static_cast<std::size_t>(i)].exchange(nullptr, std::memory_order_acq_rel);
    if (x == nullptr) continue;
    push_front_ready(core, *x);  // still active and in its color: a ready item again
    any = true;
  }
  return any;
}

}  // namespace

void give_back_ahead_locked(queue_core* core, ahead_batch& b) noexcept {
  (void)take_back_locked(core, b);
  b.n = 0;
  b.ran = 0;
}

void give_back_scheduled_locked(queue_core* core, worker_run& run) noexcept {
  while (!run.scheduled.empty()) {
    work& w = run.scheduled.back();
    run.scheduled.pop_back();
    push_front_ready(core, w);  // still active and in its color: a ready item again
  }
}

bool take_back_ahead_locked(queue_core* core, const worker_slot* self) noexcept {
  bool any = false;
  for (auto& slot : core->wk.slots) {
    ahead_batch* b = slot.run != nullptr ? slot.run->ahead : nullptr;
    if (&slot != self && b != nullptr && b->n > 0) any |= take_back_locked(core, *b);
  }
  return any;
}

bool settle_ahead_locked(queue_core* core, work& w) noexcept {
  for (auto& slot : core->wk.slots)
    if (slot.run != nullptr)
      for (const work& x : slot.run->scheduled)
        if (&x == &w) return true;  // handed over: started under the mutex, as always
  if (!take_scheduled_locked(core, w)) return false;
  push_front_ready(core, w);  // still active and in its color: a ready item again
  return true;
}

bool take_scheduled_locked(queue_core* core, work& w) noexcept {
  for (auto& slot : core->wk.slots) {
    worker_run* const r = slot.run;
    if (r == nullptr) continue;  // no handler runs: nothing is handed to it or taken ahead
    for (auto it = r->scheduled.begin(); it != r->scheduled.end(); ++it) {
      if (&*it != &w) continue;
      r->scheduled.erase(it);
      return true;
    }
    if (r->ahead == nullptr) continue;
    for (int i = 0; i < r->ahead->n; ++i) {
      auto& e = r->ahead->items[static_cast<std::size_t>(i)];
      // Safety (relaxed): a hint; the compare-exchange decides (see run_ahead).
      work* x = e.load(std::memory_order_relaxed);
      if (x == &w && e.compare_exchange_strong(x, nullptr, std::memory_order_acq_rel,
                                               std::memory_order_relaxed))
        return true;
    }
  }
  return false;
}

bool strand_held_here(const queue_core* core) noexcept {
  const executor_box* ex = core->wk.executor.get();
  return ex != nullptr && ex->held_here != nullptr && ex->held_here(ex->storage);
}

}  // namespace wq::detail
