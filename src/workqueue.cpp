// SPDX-License-Identifier: BSL-1.0
// The queue engine: the core registry, queueing, workers, drain and destroy.
//
// Locking: each queue_core has one mutex guarding its lists and counters. The registry mutex is
// taken alone or inside a core mutex (retire), never the other way round. Worker handlers are
// posted while holding the core mutex, so the executor they are posted to cannot be torn down
// by a concurrent destroy between the decision and the post; Asio never runs a posted handler
// inline, so this cannot recurse.
#include <wq/workqueue.hpp>

#include <wq/executor.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <boost/asio/require.hpp>

#include "queue_core.hpp"
#include "trace.hpp"
#include "virtual_time.hpp"

namespace wq {
namespace detail {

// ---- the core registry ---------------------------------------------------------------------

namespace {

constexpr std::uint32_t chunk_size = 1024;
constexpr std::uint32_t max_chunks = (core_index_mask + 1) / chunk_size;

// Immortal: cores must stay addressable for stale handlers and item states at any time,
// including during static destruction.
struct registry {
  std::mutex mu;
  std::array<std::atomic<queue_core*>, max_chunks> chunks{};
  std::uint32_t next_index = 1;         // guarded by mu; index 0 means "no queue"
  std::vector<queue_core*> free_cores;  // guarded by mu: retired, no handler left
};

registry& reg() {
  static registry* r = new registry;  // Safety: intentionally leaked (see above).
  return *r;
}

void push_free(queue_core* core) {
  auto& r = reg();
  std::lock_guard lk(r.mu);
  r.free_cores.push_back(core);
}

// Recycles a retired core once no handle and no worker handler refers to it. Requires mu held
// through `lk`; unlocks it when it recycles (the owned pool is freed outside the mutex: freeing
// it destroys handlers that may release references on other cores).
void maybe_recycle(queue_core* core, std::unique_lock<std::mutex>& lk) noexcept {
  // Safety (acquire): pairs with the release decrements, so the last holder's uses of the core
  // happen before it is reused.
  if (core->reg.live || core->reg.recycled || core->reg.outstanding_handlers != 0 ||
      core->reg.refs.load(std::memory_order_acquire) != 0)
    return;
  core->reg.recycled = true;
  std::unique_ptr<boost::asio::thread_pool> pool = std::move(core->reg.own_pool);
  lk.unlock();
  // The pool was joined by destroy() or by the orphan's helper thread before they let go of
  // their references, so no thread of it runs this.
  pool.reset();
  push_free(core);
}

}  // namespace

void acquire_core(queue_core* core) noexcept {
  // Safety (relaxed): the caller holds a reference, so the count cannot reach zero meanwhile.
  core->reg.refs.fetch_add(1, std::memory_order_relaxed);
}

void add_tracked(queue_core* core) noexcept {
  // Safety (relaxed): the count's value is acted on under mu, where both edges re-read it
  // (note_work_locked); the RMWs' total order makes the last edge's reading the current one.
  if (core->wk.tracked.fetch_add(1, std::memory_order_relaxed) != 0) return;
  std::lock_guard lk(core->mu);
  if (core->reg.live) note_work_locked(core);
}

void remove_tracked(queue_core* core) noexcept {
  if (core->wk.tracked.fetch_sub(1, std::memory_order_relaxed) != 1) return;
  std::lock_guard lk(core->mu);
  if (core->reg.live) note_work_locked(core);
}

void release_core(queue_core* core) noexcept {
  // Safety (acq_rel): release publishes this holder's uses; the last one acquires the others'.
  if (core->reg.refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::unique_lock lk(core->mu);
  maybe_recycle(core, lk);
}

void for_each_core_impl(void (*fn)(queue_core*, void*), void* arg) {
  std::uint32_t end = 0;
  {
    auto& r = reg();
    std::lock_guard lk(r.mu);
    end = r.next_index;
  }
  for (std::uint32_t index = 1; index < end; ++index) {
    if (queue_core* c = lookup_core(index)) fn(c, arg);
  }
}

queue_core* lookup_core(std::uint64_t id) noexcept {
  const auto index = static_cast<std::uint32_t>(id & core_index_mask);
  if (index == 0) return nullptr;
  // Safety (acquire): pairs with the release that published the chunk after constructing it.
  queue_core* chunk = reg().chunks[index / chunk_size].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[index % chunk_size];
}

std::pair<queue_core*, std::uint64_t> create_core(core_config cfg,
                                                  std::unique_ptr<executor_box> ex) {
  worker_pool* pool = cfg.shared_pool ? &pool_of_kind(pool_kind_for(cfg.flags)) : nullptr;
  queue_core* core = nullptr;
  {
    auto& r = reg();
    std::lock_guard lk(r.mu);
    if (!r.free_cores.empty()) {
      core = r.free_cores.back();
      r.free_cores.pop_back();
    } else {
      if (r.next_index > core_index_mask) throw std::length_error("wq: too many live queues");
      const std::uint32_t index = r.next_index++;
      auto& slot = r.chunks[index / chunk_size];
      queue_core* chunk = slot.load(std::memory_order_relaxed);
      if (chunk == nullptr) {
        chunk = new queue_core[chunk_size];  // Safety: never freed (see registry).
        for (std::uint32_t i = 0; i < chunk_size; ++i)
          chunk[i].reg.index = (index / chunk_size) * chunk_size + i;
        slot.store(chunk, std::memory_order_release);
      }
      core = &chunk[index % chunk_size];
    }
  }
  std::unique_lock lk(core->mu);
  // A recycled core keeps the slots it grew (all idle once it retired): reused, not
  // reallocated. Only a new core allocates its first ones; out of memory puts it back.
  try {
    if (core->wk.slots.size() < static_cast<std::size_t>(cfg.worker_slots))
      core->wk.slots.resize(static_cast<std::size_t>(cfg.worker_slots));
  } catch (...) {
    lk.unlock();
    try {
      push_free(core);
    } catch (...) {
      // No memory to list it either: the core is never reused (its index stays taken).
    }
    throw;
  }
  for (worker_slot& sl : core->wk.slots) {
    sl.current = nullptr;
    sl.current_ops = nullptr;
    sl.runs = 0;
    sl.timing = false;
    sl.active = false;
    sl.rec = nullptr;
  }
  core->reg.gen = (core->reg.gen + 1) & core_gen_mask;
  if (core->reg.gen == 0) core->reg.gen = 1;
  core->reg.live = true;
  core->wk.executor_dead = false;
  core->lc.orphaned = false;
  core->lc.destroy_notified = false;
  core->lc.orphan_busy = false;
  core->reg.recycled = false;
  core->reg.refs.store(1, std::memory_order_relaxed);  // the caller's; published by the mutex
  core->reg.own_pool = std::move(cfg.own_pool);
  core->lc.dying = false;
  core->lc.draining = 0;
  core->name = std::move(cfg.name);
  core->flags = cfg.flags;
  core->wl.max_active = cfg.max_active;
  core->wl.nr_active = 0;
  core->wk.max_workers = cfg.max_workers;
  core->wk.slot_cap = cfg.slot_cap;
  core->wk.pool = pool;
  core->wk.nr_workers = 0;
  core->wk.nr_unstarted = 0;
  core->wl.nr_in_flight = 0;
  core->wl.flush_epoch = 0;
  for (auto& n : core->wl.nr_color) n = 0;
  core->lc.paused = false;
  // Statistics start at zero; a recycled core whose queue never saw an item has nothing to
  // clear (zeroing them is most of a short-lived queue's creation cost).
  if (core->stats.queued != 0 || core->stats.cancelled != 0 || core->stats.started != 0 ||
      core->stats.max_depth != 0)
    core->stats.reset();
  core->stats.coalesced.store(0, std::memory_order_relaxed);
  core->obs.store(nullptr, std::memory_order_relaxed);
  core->wk.executor = std::move(ex);
  core->in.saturated.store(false, std::memory_order_relaxed);
  core->wk.tracked.store(0, std::memory_order_relaxed);
  // Safety (release): the generation tag is what producers compare their queue id with; the
  // mutex (released below) publishes the rest of the core to them through the workqueue.
  core->in.word.store(intake_tag(core->reg.gen), std::memory_order_release);
  return {core, core->id()};
}

void retire_core(queue_core* core, std::unique_lock<std::mutex>& lk, done_list& done) noexcept {
  // Waiters left (async_destroy; every other kind is satisfied by an idle queue) complete now.
  for (async_waiter* w : core->wt.async_waiters) done.push(w);
  core->wt.async_waiters.clear();
  core->reg.live = false;
  core->wt.idle_cv.notify_all();  // a destroy() waiting for an async_destroy to finish
  // A new generation makes every id naming this queue stale at once.
  core->reg.gen = (core->reg.gen + 1) & core_gen_mask;
  // Closed, and tagged with the new generation: producers holding an old id fall back to the
  // locked path, which refuses them. (Destroy closed and emptied the intake already.)
  core->in.word.store(intake_tag(core->reg.gen) | intake_closed, std::memory_order_release);
  core->wk.executor.reset();
  maybe_recycle(core, lk);
}

// ---- queueing ------------------------------------------------------------------------------

namespace {}  // namespace

void set_list(work& w, list_kind kind) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  // Safety (relaxed): LIST is read only under the queue mutex, which orders it.
  while (!st.compare_exchange_weak(s, with_list(s, kind), std::memory_order_relaxed)) {
  }
}

namespace {

int claim_worker_slot(queue_core* core) noexcept {
  if (core->lc.paused || core->wk.executor_dead || core->wk.nr_workers >= core->wk.max_workers ||
      !has_runnable(core))
    return -1;
  // A worker already on its way takes the next item and posts the next worker if more are
  // runnable (run_worker): one thread wake-up per idle-to-busy transition, paid by the worker
  // rather than by every queueing thread (a timer completion paid one per expiry).
  if (core->wk.nr_unstarted > 0) return -1;
  std::size_t i = 0;
  while (i < core->wk.slots.size() && core->wk.slots[i].active) ++i;
  if (i == core->wk.slots.size()) {
    // All slots busy, fewer than max_workers: a shared pool's queue grows one (its workers may
    // be blocked; the pool replaces them, rule 42). Allocates only past the queue's peak.
    try {
      core->wk.slots.emplace_back();
    } catch (...) {
      return -1;  // out of memory: the items wait for a running worker
    }
  }
  core->wk.slots[i].active = true;
  ++core->wk.nr_workers;
  update_saturated(core);
  ++core->reg.outstanding_handlers;
  return static_cast<int>(i);
}

// Runs a slot's handler submitted to a shared pool.
void run_pool_task(pool_task* t) noexcept {
  // Safety: every pool_task the engine submits is a worker_slot (submit_handler_locked).
  worker_slot& s = *static_cast<worker_slot*>(t);
  run_worker(s.owner, s.gen, s.index);
}

// Hands a handler for slot `slot` (claimed, or the calling worker's own) to the queue's
// executor or pool. Requires mu held. Throws only what the executor's post throws.
void submit_handler_locked(queue_core* core, std::uint32_t gen, std::uint32_t slot) {
  if (core->wk.pool != nullptr) {
    worker_slot& s = core->wk.slots[slot];
    s.owner = core;
    s.gen = gen;
    s.index = slot;
    s.run = &run_pool_task;
    core->wk.pool->submit(&s);
  } else {
    core->wk.executor->post(core->wk.executor->storage, worker_handler(core, gen, slot));
  }
  ++core->wk.nr_unstarted;
  update_saturated(core);  // producers may now leave items on the intake for it
}

// A worker handler is gone. Requires mu held through `lk`, which may be unlocked on return (a
// retired core is recycled): the caller must not touch the core afterwards.
void handler_gone_locked(queue_core* core, std::unique_lock<std::mutex>& lk) noexcept {
  if (--core->reg.outstanding_handlers == 0 && !core->reg.live) maybe_recycle(core, lk);
}

// Posts a handler for a claimed slot. Requires mu held (see the file comment).
void post_locked(queue_core* core, int slot) noexcept {
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

// Links `w` on the worklist or the inactive list and counts it in flight. Requires mu held.
void insert_one(queue_core* core, work& w) noexcept {
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
  const auto color = static_cast<unsigned>(core->wl.flush_epoch % nr_colors);
  ++core->wl.nr_color[color];
  set_queued(w, core->id(), kind, color);
  queue_counters& stats = core->stats;
  const std::uint64_t depth = core->wl.ready.size() + core->wl.inactive.size();
  if (depth > stats.max_depth) stats.max_depth = depth;
  if (++stats.tick >= sample_every && stats.nr_samples < static_cast<int>(stats.samples.size())) {
    // Time this one from queueing to start (and its run): see stats.hpp.
    stats.tick = 0;
    for (auto& s : stats.samples) {
      if (s.item == nullptr) {
        s = {&w, std::chrono::steady_clock::now()};
        ++stats.nr_samples;
        break;
      }
    }
  }
}

// The intake chain is linked through the items' list hooks, unused while on the intake.
work* intake_next(work& w) noexcept {
  const auto n = work_list::node_traits::get_next(work_list::value_traits::to_node_ptr(w));
  return n == nullptr ? nullptr : work_list::value_traits::to_value_ptr(n);
}
void set_intake_next(work& w, work* next) noexcept {
  work_list::node_traits::set_next(
      work_list::value_traits::to_node_ptr(w),
      next == nullptr ? nullptr : work_list::value_traits::to_node_ptr(*next));
}

// Links a chain taken off the intake (newest first) in queueing order. Requires mu held.
void insert_chain(queue_core* core, std::uintptr_t chain) noexcept {
  // Safety: the chain holds only addresses of items pushed by push_intake, each still owned by
  // this queue (PENDING|INTAKE): nobody else unlinks or frees an item on the intake.
  work* newest = reinterpret_cast<work*>(chain);
  work* oldest = nullptr;
  while (newest != nullptr) {  // reverse: the stack is newest first
    work* next = intake_next(*newest);
    set_intake_next(*newest, oldest);
    oldest = newest;
    newest = next;
  }
  while (oldest != nullptr) {
    work* next = intake_next(*oldest);
    ++core->stats.queued;
    insert_one(core, *oldest);
    oldest = next;
  }
}

}  // namespace

bool take_intake_locked(queue_core* core) noexcept {
  std::uintptr_t h = core->in.word.load(std::memory_order_relaxed);
  do {
    if ((h & intake_ptr_mask) <= intake_closed) return false;  // empty or closed
    // Safety (acquire): pairs with the pushes' release, publishing each item's state and link.
  } while (!core->in.word.compare_exchange_weak(h, h & ~intake_ptr_mask, std::memory_order_acquire,
                                                std::memory_order_relaxed));
  insert_chain(core, h & intake_ptr_mask);
  return true;
}

void close_intake_locked(queue_core* core) noexcept {
  // Safety (acquire): as take_intake_locked. After this no producer can push (they check for
  // the closed mark in the same CAS that pushes).
  const std::uintptr_t h =
      core->in.word.exchange(intake_tag(core->reg.gen) | intake_closed, std::memory_order_acquire);
  if ((h & intake_ptr_mask) > intake_closed) insert_chain(core, h & intake_ptr_mask);
}

void open_intake_locked(queue_core* core) noexcept {
  if (!core->reg.live || core->lc.dying || core->lc.draining > 0) return;
  // Closed until now, so nothing is on it and no producer changes it concurrently.
  core->in.word.store(intake_tag(core->reg.gen), std::memory_order_release);
}

int insert_locked(queue_core* core, work& w) noexcept {
  take_intake_locked(core);  // older items first: FIFO per producer thread (rules 37, 39)
  insert_one(core, w);
  return claim_worker_slot(core);
}

void post_worker(queue_core* core, int slot) noexcept {
  if (slot >= 0) post_locked(core, slot);
}

void start_workers_locked(queue_core* core) noexcept {
  take_intake_locked(core);
  for (int slot = claim_worker_slot(core); slot >= 0; slot = claim_worker_slot(core))
    post_locked(core, slot);
}

void unpause_locked(queue_core* core) noexcept {
  if (!core->lc.paused) return;
  core->lc.paused = false;
  start_workers_locked(core);
}

void queue_deferred_locked(queue_core* core) noexcept {
  while (!core->lc.deferred.empty()) {
    work& w = core->lc.deferred.front();
    core->lc.deferred.pop_front();
    post_worker(core, insert_locked(core, w));
  }
}

worker_context& this_worker() noexcept {
  thread_local worker_context ctx;
  return ctx;
}

namespace {

std::atomic<run_record*> g_run_records{nullptr};
thread_local bool tl_run_record_gone = false;      // trivially destructible: valid during exit
thread_local run_record* tl_run_record = nullptr;  // this thread's record once claimed

// Allocates a record and links it at the head of the list (in use or free), or returns nullptr.
run_record* publish_run_record(bool in_use) noexcept {
  auto* r = new (std::nothrow) run_record;
  if (r == nullptr) return nullptr;
  r->in_use.store(in_use, std::memory_order_relaxed);
  r->next = g_run_records.load(std::memory_order_relaxed);
  // Safety (release): publishes r (and r->next) to walkers.
  while (!g_run_records.compare_exchange_weak(r->next, r, std::memory_order_release,
                                              std::memory_order_relaxed)) {
  }
  return r;
}

run_record* claim_run_record() noexcept {
  // Safety (acquire): pairs with the release that published each record's `next`.
  for (run_record* r = g_run_records.load(std::memory_order_acquire); r != nullptr; r = r->next) {
    bool expected = false;
    if (!r->in_use.load(std::memory_order_relaxed) &&
        r->in_use.compare_exchange_strong(expected, true, std::memory_order_acquire))
      return r;
  }
  return publish_run_record(true);
}

struct run_record_owner {
  run_record* rec = claim_run_record();
  ~run_record_owner() {
    tl_run_record_gone = true;
    tl_run_record = nullptr;
    if (rec == nullptr) return;
    rec->item.store(nullptr, std::memory_order_relaxed);
    // Safety (release): the next owner sees item == nullptr.
    rec->in_use.store(false, std::memory_order_release);
  }
};

}  // namespace

run_record* this_run_record() noexcept {
  if (tl_run_record_gone) return nullptr;
  thread_local run_record_owner owner;
  tl_run_record = owner.rec;
  return owner.rec;
}

run_record* claimed_run_record() noexcept { return tl_run_record; }

void reserve_run_records(std::size_t n) noexcept {
  std::size_t free = 0;
  // Safety (acquire): as claim_run_record.
  for (run_record* r = g_run_records.load(std::memory_order_acquire); r != nullptr; r = r->next)
    if (!r->in_use.load(std::memory_order_relaxed)) ++free;
  for (; free < n; ++free)
    if (publish_run_record(false) == nullptr) return;  // claimed (allocated) on first use then
}

run_record* first_run_record() noexcept { return g_run_records.load(std::memory_order_acquire); }

push_result push_intake(queue_core* core, std::uint64_t id, work& w,
                        const location* where) noexcept {
  const std::uintptr_t tag = intake_tag(static_cast<std::uint32_t>(id >> core_index_bits));
  // Safety: an item's address is only compared and stored here; it is read back as a work* by
  // insert_chain. An address that does not fit under the tag takes the locked path.
  const auto addr = reinterpret_cast<std::uintptr_t>(&w);
  if ((addr & ~intake_ptr_mask) != 0) return push_result::not_pushed;
  std::uintptr_t h = core->in.word.load(std::memory_order_relaxed);
  if ((h & ~intake_ptr_mask) != tag || (h & intake_ptr_mask) == intake_closed)
    return push_result::not_pushed;
  // Idle workers: the locked path starts one (and avoids a second round trip here).
  if (!core->in.saturated.load(std::memory_order_relaxed)) return push_result::not_pushed;
  auto& st = work_access::state(w);
  // We own PENDING, so nobody else changes the queue id; INTAKE tells a canceller or flusher
  // which queue's mutex to take to find the item (they take the intake, then see it QUEUED).
  // Safety (relaxed): the push below publishes it.
  state_t s = st.load(std::memory_order_relaxed);
  while (
      !st.compare_exchange_weak(s, with_queue_id(s, id) | st_intake, std::memory_order_relaxed)) {
  }
  // Before the push: once pushed, the item may run and be freed at any moment.
  if (observer* o = core->obs.load(std::memory_order_relaxed))
    o->on_queued(core->name, w, false, where != nullptr ? *where : location{});
  WQ_TRACE_QUEUE_WORK(&w, trace_name(w), core->name.c_str(), id);
  for (;;) {
    if ((h & ~intake_ptr_mask) != tag || (h & intake_ptr_mask) == intake_closed) {
      // Closed meanwhile (a drain or destroy began): the locked path decides, without
      // reporting the queueing to the observer a second time.
      st.fetch_and(~st_intake, std::memory_order_relaxed);
      return push_result::closed;
    }
    set_intake_next(
        w, (h & intake_ptr_mask) == 0 ? nullptr : reinterpret_cast<work*>(h & intake_ptr_mask));
    // Safety (seq_cst): releases the item (state, link) to the taker; and, with the load of
    // `saturated` below, forms a store-load pair against a worker's going idle (run_worker):
    // either the worker sees this item, or this thread sees the worker gone and starts one.
    if (core->in.word.compare_exchange_weak(h, tag | addr, std::memory_order_seq_cst,
                                            std::memory_order_relaxed))
      break;
  }
  if (!core->in.saturated.load(std::memory_order_seq_cst)) {
    std::lock_guard lk(core->mu);
    if (core->id() == id) start_workers_locked(core);
  }
  return push_result::pushed;
}

namespace {
// The queue whose async_destroy handlers this thread is completing: while it does, what they
// submit to that queue (a handler bound to its executor) is accepted as chained work.
thread_local queue_core* tl_chained_for = nullptr;
}  // namespace

queue_status link_claimed(queue_core* core, std::uint64_t id, work& w, const location* where,
                          bool count) noexcept {
  push_result pushed = push_result::not_pushed;
  if (count) {
    pushed = push_intake(core, id, w, where);
    if (pushed == push_result::pushed) return queue_status::queued;
  }
  std::unique_lock lk(core->mu);
  if (core->id() != id || !core->reg.live) return queue_status::rejected;
  if (core->wk.executor_dead) return queue_status::rejected;  // nothing would ever run it
  if ((core->lc.dying || core->lc.draining > 0) && this_worker().core != core &&
      tl_chained_for != core) {
    return queue_status::rejected;  // rule 17, reported instead of silently dropped
  }
  if (count) {
    ++core->stats.queued;
    observer* o = core->obs.load(std::memory_order_relaxed);
    if (o != nullptr && pushed != push_result::closed)
      o->on_queued(core->name, w, false, where != nullptr ? *where : location{});
  }
  if (pushed != push_result::closed) WQ_TRACE_QUEUE_WORK(&w, trace_name(w), core->name.c_str(), id);
  post_worker(core, insert_locked(core, w));
  return queue_status::queued;
}

// ---- workers -------------------------------------------------------------------------------

namespace {

constexpr int worker_budget = 64;
// How often (in items) a busy worker links what producers left on the intake.
constexpr int intake_period = 16;
static_assert(worker_budget % intake_period == 0, "a new handler looks at the intake first");

worker_slot* find_running(queue_core* core, const work* w, const work_ops* ops,
                          const worker_slot* self) noexcept {
  // Active slots are claimed lowest index first, so stopping after the last active one keeps
  // this short even on queues with many slots.
  int seen = 0;
  for (auto& s : core->wk.slots) {
    if (seen == core->wk.nr_workers) break;
    if (!s.active) continue;
    ++seen;
    if (&s != self && s.current == w && s.current_ops == ops) return &s;
  }
  return nullptr;
}

// An item leaves its list: it is no longer QUEUED, but still PENDING until its trampoline has
// taken the queue's reference out ("starting"; cancellers wait for that to finish).
work* started(work& w) noexcept {
  // Safety (relaxed): QUEUED is read under the queue mutex, held here.
  work_access::state(w).fetch_and(~st_queued, std::memory_order_relaxed);
  return &w;
}

// Pops the next item this worker may run, handing items that are already running on another
// worker of this queue to that worker (non-reentrancy, rules 9-11).
work* pop_next(queue_core* core, worker_slot& me) noexcept {
  if (!me.scheduled.empty()) {
    work& w = me.scheduled.front();
    me.scheduled.pop_front();
    return started(w);
  }
  for (;;) {
    work* w = nullptr;
    if (!core->wl.ready.empty()) {
      w = &core->wl.ready.front();
      core->wl.ready.pop_front();
    } else if (!core->wl.inactive.empty() && core->wl.nr_active < core->wl.max_active) {
      // Activation (rule 37), done when a worker takes the item: see has_runnable.
      w = &core->wl.inactive.front();
      core->wl.inactive.pop_front();
      ++core->wl.nr_active;
      if (observer* o = core->obs.load(std::memory_order_relaxed)) o->on_activated(core->name, *w);
      WQ_TRACE_ACTIVATE_WORK(w);
    } else {
      return nullptr;
    }
    const work_ops* ops = work_access::ops(*w).load(std::memory_order_relaxed);
    if (worker_slot* owner = find_running(core, w, ops, &me)) {
      owner->scheduled.push_back(*w);
      set_list(*w, list_kind::scheduled);
      continue;
    }
    return started(*w);
  }
}

}  // namespace

void abandon_locked(queue_core* core, work_list& out, done_list& done) noexcept {
  core->wk.executor_dead = true;
  core->lc.dying = true;  // refuses all queueing and arming (nothing can run here any more)
  close_intake_locked(core);
  auto take = [&](work_list& from, bool active) {
    while (!from.empty()) {
      work& w = from.front();
      from.pop_front();
      auto& st = work_access::state(w);
      const state_t s = st.fetch_and(~st_queued, std::memory_order_relaxed);
      --core->wl.nr_in_flight;
      --core->wl.nr_color[color_of(s)];
      if (active) --core->wl.nr_active;
      forget_sample_locked(core, &w);
      out.push_back(w);
    }
  };
  take(core->wl.ready, true);
  take(core->wl.inactive, false);
  for (worker_slot& slot : core->wk.slots) take(slot.scheduled, true);
  while (!core->lc.deferred.empty()) {
    work& w = core->lc.deferred.front();
    core->lc.deferred.pop_front();
    work_access::state(w).fetch_and(~st_queued, std::memory_order_relaxed);
    out.push_back(w);
  }
  while (!core->tm.armed.empty()) {
    work& w = core->tm.armed.front();
    core->tm.armed.pop_front();
    const state_t old = work_access::state(w).fetch_and(~st_armed, std::memory_order_acq_rel);
    if ((old & st_in_flight) != 0) {
      // Safety: only delayed items are on the armed list; timer calls are serialised by this
      // mutex and wait_starting (delayed_work.cpp).
      auto& dw = static_cast<delayed_work&>(w);
      wait_timer_idle(dw);
      work_access::timer(dw).cancel();
    }
    out.push_back(w);
  }
  core->stats.cancelled += out.size();
  core->wt.idle_cv.notify_all();
  note_work_locked(core);
  if (!core->wt.async_waiters.empty()) check_async_locked(core, done);
}

void worker_handler_dropped(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept {
  done_list done;
  work_list gone;
  std::unique_lock lk(core->mu);
  if (core->reg.gen == gen && core->reg.live) {
    --core->wk.nr_unstarted;
    worker_slot& me = core->wk.slots[slot];
    me.active = false;
    --core->wk.nr_workers;
    update_saturated(core);
    if (!core->wk.executor_dead) abandon_locked(core, gone, done);
  }
  if (!gone.empty()) {
    const std::size_t n = gone.size();
    lk.unlock();
    // Outside the mutex: drop() releases the references the queue held, which may run any
    // destructor. Each item is ours (PENDING, on no list).
    while (!gone.empty()) {
      work& w = gone.front();
      gone.pop_front();
      work_access::ops(w).load(std::memory_order_relaxed)->drop(&w);
    }
    report(errc::items_dropped,
           "queue '%s': its executor was shut down with %zu item(s) "
           "queued or armed: dropped unrun",
           core->name.c_str(), n);
    lk.lock();
  }
  if (core->reg.gen == gen && core->reg.live && core->lc.orphaned && core->wl.nr_in_flight == 0)
    finish_orphan_locked(core, lk, done);
  handler_gone_locked(core, lk);
}

namespace {

// The worker loop of run_worker: runs items until none is left for this worker (returns false)
// or its fairness budget is spent and a successor handler was submitted (returns true).
// Requires mu held through `lk`; returns with it held. Async waiters it satisfies go on `done`.
bool worker_loop(queue_core* core, std::uint32_t gen, std::uint32_t slot,
                 std::unique_lock<std::mutex>& lk, done_list& done) noexcept {
  --core->wk.nr_unstarted;
  ++core->wk.handler_starts;
  update_saturated(core);
  // Safety (seq_cst): pairs with producers' push + load of `saturated` (see update_saturated):
  // an item left on the intake while this worker was on its way is seen here.
  if ((core->in.word.load(std::memory_order_seq_cst) & intake_ptr_mask) > intake_closed)
    start_workers_locked(core);
  worker_slot& me = core->wk.slots[slot];
  worker_context& ctx = this_worker();
  const worker_context saved = ctx;  // a worker may run inside another queue's work function
  // Claimed here, once per handler, rather than before each item: a pool thread's first
  // worker handler (it may find nothing to run) takes its one-time allocation, not a later
  // item in an application's steady state.
  run_record* const rec = this_run_record();
  me.rec = rec;
  ctx.core = core;
  ctx.slot = &me;
  for (int budget = worker_budget;; --budget) {
    if (core->reg.gen != gen || !core->reg.live) {
      // Retired while this worker ran its last item (an orphan it finished, or a queue
      // destroyed from that item with nothing else in flight): nothing left to do here.
      ctx = saved;
      return false;
    }
    // Items queued through the intake since this worker last held the mutex: link them (and
    // start more workers if slots are free). Everything on the lists is older than everything
    // on the intake (each locked insert takes the intake first), so while this worker has
    // items to pop FIFO holds without looking. Looking only every intake_period items, and
    // before going idle, leaves the intake's cache line with the producers pushing to it
    // instead of pulling it across cores once per item.
    if ((budget % intake_period == 0 || (me.scheduled.empty() && !has_runnable(core))) &&
        (core->in.word.load(std::memory_order_relaxed) & intake_ptr_mask) > intake_closed)
      start_workers_locked(core);
    if (budget == 0 && (!me.scheduled.empty() || has_runnable(core))) {
      // Fairness: let other handlers on this executor run, then continue in a new handler.
      // The slot stays active and the outstanding-handler count passes to the new handler.
      try {
        submit_handler_locked(core, gen, slot);
        ctx = saved;
        return true;
      } catch (...) {
        budget = worker_budget;  // could not yield: keep going here
      }
    }
    if (core->lc.paused) {
      // Rule 45: stop starting items. Items handed to this worker go back to the front of the
      // worklist (no instance of them runs once this worker leaves).
      while (!me.scheduled.empty()) {
        work& sw = me.scheduled.back();
        me.scheduled.pop_back();
        core->wl.ready.push_front(sw);
        set_list(sw, list_kind::work);
      }
    }
    work* w = core->lc.paused ? nullptr : pop_next(core, me);
    if (w == nullptr) {
      me.active = false;
      --core->wk.nr_workers;
      update_saturated(core);
      // Safety (seq_cst): the store above and this load pair with a producer's push and its
      // load of `saturated` (push_intake): if the producer saw this worker still running, this
      // load sees its item, which is then not left stranded on the intake.
      if (!core->lc.paused &&
          (core->in.word.load(std::memory_order_seq_cst) & intake_ptr_mask) > intake_closed) {
        me.active = true;
        ++core->wk.nr_workers;
        update_saturated(core);
        continue;
      }
      ctx = saved;
      return false;
    }
    // More runnable items than this worker: start the next worker (one at a time, see
    // claim_worker_slot, which finds none to start otherwise), before this one disappears
    // into a possibly long function.
    post_worker(core, claim_worker_slot(core));
    const work_ops* ops = work_access::ops(*w).load(std::memory_order_relaxed);
    me.current = w;
    me.current_ops = ops;
    ++me.runs;
    ++core->stats.started;
    if (core->stats.nr_samples > 0) {
      for (auto& s : core->stats.samples) {
        if (s.item == w) {
          const auto now = std::chrono::steady_clock::now();
          core->stats.queue_latency.add(now - s.at);
          s.item = nullptr;
          --core->stats.nr_samples;
          me.timing = true;
          me.started_at = now;
          break;
        }
      }
    }
    me.current_color = color_of(work_access::state(*w).load(std::memory_order_relaxed));
    if (!core->wt.flushers.empty()) {
      for (flush_waiter* f : core->wt.flushers) {
        if (f->item == w && !f->started) {
          f->started = true;
          f->slot = &me;
        }
      }
    }
    // Rule 2: the trampoline clears PENDING right before calling the function (after taking
    // the queue's reference out of the item), so a queue call made while it runs succeeds.
    ctx.current = w;
    const work* outer = nullptr;
    const work_ops* outer_ops = nullptr;
    if (rec != nullptr) {
      outer = rec->item.load(std::memory_order_relaxed);
      outer_ops = rec->ops.load(std::memory_order_relaxed);
      rec->ops.store(ops, std::memory_order_relaxed);
      // Safety (release): a destructor that learnt of this run from the function sees it,
      // and the ops stored above.
      rec->item.store(w, std::memory_order_release);
    }
    observer* const obs = core->obs.load(std::memory_order_relaxed);
    const bool long_running = has_flag(core->flags, queue_flags::long_running);
    lk.unlock();
    done.complete();
    pool_item_begin(long_running);  // rule 42: progress mark; CPU-intensive items
    if (obs != nullptr) obs->on_started(core->name, *w);
    WQ_TRACE_EXECUTE_START(w, ops->name);
    // Safety: the mutex is dropped while user code runs. `w` may be freed by the function
    // (rule 4); only its address is kept (in me.current and rec, cleared below) as an
    // identity key.
    ops->run(w);
    pool_item_end();
    if (rec != nullptr) {
      rec->item.store(outer, std::memory_order_release);
      rec->ops.store(outer_ops, std::memory_order_relaxed);
    }
    WQ_TRACE_EXECUTE_END(w, ops->name);  // ops is static storage: not read through `w`
    if (obs != nullptr) obs->on_finished(core->name, w, ops->name);
    const auto finished_at =
        me.timing ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    lk.lock();
    // Items queued while this one ran were queued before it finished. If max_active was
    // reached then, they belong on the inactive list (rule 37): link them before this item's
    // slot frees up. (With items already inactive, they go there whenever they are linked.)
    if (core->wl.inactive.empty() && core->wl.nr_active >= core->wl.max_active &&
        (core->in.word.load(std::memory_order_relaxed) & intake_ptr_mask) > intake_closed)
      take_intake_locked(core);
    ++core->stats.finished;
    if (me.timing) {
      core->stats.run_time.add(finished_at - me.started_at);
      me.timing = false;
    }
    ctx.current = nullptr;
    me.current = nullptr;
    me.current_ops = nullptr;
    --core->wl.nr_active;
    if (--core->wl.nr_in_flight == 0) note_work_locked(core);  // busy to idle: let run() return
    --core->wl.nr_color[me.current_color];
    bool wake = (core->wl.nr_in_flight == 0 && core->wt.drain_waiters > 0) ||
                core->wt.item_waiters > 0 ||
                (core->wt.queue_flushers > 0 && core->wl.nr_color[me.current_color] == 0);
    if (!core->wt.flushers.empty()) {
      for (flush_waiter* f : core->wt.flushers) {
        if (f->started && f->slot == &me && !f->done) {
          f->done = true;
          wake = true;
        }
      }
    }
    if (wake) core->wt.idle_cv.notify_all();
    if (!core->wt.async_waiters.empty()) check_async_locked(core, done);
    if (core->lc.orphaned && core->wl.nr_in_flight == 0) finish_orphan_locked(core, lk, done);
  }
}

}  // namespace

void run_worker(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept {
  // Async waiters this worker satisfies complete outside the mutex: before it runs the next
  // item, and in the handler's tail below.
  done_list done;
  std::unique_lock lk(core->mu);
  if (core->reg.gen != gen || !core->reg.live) {  // the queue was destroyed: nothing to do here
    handler_gone_locked(core, lk);
    return;
  }
  ++core->wk.nr_in_handler;
  const bool succeeded = worker_loop(core, gen, slot, lk, done);
  // The tail: what this handler satisfied completes before it stops counting as inside the
  // queue, so destroy() (which waits for nr_in_handler == 0) returns only once nothing of the
  // queue runs any more, on a shared pool as on a joined private one.
  if (!done.empty()) {
    lk.unlock();
    done.complete();
    lk.lock();
  }
  if (--core->wk.nr_in_handler == 0 && core->wt.drain_waiters > 0) core->wt.idle_cv.notify_all();
  // A successor handler inherits this one's count of outstanding handlers.
  if (!succeeded) handler_gone_locked(core, lk);
}

}  // namespace detail

// ---- workqueue -----------------------------------------------------------------------------

workqueue::workqueue(std::string_view name, queue_flags flags, int max_active, unsigned threads)
    : name_(name), flags_(flags), requested_max_active_(max_active) {
  if (threads == 0) {
    // A front-end over the process-wide pool its flags choose (wq/pool.hpp): no thread starts
    // here. Up to max_active workers, since the pool replaces blocked ones (rule 42).
    detail::worker_pool& pool = detail::pool_of_kind(detail::pool_kind_for(flags));
    context_ = &pool;
    init(nullptr, max_max_active, nullptr);
    return;
  }
  std::unique_ptr<boost::asio::thread_pool> pool;
  try {
    pool = std::make_unique<boost::asio::thread_pool>(threads);
  } catch (const boost::system::system_error& e) {
    // Asio reports a failed pthread_create as boost::system::system_error, a runtime_error;
    // the documented contract is std::system_error with the same code (e.g. EAGAIN).
    throw std::system_error(e.code(), "wq::workqueue '" + name_ + "': cannot create its threads");
  }
  pool_ = pool.get();
  context_ = pool.get();
  // The pool executor carries wq's handler allocator, so posting workers allocates nothing
  // in steady state even from threads outside the pool.
  auto ex = boost::asio::require(
      pool->get_executor(), boost::asio::execution::allocator(detail::handler_allocator<void>{}));
  auto box = std::make_unique<detail::executor_box>();
  if (ordered()) {
    box->emplace(boost::asio::make_strand(ex));
  } else {
    box->emplace(ex);
  }
  // On failure the pool is destroyed here (its destructor joins its idle threads).
  init(std::move(box), static_cast<int>(threads), std::move(pool));
}

void workqueue::init(std::unique_ptr<detail::executor_box> box, int concurrency,
                     std::unique_ptr<boost::asio::thread_pool> pool) {
  int ma = clamp_max_active(requested_max_active_);
  if (ordered()) {
    if (requested_max_active_ != 0 && requested_max_active_ != 1)
      detail::report(errc::max_active_clamped, "ordered queue '%s': max_active %d, using 1",
                     name_.c_str(), requested_max_active_);
    ma = 1;
  } else if (requested_max_active_ != 0 && ma != requested_max_active_) {
    detail::report(errc::max_active_clamped, "queue '%s': max_active %d not in [1, %d], using %d",
                   name_.c_str(), requested_max_active_, max_max_active, ma);
  }
  // Every thread that runs a worker claims a record once; having them ready keeps the
  // allocation out of the first item a pool thread runs, which may come in steady state.
  static const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  detail::reserve_run_records(static_cast<std::size_t>(pool ? concurrency : hw));
  detail::core_config cfg;
  cfg.shared_pool = box == nullptr;
  cfg.own_pool = std::move(pool);
  cfg.name = name_;
  cfg.flags = flags_;
  cfg.max_active = ma;
  cfg.slot_cap = ordered() ? 1 : std::max(1, concurrency);
  cfg.max_workers = std::min(ma, cfg.slot_cap);
  // Slots beyond the cores are grown on demand (claim_worker_slot).
  cfg.worker_slots = std::min(cfg.max_workers, hw);
  auto [core, id] = detail::create_core(std::move(cfg), std::move(box));
  core_ = core;
  id_ = id;
  // Safety (relaxed): read by executors of this queue, which got here through this object.
  core_->reg.context.store(context_, std::memory_order_relaxed);
}

workqueue::~workqueue() {
  if (!destroyed_) {
    if (const errc why = blocked_wait(core_); why != errc{}) {
      // It cannot wait here (from one of its own items, or its strand): an idle queue goes at
      // once; one with work left finishes in the background (reported).
      if (!destroy_now_if_idle()) orphan(why);
    } else {
      (void)destroy();  // a refused wait finishes in the background (reported)
    }
  }
  // This object's reference: the core is recycled once no executor copy refers to it either.
  detail::release_core(core_);
}

queue_status workqueue::queue(work& item, const location& where) noexcept {
  const work_ops* ops = detail::work_access::ops(item).load(std::memory_order_relaxed);
  if (ops == nullptr) {
    detail::report(errc::no_work_function,
                   "queue_work on queue '%s' refused: the item has no work function yet (build it "
                   "with wq::fn_ops<&f>, or queue it with the typed enqueue<&T::m>(pointer), "
                   "which binds its run)",
                   name_.c_str());
    return queue_status::unbound;
  }
  if (ops->typed_only) {
    // Its run would take back a reference nobody stored (see work_ops::typed_only).
    detail::report(errc::untyped_on_owning_item,
                   "queue_work of %s on queue '%s' refused: the item was queued with an owning "
                   "pointer; use enqueue<&T::m>(pointer)",
                   ops->name, name_.c_str());
    return queue_status::rejected;
  }
  switch (detail::claim_pending(item)) {
    case detail::claim_result::already_pending:
      note_coalesced();
      return queue_status::already_pending;
    case detail::claim_result::disabled: return queue_status::disabled;
    case detail::claim_result::claimed: break;
  }
  // A destroyed queue's core refuses by its id (stale generation) or its dying flag.
  const queue_status st = detail::link_claimed(core_, id_, item, &where);
  if (st != queue_status::queued) detail::unclaim_pending(item);
  return st;
}

int workqueue::max_active() const noexcept {
  std::lock_guard lk(core_->mu);
  return core_->id() == id_ ? core_->wl.max_active : 0;
}

int workqueue::set_max_active(int max_active) noexcept {
  std::unique_lock lk(core_->mu);
  if (core_->id() != id_) return 0;
  if (ordered()) {
    detail::report(errc::set_max_active_on_ordered, "queue '%s': refused (rule 38)", name_.c_str());
    return core_->wl.max_active;
  }
  const int ma = clamp_max_active(max_active);
  if (max_active != 0 && ma != max_active)
    detail::report(errc::max_active_clamped, "queue '%s': max_active %d not in [1, %d], using %d",
                   name_.c_str(), max_active, max_max_active, ma);
  core_->wl.max_active = ma;
  core_->wk.max_workers = std::max(1, std::min(ma, core_->wk.slot_cap));
  detail::update_saturated(core_);
  detail::start_workers_locked(core_);
  return ma;
}

namespace {
// A queue-wide wait that cannot finish: from one of the queue's own items (§5.2), or from a
// handler of the strand the queue runs on (§5.3: its items need that strand).
std::error_code refuse_wait(errc why, const char* op, const std::string& name) noexcept {
  if (why == errc::wait_on_own_queue) {
    detail::report(why,
                   "%s of queue '%s' from one of its own items would wait for itself: "
                   "refused",
                   op, name.c_str());
  } else {
    detail::report(why,
                   "%s of queue '%s' from a handler of the strand it runs on would "
                   "deadlock: refused",
                   op, name.c_str());
  }
  return make_error_code(why);
}
}  // namespace

errc workqueue::blocked_wait(const detail::queue_core* core) noexcept {
  if (detail::this_worker().core == core) return errc::wait_on_own_queue;
  const detail::executor_box* ex = core->wk.executor.get();
  if (ex != nullptr && ex->held_here != nullptr && ex->held_here(ex->storage))
    return errc::wait_needs_this_worker;
  return errc{};
}

std::error_code workqueue::flush() {
  detail::queue_core* core = core_;
  if (const errc why = blocked_wait(core); why != errc{}) return refuse_wait(why, "flush", name_);
  std::unique_lock lk(core->mu);
  if (core->id() != id_) return {};
  detail::start_workers_locked(core);  // items on the intake were queued before this call
  const std::uint64_t e0 = core->wl.flush_epoch;
  ++core->wt.queue_flushers;
  const detail::wait_target t{detail::wait_target::kind::queue, core, nullptr};
  // Items queued from now on must get a color no older instance still holds: the next color
  // was last used 16 epochs ago; wait for those (older, so waited for anyway) to drain first.
  errc why = detail::wait_until(core, lk, t, "flush", [&] {
    return core->wl.flush_epoch != e0 || core->wl.nr_color[(e0 + 1) % detail::nr_colors] == 0;
  });
  if (why == errc{}) {
    if (core->wl.flush_epoch == e0) core->wl.flush_epoch = e0 + 1;
    // Wait for every instance queued with an epoch <= e0 (the snapshot at the call, rule 26).
    // In-flight epochs always lie within the last nr_colors epochs.
    why = detail::wait_until(core, lk, t, "flush",
                             [&] { return detail::older_colors_drained(core, e0); });
  }
  --core->wt.queue_flushers;
  return why == errc{} ? std::error_code{} : make_error_code(why);
}

void workqueue::pause() noexcept {
  std::lock_guard lk(core_->mu);
  if (core_->id() != id_) return;
  core_->lc.paused = true;
  core_->wt.idle_cv.notify_all();  // blocked waits that need queued items refuse now
}

void workqueue::resume() noexcept {
  std::lock_guard lk(core_->mu);
  if (core_->id() == id_) detail::unpause_locked(core_);
}

std::error_code workqueue::drain() {
  detail::queue_core* core = core_;
  if (const errc why = blocked_wait(core); why != errc{}) return refuse_wait(why, "drain", name_);
  std::unique_lock lk(core->mu);
  if (core->id() != id_) return {};
  detail::unpause_locked(core);  // a paused queue could never drain
  ++core->lc.draining;
  detail::close_intake_locked(core);  // rule 17: from now on only chained queueing, locked
  detail::start_workers_locked(core);
  ++core->wt.drain_waiters;
  const errc why = detail::wait_until(core, lk, {detail::wait_target::kind::queue, core, nullptr},
                                      "drain", [core] { return core->wl.nr_in_flight == 0; });
  --core->wt.drain_waiters;
  detail::end_drain_locked(core);  // a refused drain stops draining too
  return why == errc{} ? std::error_code{} : make_error_code(why);
}

namespace detail {

std::vector<work*> begin_destroy_locked(queue_core* core) {
  core->lc.dying = true;
  close_intake_locked(core);
  unpause_locked(core);  // a paused queue could never drain
  start_workers_locked(core);
  // Armed delayed items targeting this queue would fire into a dead queue: cancel them now
  // (rule 50b made safe); the caller releases their references outside the lock.
  std::vector<work*> dropped;
  dropped.reserve(core->tm.armed.size());
  while (!core->tm.armed.empty()) {
    work& w = core->tm.armed.front();
    core->tm.armed.pop_front();
    auto& st = work_access::state(w);
    const state_t old = st.fetch_and(~st_armed, std::memory_order_acq_rel);
    if ((old & st_in_flight) != 0) {
      // Safety: only delayed items are ever on the armed list. Timer calls are serialised by
      // the target queue's mutex, held here, and by wait_starting (timer discipline,
      // delayed_work.cpp).
      auto& dw = static_cast<delayed_work&>(w);
      wait_timer_idle(dw);
      work_access::timer(dw).cancel();
    }
    dropped.push_back(&w);
  }
  core->stats.cancelled += dropped.size();
  // Items that fired during an earlier drain run as part of this one.
  queue_deferred_locked(core);
  note_work_locked(core);
  return dropped;
}

void finish_orphan_locked(queue_core* core, std::unique_lock<std::mutex>& lk,
                          done_list& done) noexcept {
  if (core->lc.orphan_busy) return;  // another thread is completing its async_destroy handlers
  if (!core->lc.destroy_notified) {
    core->lc.destroy_notified = true;
    // async_destroy completes now that nothing is in flight. A handler bound to the queue's own
    // executor (a coroutine running on it) cannot run after it retires: it runs as the queue's
    // last item, submitted as chained work while the queue still exists; the queue retires
    // once that has run.
    done_list destroyers;
    take_destroy_waiters_locked(core, destroyers);
    if (!destroyers.empty()) {
      core->lc.orphan_busy = true;
      lk.unlock();
      queue_core* const outer = tl_chained_for;
      tl_chained_for = core;
      destroyers.complete();
      tl_chained_for = outer;
      lk.lock();
      core->lc.orphan_busy = false;
      if (core->wl.nr_in_flight != 0) return;  // the last of them finishes the queue
    }
  }
  core->lc.orphaned = false;
  boost::asio::thread_pool* pool = core->reg.own_pool.get();
  if (pool == nullptr) {
    retire_core(core, lk, done);
    return;
  }
  // The joiner's reference keeps the core (and so the pool it owns) until the join is done.
  acquire_core(core);
  retire_core(core, lk, done);
  // This thread may be one of the pool's: another thread must join it.
  try {
    std::thread([core, pool] {
      pool->join();
      release_core(core);  // frees the pool if nothing else refers to the queue
    }).detach();
  } catch (...) {
    // No thread for the join: leak the pool (its idle threads) and the core rather than join
    // from here.
    report(errc::worker_post_failed,
           "queue '%s': could not start a thread to join its pool; "
           "the pool is leaked",
           core->name.c_str());
  }
}

}  // namespace detail

std::size_t workqueue::cancel_armed_for_destroy() {
  std::vector<work*> dropped;
  {
    std::unique_lock lk(core_->mu);
    dropped = detail::begin_destroy_locked(core_);
  }
  return release_cancelled(std::move(dropped));
}

std::size_t workqueue::release_cancelled(std::vector<work*> dropped) {
  for (work* w : dropped) {
    // drop() reclaims the queue's reference, clears PENDING, then releases it.
    detail::work_access::ops(*w).load(std::memory_order_relaxed)->drop(w);
  }
  if (!dropped.empty())
    detail::report(errc::armed_items_cancelled, "queue '%s': %zu armed item(s) cancelled",
                   name_.c_str(), dropped.size());
  return dropped.size();
}

std::error_code workqueue::destroy() {
  detail::queue_core* core = core_;
  if (destroyed_) return wait_destroyed();
  if (const errc why = blocked_wait(core); why != errc{}) {
    // From one of its own items or a handler of its strand it cannot wait; if nothing but the
    // caller is in flight there is nothing to wait for.
    if (destroy_now_if_idle()) return {};
    return refuse_wait(why, "destroy", name_);
  }
  destroyed_ = true;
  {
    detail::done_list done;
    std::unique_lock lk(core->mu);
    std::vector<work*> dropped = detail::begin_destroy_locked(core);
    if (dropped.empty() && core->wl.nr_in_flight == 0 && core->wk.nr_in_handler == 0 &&
        pool_ == nullptr) {
      // Idle (a short-lived per-session queue, typically): nothing to cancel, wait for or join.
      keep_final_stats();
      detail::retire_core(core, lk, done);
      return {};
    }
    lk.unlock();
    cancelled_on_destroy_ += release_cancelled(std::move(dropped));
  }
  {
    detail::done_list done;
    detail::work_list gone;
    std::unique_lock lk(core->mu);
    ++core->wt.drain_waiters;
    const errc why = detail::wait_until(
        core, lk, {detail::wait_target::kind::queue, core, nullptr}, "destroy",
        [core] { return core->wl.nr_in_flight == 0 && core->wk.nr_in_handler == 0; },
        /*report=*/false);
    --core->wt.drain_waiters;
    // A shared pool is never stopped: its workers will run the items once it gets going again,
    // so they are not dropped; the queue finishes in the background (below).
    if ((why == errc::executor_stopped || why == errc::executor_not_running) &&
        core->wk.pool == nullptr) {
      // Its executor does not run its workers (stopped, or nobody runs it): as Asio destroys
      // the handlers of a context shut down, the queued items are dropped unrun and their
      // references released (a notice, not a misuse: stopping the io_context and then
      // destroying what used it is the usual shutdown); then nothing of the queue runs.
      detail::abandon_locked(core, gone, done);
      const std::size_t n = gone.size();
      lk.unlock();
      while (!gone.empty()) {
        work& w = gone.front();
        gone.pop_front();
        detail::work_access::ops(w).load(std::memory_order_relaxed)->drop(&w);
      }
      detail::report(errc::items_dropped,
                     "destroy of queue '%s': %s: %zu item(s) dropped unrun, their references "
                     "released",
                     name_.c_str(),
                     why == errc::executor_stopped
                         ? "its executor's io_context is stopped"
                         : "no worker posted to its executor started within the wait limit",
                     n);
      lk.lock();
      if (core->wl.nr_in_flight != 0) {
        core->lc.orphaned = true;  // items running elsewhere: the last one retires it
        return make_error_code(why);
      }
      detail::retire_core(core, lk, done);
      return make_error_code(why);
    }
    if (why != errc{}) {
      // Refused (a cycle of waiting items, or a shared pool that made no progress for the wait
      // limit): the queue finishes in the background; the last of its items to finish retires
      // it (and has an owned pool joined).
      detail::report_refused_wait(why, "destroy", core);
      core->lc.orphaned = true;
      return make_error_code(why);
    }
  }
  if (pool_ != nullptr) pool_->join();  // freed with the core, once nothing refers to it
  {
    detail::done_list done;
    std::unique_lock lk(core->mu);
    keep_final_stats();
    detail::retire_core(core, lk, done);
  }
  return {};
}

std::error_code workqueue::wait_destroyed() {
  // Destroyed already; an async_destroy (or a refused destroy) may still be finishing it.
  detail::queue_core* core = core_;
  {
    std::unique_lock lk(core->mu);
    if (core->id() != id_) return {};
  }
  if (const errc why = blocked_wait(core); why != errc{}) return refuse_wait(why, "destroy", name_);
  std::unique_lock lk(core->mu);
  const errc why = detail::wait_until(core, lk, {detail::wait_target::kind::queue, core, nullptr},
                                      "destroy", [this, core] { return core->id() != id_; });
  return why == errc{} ? std::error_code{} : make_error_code(why);
}

bool workqueue::destroy_now_if_idle() noexcept {
  detail::queue_core* core = core_;
  std::vector<work*> dropped;
  {
    std::unique_lock lk(core->mu);
    if (core->id() != id_) return false;
    // Everything on the intake counts; then idle means nothing in flight but the caller's own
    // item (if it is one), and nothing deferred by a drain.
    detail::close_intake_locked(core);
    const std::uint64_t own = detail::this_worker().core == core ? 1 : 0;
    if (core->wl.nr_in_flight > own || !core->lc.deferred.empty()) {
      detail::open_intake_locked(core);
      return false;
    }
    try {
      dropped = detail::begin_destroy_locked(core);
    } catch (...) {
      // Out of memory listing its armed items: destroy it the slower way (orphan).
      detail::open_intake_locked(core);
      return false;
    }
    keep_final_stats();
  }
  destroyed_ = true;
  for (work* w : dropped) detail::work_access::ops(*w).load(std::memory_order_relaxed)->drop(w);
  if (!dropped.empty()) {
    detail::report(errc::armed_items_cancelled, "queue '%s': %zu armed item(s) cancelled",
                   name_.c_str(), dropped.size());
  }
  cancelled_on_destroy_ += dropped.size();
  detail::done_list done;
  std::unique_lock lk(core->mu);
  core->lc.orphaned = true;
  // Retires it now; an owned pool is joined by a helper thread (this may be one of its).
  detail::finish_orphan_locked(core, lk, done);
  return true;
}

void workqueue::orphan(errc why) noexcept {
  destroyed_ = true;
  detail::report(why,
                 "queue '%s' destroyed %s: it cannot wait there, so it refuses outside queueing "
                 "now and finishes in the background once its items and their chains have run",
                 name_.c_str(),
                 why == errc::wait_on_own_queue ? "from one of its own items"
                                                : "from a handler of the strand it runs on");
  try {
    (void)cancel_armed_for_destroy();
  } catch (...) {
    // Out of memory for the list of armed items: they stay armed and, when they fire, are
    // queued as chained work of the dying queue (which still runs them).
  }
  detail::done_list done;
  std::unique_lock lk(core_->mu);
  core_->lc.orphaned = true;
  // Otherwise the worker that runs the last item in flight finishes it (from an own item, that
  // item itself still counts in nr_in_flight).
  if (core_->wl.nr_in_flight == 0) detail::finish_orphan_locked(core_, lk, done);
}

void workqueue::begin_async_destroy(detail::async_waiter* w) noexcept {
  if (destroyed_) {
    w->complete(w);  // destroyed already: the initiator's count was the last (completes now)
    return;
  }
  destroyed_ = true;
  try {
    cancelled_on_destroy_ += cancel_armed_for_destroy();
  } catch (...) {
    // Out of memory for the list of armed items: they stay armed and, when they fire, are
    // queued as chained work of the dying queue (which still runs them).
  }
  detail::done_list done;
  std::unique_lock lk(core_->mu);
  core_->lc.orphaned = true;
  // Out of memory registering: w completes at once; the queue still finishes in the background.
  if (!detail::register_async_destroy_locked(core_, w)) {
    lk.unlock();
    w->complete(w);  // the initiator's count, the last: completes now
    return;
  }
  // The initiator's count goes now, so that the registration's completion (by the thread that
  // finishes the queue, possibly just below) is the last one and posts the handler while a
  // handler bound to the queue itself is still accepted. Safety (acq_rel, under mu): the
  // registration holds a count too, so this cannot reach zero.
  w->remaining.fetch_sub(1, std::memory_order_acq_rel);
  if (core_->wl.nr_in_flight == 0) detail::finish_orphan_locked(core_, lk, done);
}

work* current_work() noexcept { return detail::this_worker().current; }

queue_stats workqueue::stats() const {
  std::lock_guard lk(core_->mu);
  if (core_->id() != id_) {
    // Destroyed: the snapshot destroy() took when the queue had drained.
    if (final_stats_) return *final_stats_;
    queue_stats out;
    out.name = name_;
    out.sample_every = detail::sample_every;
    return out;
  }
  detail::start_workers_locked(core_);  // count items on the intake as queued
  return stats_locked();
}

void workqueue::keep_final_stats() noexcept {
  const detail::queue_counters& s = core_->stats;
  // A queue that never saw an item has all-zero statistics: stats() builds them from the name
  // (no allocation, which keeps a short-lived per-session queue as cheap as a strand).
  if (s.queued == 0 && s.cancelled == 0 &&
      core_->stats.coalesced.load(std::memory_order_relaxed) == 0)
    return;
  try {
    final_stats_ = std::make_unique<queue_stats>(stats_locked());
  } catch (...) {
    // Out of memory: stats() of the destroyed queue will be empty.
  }
}

queue_stats workqueue::stats_locked() const {
  queue_stats out;
  out.name = name_;
  out.sample_every = detail::sample_every;
  const detail::queue_counters& s = core_->stats;
  out.queued = s.queued;
  out.coalesced = core_->stats.coalesced.load(std::memory_order_relaxed);
  out.started = s.started;
  out.finished = s.finished;
  out.cancelled = s.cancelled;
  out.in_flight = core_->wl.nr_in_flight;
  for (const auto& slot : core_->wk.slots) out.running += slot.current != nullptr ? 1 : 0;
  out.armed = core_->tm.armed.size();
  out.max_depth = s.max_depth;
  out.queue_latency = s.queue_latency;
  out.run_time = s.run_time;
  return out;
}

std::string workqueue::dump(std::size_t limit) const {
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  std::lock_guard lk(core_->mu);
  if (core_->id() != id_) {
    add("queue '%s': destroyed\n", name_.c_str());
    return out;
  }
  detail::start_workers_locked(core_);  // show items on the intake as waiting
  const detail::queue_core& c = *core_;
  add("queue '%s': max_active %d, in flight %llu, waiting %zu (+%zu inactive), armed %zu%s%s\n",
      name_.c_str(), c.wl.max_active, static_cast<unsigned long long>(c.wl.nr_in_flight),
      c.wl.ready.size(), c.wl.inactive.size(), c.tm.armed.size(), c.lc.paused ? ", paused" : "",
      c.lc.draining > 0 ? ", draining" : "");
  if (c.wk.pool != nullptr) {
    const pool_state ps = c.wk.pool->state();
    add("  on pool %s: %u workers (%u running, %u idle, %u blocked, %u cpu-intensive), %zu "
        "waiting\n",
        to_string(ps.kind), ps.threads, ps.running, ps.idle, ps.blocked, ps.cpu_intensive,
        ps.waiting);
  } else if (pool_ != nullptr) {
    add("%s", "  on its own thread pool\n");
  } else {
    add("%s", "  on the application's executor\n");
  }
  for (std::size_t i = 0; i < c.wk.slots.size(); ++i) {
    const detail::worker_slot& s = c.wk.slots[i];
    if (s.current == nullptr) continue;
    add("  running  slot %zu: %s (%zu more instance(s) queued behind it, rule 10)\n", i,
        s.current_ops != nullptr ? s.current_ops->name : "?", s.scheduled.size());
  }
  auto list = [&](const char* what, const detail::work_list& l) {
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
  const auto virt = detail::virtual_now.load(std::memory_order_relaxed);
  const auto now = virt != detail::no_virtual_time ? virt : std::chrono::steady_clock::now();
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
  return out;
}

void workqueue::set_observer(observer* obs) noexcept {
  std::lock_guard lk(core_->mu);
  if (core_->id() == id_) core_->obs.store(obs, std::memory_order_relaxed);
}

void workqueue::note_coalesced() const noexcept {
  core_->stats.coalesced.fetch_add(1, std::memory_order_relaxed);
}

queue_executor workqueue::get_executor() const noexcept { return queue_executor(core_, id_, true); }

}  // namespace wq
