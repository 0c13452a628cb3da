// SPDX-License-Identifier: BSL-1.0
// The engine's entry points (wq/detail/engine.hpp): the facade through which the header-only
// layer, the executors and Asio's timer completions enter the queue engine. Each one locks the
// queue and composes the mechanisms below it (src/engine/README.md); no mechanism calls back up
// into this file.
#include <wq/detail/engine.hpp>

#include "engine.hpp"

#include <chrono>
#include <cstddef>
#include <mutex>
#include <thread>
#include <type_traits>

#include <wq/detail/core.hpp>
#include <wq/diagnostics.hpp>
#include <wq/jiffies.hpp>

#include "../trace.hpp"
#include "../worker_pool.hpp"
#include "backoff.hpp"
#include "counters.hpp"
#include "descriptions.hpp"
#include "intake.hpp"
#include "lifecycle.hpp"
#include "queueing.hpp"
#include "registry.hpp"
#include "run_records.hpp"
#include "timers.hpp"
#include "waiters.hpp"
#include "workers.hpp"

namespace wq::detail {

// ---- references and creation ------------------------------------------------------------

void acquire_core(queue_core* core) noexcept { add_ref(core); }

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

void release_core(queue_core* core) noexcept { drop_ref(core); }

std::size_t cores_in_memory() noexcept { return registry_cores_in_memory(); }

std::pair<queue_core*, std::uint64_t> create_core(core_config cfg,
                                                  std::unique_ptr<executor_box> ex) {
  worker_pool* pool =
      cfg.shared_pool ? &pool_of_kind(pool_kind_for(cfg.flags, cfg.ordered)) : nullptr;
  queue_core* core = allocate_core();
  std::unique_lock lk(core->mu);
  // A reused core (a freed queue's, kept whole in its slab) keeps the slots it grew (all
  // idle once it retired): reused, not reallocated. Only a new core allocates its first ones;
  // out of memory gives it back.
  try {
    if (core->wk.slots.size() < static_cast<std::size_t>(cfg.worker_slots))
      core->wk.slots.resize(static_cast<std::size_t>(cfg.worker_slots), core);
  } catch (...) {
    lk.unlock();
    free_unused_core(core);
    throw;
  }
  for (worker_slot& sl : core->wk.slots) {
    sl.run = nullptr;  // (no handler of the retired queue runs: it was recycled)
    sl.runs = 0;
    sl.long_items = false;
    if (sl.described) clear_description(&sl);  // cannot be: finish_one dropped it
    sl.described = false;
    sl.active = false;
  }
  // (Its generation, new for its index, was set by allocate_core.)
  core->reg.live = true;
  core->wk.executor_dead = false;
  core->lc.orphaned = false;
  core->lc.destroy_notified = false;
  core->lc.orphan_busy = false;
  core->lc.items_dropped = false;
  core->reg.recycled = false;
  core->reg.refs.store(1, std::memory_order_relaxed);  // the caller's; published by the mutex
  core->reg.own_pool = std::move(cfg.own_pool);
  core->lc.dying = false;
  core->lc.draining = 0;
  core->name = std::move(cfg.name);
  core->flags = cfg.flags;
  core->wl.max_active = cfg.max_active;
  core->wl.nr_active = 0;
  // Safety (static_cast): at most max_active, which is clamped to max_max_active (2048).
  core->wk.max_workers = static_cast<std::uint16_t>(cfg.max_workers);
  core->wk.slot_cap = cfg.slot_cap;
  core->wk.pool = pool;
  core->wk.nr_workers = 0;
  core->wk.nr_unstarted = 0;
  core->wl.nr_in_flight = 0;
  core->wl.colors.reset();
  core->lc.paused = false;
  // Statistics start at zero; a reused core whose queue never saw an item has nothing to
  // clear (zeroing them is most of a short-lived queue's creation cost).
  // (A sample left by the last queue must go too: its histograms were freed with it.)
  if (core->stats.queued != 0 || core->stats.cancelled != 0 || core->stats.started != 0 ||
      core->stats.max_depth != 0 || core->stats.peak_workers != 0 || core->stats.tick != 0 ||
      core->stats.nr_samples != 0)
    core->stats.reset();
  core->stats.coalesced.store(0, std::memory_order_relaxed);
  core->obs.store(nullptr, std::memory_order_relaxed);
  core->wk.executor = std::move(ex);
  set_pool_entry(&run_pool_task);
  core->in.saturated.store(false, std::memory_order_relaxed);
  core->wk.tracked.store(0, std::memory_order_relaxed);
  retag_intake(core, false);
  return {core, core->id()};
}

// ---- queueing and arming --------------------------------------------------------------------

namespace {

// link_claimed and link_submitted: `hold_while_draining` is link_submitted's difference;
// `as_chained` accepts the item while the queue drains, as its own chained work is
// (claim_and_link: a queueing call coalesced into this claim, which must not be given up).
queue_status link_claimed_or_held(queue_core* core, std::uint64_t id, work& w,
                                  const location* where, bool count, bool hold_while_draining,
                                  bool as_chained) noexcept {
  push_result pushed = push_result::not_pushed;
  if (count && !as_chained) {  // as_chained: the intake was closed a moment ago; lock
    pushed = try_push(core, id, w, where);
    if (pushed == push_result::pushed) return queue_status::queued;
    if (pushed == push_result::pushed_needs_worker) {
      // On the intake, and no worker saw it (the store-load pair in try_push): start one,
      // posted after mu is released so that the worker it wakes does not sleep on mu.
      int slot = -1;
      std::uint32_t gen = 0;
      {
        std::lock_guard lk(core->mu);
        if (core->id() == id) {
          slot = start_workers_deferred_locked(core);
          gen = core->reg.gen;
        }
      }
      if (slot >= 0) post_claimed(core, slot, gen);
      return queue_status::queued;
    }
  }
  std::unique_lock lk(core->mu);
  if (core->id() != id || !core->reg.live) return queue_status::rejected;
  if (core->wk.executor_dead) return queue_status::rejected;  // nothing would ever run it
  // Its async_destroy has completed (rule 50: "accepts nothing more"): only that completion's
  // own handlers, submitted by the thread completing them (finish_orphan_locked), still run, as
  // the queue's last items; what they queue in turn is refused like any later queueing.
  if (core->lc.destroy_notified && !(core->lc.orphan_busy && chained_for() == core))
    return queue_status::rejected;
  bool hold = false;  // queued when the drain ends (link_submitted)
  // as_chained is honoured while the queue drains, not once it dies: a destroy that has seen
  // the queue quiescent joins and retires it without looking again (the queue's own workers
  // cover that case: wait_transit_as_worker).
  if ((core->lc.dying || (core->lc.draining > 0 && !as_chained)) && this_worker().core != core &&
      chained_for() != core) {
    if (!hold_while_draining || core->lc.dying)
      return queue_status::rejected;  // rule 17, reported instead of silently dropped
    hold = true;
  }
  if (count) {
    ++core->stats.queued;
    observer* o = core->obs.load(std::memory_order_relaxed);
    if (o != nullptr && pushed != push_result::closed)
      o->on_queued(core->name, w, false, where != nullptr ? *where : location{});
  } else {
    note_moved_back_locked(core->stats);
  }
  if (pushed != push_result::closed) WQ_TRACE_QUEUE_WORK(&w, trace_name(w), core->name.c_str(), id);
  if (hold) {
    hold_deferred_locked(core, w, id);
    return queue_status::queued;
  }
  // Linked now; a worker it needs is posted once mu is released (start_workers_deferred_locked),
  // so that the thread it wakes does not sleep on mu.
  link_locked(core, w);
  const int slot = start_workers_deferred_locked(core);
  const std::uint32_t gen = core->reg.gen;
  lk.unlock();
  if (slot >= 0) post_claimed(core, slot, gen);
  return queue_status::queued;
}

}  // namespace

queue_status link_claimed(queue_core* core, std::uint64_t id, work& w, const location* where,
                          bool count, bool as_chained) noexcept {
  return link_claimed_or_held(core, id, w, where, count, false, as_chained);
}

namespace {
// wait_transit_as_worker's bound: 64 yields, then 20 us sleeps (backoff), about a second.
constexpr unsigned transit_wait_spins = 64 + 50'000;
}  // namespace

bool wait_transit_as_worker(work& w) noexcept {
  queue_core* own = this_worker().core;
  // Only a worker running an item waits: its run keeps its queue from draining meanwhile, so a
  // claim its queue refuses under it cannot be mistaken for an instance that will run.
  if (own == nullptr || this_worker().current == nullptr) return false;
  const auto& st = work_access::state(w);
  for (unsigned spins = 0;; ++spins) {
    // Safety (acquire): a claim given up here is claimed again by the caller (acq_rel), and a
    // settled instance's state was published by its linking; this load only decides which.
    const state_t s = st.load(std::memory_order_acquire);
    if ((s & st_pending) == 0) return true;
    if ((s & (st_queued | st_armed)) != 0) return false;
    // A transit lasts microseconds; one that outlasts about a second of backing off is this
    // thread's own (an on_queued hook queueing its item again, which observer.hpp forbids):
    // answer already_pending, as before this wait existed, rather than hang.
    if (spins > transit_wait_spins) return false;
    if ((s & st_intake) != 0) {
      // Safety (static_cast): the index bits of the queue id.
      if ((static_cast<std::uint32_t>(queue_id_of(s)) & core_index_mask) != own->reg.index)
        return false;  // on another queue's intake: settled there
      // On this queue's intake, or a push to it on its way (which fails if a drain or destroy
      // closed it meanwhile): moving the intake to the lists tells the two apart.
      const std::lock_guard lk(own->mu);
      start_workers_locked(own);
    }
    backoff(spins);
  }
}

queue_status link_submitted(queue_core* core, std::uint64_t id, work& w) noexcept {
  return link_claimed_or_held(core, id, w, nullptr, true, true, false);
}

namespace {

// The completions of items' timer waits (timers.hpp hands them to Asio, and back here in
// batches): queues each item whose deadline has come, re-arms lazily one whose deadline moved
// later, or lets go of the timer.
void timer_fired(const fired_wait* waits, std::size_t n) noexcept;

// Returns: the real deadline `span` from now, rounded up to the next multiple of 1024 ns (rule
// 53; a mask, not a division, since mod_delayed_work pays it on every move): items armed
// within one such microsecond share their deadline, so Asio's timer heap releases them
// together (10^5 items due at one instant fired at 930-1280 ns each with distinct deadlines,
// 250-270 with shared ones). Requires: span < max_delay (the sum cannot overflow).
clock_point real_deadline(std::chrono::steady_clock::duration span) noexcept {
  static_assert(std::is_same_v<std::chrono::steady_clock::duration, std::chrono::nanoseconds>);
  constexpr std::int64_t grain = 1024;
  const std::int64_t t = (std::chrono::steady_clock::now() + span).time_since_epoch().count();
  return clock_point(std::chrono::nanoseconds((t + grain - 1) & ~(grain - 1)));
}

queue_status arm_claimed(queue_core* core, std::uint64_t id, delayed_work& dw,
                         std::chrono::nanoseconds delay, const location* where, bool count,
                         bool as_chained) noexcept {
  const auto span = std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay);
  // A delay of max_delay (the "infinite" timeout, jiffies.hpp) has no deadline: neither its
  // timer nor a test clock ever fires it; mod_delayed_work, flush, cancel or destroy end it.
  const bool never = delay >= max_delay;
  auto deadline = never ? clock_point::max() : real_deadline(span);
  std::unique_lock lk(core->mu);
  if (core->id() != id || !core->reg.live) return queue_status::rejected;
  // A dying queue refuses even chained arming: a timer cannot be allowed to fire into it.
  if (core->lc.dying) return queue_status::rejected;
  if (core->lc.draining > 0 && !as_chained && this_worker().core != core)
    return queue_status::rejected;
  // Safety (relaxed, under the mutex): see virtual_time.hpp. The test clock keeps virtual time
  // at most max_delay before the clock's end, so the sum cannot overflow.
  const clock_point virtual_time = virtual_now.load(std::memory_order_relaxed);
  const bool real = virtual_time == no_virtual_time;
  if (!real && !never) [[unlikely]]
    deadline = virtual_time + span;
  const bool start = arm_locked(core, id, dw, deadline, real);
  // Under virtual time nothing more: the test clock queues the item (an outstanding real wait,
  // if any, only finds that virtual time has not reached the deadline).
  if (count) {
    ++core->stats.queued;
    if (observer* o = core->obs.load(std::memory_order_relaxed))
      o->on_queued(core->name, dw, true, where != nullptr ? *where : location{});
  } else {
    note_moved_back_locked(core->stats);
  }
  if (start) {
    lk.unlock();
    // Safety: from here the item may be cancelled, re-armed or destroyed by other threads, but
    // each of them waits for wait_starting to clear before touching the timer (the destructor
    // before the timer goes), so `dw` is alive and its timer ours until the store below.
    start_wait(dw, deadline, &timer_fired);
    // Safety (release): publishes the timer calls above to the next thread that touches it.
    work_access::wait_starting(dw).store(false, std::memory_order_release);
  }
  return queue_status::queued;
}

}  // namespace

namespace {

// Whether the state `s` is armed for a real wait on queue `id`, neither virtual nor disabled:
// what move_armed may move.
bool armed_real_on(state_t s, std::uint64_t id) noexcept {
  constexpr state_t shape = st_armed | st_in_flight | st_virtual;
  return (s & shape) == (st_armed | st_in_flight) && queue_id_of(s) == id && disable_count(s) == 0;
}

}  // namespace

bool move_armed(queue_core* core, std::uint64_t id, delayed_work& dw,
                std::chrono::nanoseconds delay) noexcept {
  auto& st = work_access::state(dw);
  // Safety (acquire): a hint that spares the clock read; checked again below.
  if (!armed_real_on(st.load(std::memory_order_acquire), id) || delay.count() <= 0 ||
      delay >= max_delay)
    return false;
  // Safety (relaxed): a test clock installed meanwhile finds a real deadline, as it does for an
  // item armed just before it (virtual_time.hpp).
  if (virtual_now.load(std::memory_order_relaxed) != no_virtual_time) return false;
  const auto deadline =
      real_deadline(std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay));
  auto& at = work_access::deadline(dw);
  clock_point old = at.load(std::memory_order_relaxed);
  // A later deadline (the debounce case) moves without the mutex: the outstanding wait
  // completes by the old one and its completion re-arms lazily. The CAS arbitrates with an
  // expiry deciding on the old deadline (commit_expiry): if it came first the CAS meets its
  // mark and the locked path below finds the item no longer armed.
  while (!is_expired_mark(old) && deadline >= old) {
    // Safety (acq_rel): ordered with commit_expiry's CAS on the same word (timers.hpp).
    if (!at.compare_exchange_weak(old, deadline, std::memory_order_acq_rel,
                                  std::memory_order_relaxed))
      continue;
    // Still armed here, and the queue still accepts queueing from anyone (a drain or destroy
    // closes the intake; a retired core's intake carries another generation). Otherwise the
    // general path decides; the deadline written here can only have postponed an expiry, and
    // the general path arms or queues the item afresh. Safety (acquire): a cancel, drain or
    // destroy that happened before this call is seen.
    const std::uintptr_t word = core->in.word.load(std::memory_order_acquire);
    return armed_real_on(st.load(std::memory_order_acquire), id) &&
           (word & ~intake_ptr_mask) ==
               intake_tag(static_cast<std::uint32_t>(id >> core_index_bits)) &&
           (word & intake_ptr_mask) != intake_closed;
  }
  std::lock_guard lk(core->mu);
  if (core->id() != id || !core->reg.live || core->lc.dying) return false;
  if (core->lc.draining > 0 && this_worker().core != core) return false;
  // Safety (relaxed, under the mutex): see virtual_time.hpp.
  if (virtual_now.load(std::memory_order_relaxed) != no_virtual_time) return false;
  // ARMED changes only under this mutex (arm_locked, disarm_locked), so what is read here holds
  // until the unlock; so does the deadline, but for lock-free moves later (above).
  if (!armed_real_on(st.load(std::memory_order_relaxed), id)) return false;
  forget_sample(core->stats, &dw);  // as the general path's unlink does
  // Safety (relaxed): a lock-free move racing this store is ordered before it.
  old = at.exchange(deadline, std::memory_order_relaxed);
  if (deadline >= old) return true;  // moved later meanwhile: nothing more to do
  // An earlier deadline cuts the wait short as arm_locked does, once whoever started the wait
  // has let go of the timer. Safety: timer calls are serialised by this queue's mutex while
  // ARMED names this queue.
  wait_timer_idle(dw);
  if (work_access::timer(dw).expiry() > deadline) work_access::timer(dw).cancel();
  return true;
}

queue_status link_or_arm(queue_core* core, std::uint64_t id, work& w,
                         std::chrono::nanoseconds delay, const location* where, bool count,
                         bool as_chained) noexcept {
  if (delay.count() == 0) return link_claimed(core, id, w, where, count, as_chained);
  // Safety: the callers pass a delayed_work whenever the delay is not zero (their types say so).
  return arm_claimed(core, id, static_cast<delayed_work&>(w), delay, where, count, as_chained);
}

namespace {

// The queue whose mutex timer_fired holds while it goes through a batch of completions, and
// the worker handlers it claimed there (start_workers_deferred_locked), posted once it lets the
// mutex go, so that the threads they wake do not block on it. Holds a pin on that core while
// it holds the mutex or has posts pending (post_claimed uses the core; the posting count keeps
// its executor). On the timer thread's stack only.
class fired_run {
 public:
  fired_run() = default;
  fired_run(const fired_run&) = delete;
  fired_run& operator=(const fired_run&) = delete;
  ~fired_run() { release(); }

  /// Returns: the core that holds registry id `id`'s index now, locked (keeping the one held if
  /// it is that core), or null if none does; the caller compares its id() with `id` under the
  /// mutex. Requires: no mutex held but the one this holds.
  queue_core* lock(std::uint64_t id) noexcept {
    if (pin_ && lk_.owns_lock() && pin_->id() == id) return pin_.get();
    release();
    pin_ = lookup_core(id);
    if (!pin_) return nullptr;
    lk_ = std::unique_lock(pin_->mu);
    return pin_.get();
  }

  /// Effects: notes that an item was linked on the held queue's worklist: its workers are
  /// started on release. Requires: the mutex held.
  void linked() noexcept { linked_ = true; }

  /// Effects: starts the workers the items linked need (claimed under the mutex), releases the
  /// mutex, posts the claimed worker, and drops the pin.
  void release() noexcept {
    int slot = -1;
    std::uint32_t gen = 0;
    if (lk_.owns_lock()) {
      if (std::exchange(linked_, false)) {
        slot = start_workers_deferred_locked(pin_.get());
        gen = pin_->reg.gen;
      }
      lk_.unlock();
    }
    if (slot >= 0) post_claimed(pin_.get(), slot, gen);
    pin_.reset();
  }

 private:
  core_pin pin_;         // outlives lk_'s hold (released after it)
  core_lock lk_;         // on pin_->mu
  bool linked_ = false;  // items were linked under lk_: start the workers
};

// One completion of a batch (timer_fired), with the mutex of its item's queue taken through
// `run` and left held for the next one.
void fire_one(fired_run& run, delayed_work* dw, clock_point reached) noexcept {
  auto& st = work_access::state(*dw);
  for (;;) {
    state_t s = st.load(std::memory_order_acquire);
    if ((s & st_armed) == 0) {
      // Cancelled (or in transit to a new deadline): this wait is over. Safety (release): the
      // next arming thread acquires this and may then use the timer object.
      if (st.compare_exchange_weak(s, s & ~st_in_flight, std::memory_order_release,
                                   std::memory_order_relaxed))
        return;
      continue;
    }
    // Armed on a queue when `s` was read; the pin keeps its core while we look. A core being
    // freed has disarmed every item of its queue: read the state again (without its mutex).
    queue_core* core = run.lock(queue_id_of(s));
    if (core == nullptr) continue;
    s = st.load(std::memory_order_relaxed);
    if ((s & st_armed) == 0 || queue_id_of(s) != core->id()) {  // changed under us
      run.release();
      continue;
    }
    const auto deadline = work_access::deadline(*dw).load(std::memory_order_relaxed);
    // Safety (relaxed, under the mutex): see virtual_time.hpp.
    const clock_point virtual_time = virtual_now.load(std::memory_order_relaxed);
    if (virtual_time != no_virtual_time || (s & st_virtual) != 0) [[unlikely]] {
      // A real wait meets virtual time: armed before the test clock was installed, or left
      // over from an earlier arming. While the clock is installed and has not reached the
      // deadline, the wait ends here and the clock queues the item (it is VIRTUAL from now on).
      // With VIRTUAL set and the clock gone, the clock's destructor has yet to reach this
      // queue (it clears VIRTUAL under this mutex) and gives the item a real wait for the
      // virtual time it had left: comparing a virtual deadline with real time here could fire
      // it early. Safety (release): as the cancelled case above.
      if (virtual_time == no_virtual_time || virtual_time < deadline) {
        st.fetch_or(st_virtual, std::memory_order_relaxed);  // Safety: read under the mutex
        st.fetch_and(~st_in_flight, std::memory_order_release);
        return;
      }
    } else if (deadline > reached && std::chrono::steady_clock::now() < deadline) {
      // Fired early relative to a postponed deadline: re-arm lazily. (This completion may
      // have come before the thread that started its wait let go of the timer.) A deadline at
      // or before the one this wait reached is due without reading the clock: that spares one
      // clock read per expiry on the timer thread.
      wait_timer_idle(*dw);
      start_wait(*dw, deadline, &timer_fired);
      return;
    }
    // Due: commit the decision, unless the deadline was moved later meanwhile without the
    // mutex (move_armed): then decide again on the new one.
    if (!commit_expiry(*dw, deadline)) {
      run.release();
      continue;
    }
    // The worker it needs is started when the mutex is released (run.release). From then on
    // `dw` may run and be freed.
    if (link_expired_locked(core, *dw)) run.linked();
    return;
  }
}

// Completions handled under one acquisition of a queue's mutex at most: the workers posted for
// the first items wait no longer for it than this many take.
constexpr std::size_t fired_per_hold = 16;

void timer_fired(const fired_wait* waits, std::size_t n) noexcept {
  fired_run run;
  std::size_t held = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!begin_completion(waits[i])) continue;  // destroyed: its memory is not touched
    fire_one(run, waits[i].item, waits[i].reached);
    end_completion(waits[i]);
    if (++held == fired_per_hold) {
      run.release();
      held = 0;
    }
  }
}

}  // namespace

void arm_real_wait_locked(delayed_work& dw, clock_point deadline) noexcept {
  work_access::deadline(dw).store(deadline, std::memory_order_relaxed);
  // Safety (acq_rel): acquire pairs with a completion's release clear of IN_FLIGHT, as in
  // arm_claimed: a new wait is started only once the previous one is done with the timer.
  const state_t s = work_access::state(dw).fetch_or(st_in_flight, std::memory_order_acq_rel);
  wait_timer_idle(dw);
  if ((s & st_in_flight) == 0) {
    start_wait(dw, deadline, &timer_fired);
  } else if (work_access::timer(dw).expiry() > deadline) {
    // Safety: timer calls are serialised by the mutex of the queue ARMED names, held here.
    work_access::timer(dw).cancel();  // its completion re-arms for `deadline`
  }
}

// ---- workers --------------------------------------------------------------------------------

void run_pool_task(pool_task* t) noexcept {
  // Safety: every pool_task the engine submits is a worker_slot (submit_handler_locked).
  worker_slot& s = *static_cast<worker_slot*>(t);
  run_worker(owner_of(s), s.gen, s.index);
}

namespace {

// The loop of one worker handler: take the next item, run it, finish it, then what the finish
// means across mechanisms (waiters, async completions, an orphan's retirement). Returns true if
// it yielded to a successor handler. Requires mu held through `lk`; returns with it held.
bool work_loop(worker_scope& s, core_lock& lk, done_list& done) noexcept {
  queue_core* const core = s.core;
  // The items this handler takes ahead of running them (ahead_batch): empty between items, and
  // no longer reachable through the slot once the handler leaves the loop (mu held then).
  ahead_batch ahead;
  s.run.ahead = &ahead;
  struct unpublish {
    worker_run& run;
    ~unpublish() { run.ahead = nullptr; }
  } const unpublished{s.run};
  for (int budget = worker_budget;; --budget) {
    // Retired while this worker ran its last item (an orphan it finished, or a queue destroyed
    // from that item with nothing else in flight): nothing left to do here.
    if (core->reg.gen != s.gen || !core->reg.live) return false;
    work* w = nullptr;
    switch (take_next(s, budget, w)) {
      case next_step::idle: return false;
      case next_step::yielded: return true;
      case next_step::run: break;
    }
    if (core->wt.flushers != nullptr) note_started_locked(core, w, s.me);
    budget -= take_ahead_locked(s, ahead, budget);
    run_one(s, w, lk, done);
    const unsigned color = finish_one(s);
    wake_after_run_locked(core, s.me, color);
    // What ran ahead finishes now, in order, with what each end satisfies. (A flush_work()
    // caller never waits for an item's start here: it puts an item still ahead back on the
    // ready list, settle_ahead_locked, or found it running on this worker.)
    for (int i = 0; i < ahead.ran; ++i)
      wake_after_run_locked(core, s.me, finish_ahead_locked(s, ahead, i));
    give_back_ahead_locked(core, ahead);
    if (!core->wt.async_waiters.empty()) complete_waiters_locked(core, done);
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
  bool succeeded = false;
  {
    worker_scope scope(core, gen, slot);
    succeeded = work_loop(scope, lk, done);
  }
  // The tail: what this handler satisfied completes before it stops counting as inside the
  // queue, so destroy() (which waits for nr_in_handler == 0) returns only once nothing of the
  // queue runs any more, on a shared pool as on a joined private one.
  if (!done.empty()) {
    lk.unlock();
    done.complete();
    lk.lock();
  }
  if (--core->wk.nr_in_handler == 0 && blocked_for_locked(core, blocked_kind::drain))
    wake_blocked_locked(core);
  // A successor handler inherits this one's count of outstanding handlers.
  if (!succeeded) handler_gone_locked(core, lk);
}

namespace {

// Drops the items abandon_locked took (each is ours: PENDING, on no list) with the mutex
// released, since drop() releases the references the queue held, which may run any destructor;
// then reports them; `why` is the whole reason, subject included. Marks the queue
// (lifecycle_state::items_dropped) so that its destroy() says that not every item ran. Returns
// with the mutex held again.
void drop_abandoned(queue_core* core, core_lock& lk, work_list& gone, const char* why) noexcept {
  if (gone.empty()) return;
  const std::size_t n = gone.size();
  core->lc.items_dropped = true;  // destroy() says so (D19)
  lk.unlock();
  while (!gone.empty()) {
    work& w = gone.front();
    gone.pop_front();
    work_access::ops(w).load(std::memory_order_relaxed)->drop(&w);
  }
  report(errc::items_dropped,
         "queue '%s': %s with %zu item(s) queued or armed: "
         "dropped unrun",
         core->name.c_str(), why, n);
  lk.lock();
}

}  // namespace

void worker_handler_dropped(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept {
  done_list done;
  work_list gone;
  std::unique_lock lk(core->mu);
  if (core->reg.gen == gen && core->reg.live) {
    --core->wk.nr_unstarted;
    core->wk.slots[slot].active = false;
    --core->wk.nr_workers;
    update_saturated(core);
    if (!core->wk.executor_dead) abandon_locked(core, gone, done);
  }
  drop_abandoned(core, lk, gone, "its executor was shut down");
  if (core->reg.gen == gen && core->reg.live && core->lc.orphaned && core->wl.nr_in_flight == 0)
    finish_orphan_locked(core, lk, done);
  handler_gone_locked(core, lk);
}

void executor_context_gone(queue_core* core, std::uint64_t id) noexcept {
  done_list done;
  work_list gone;
  std::unique_lock lk(core->mu);
  if (core->id() != id || !core->reg.live) return;
  // abandon_locked ends the queue's outstanding work on the context (note_work_locked): the
  // context is still whole while its services shut down.
  if (!core->wk.executor_dead) abandon_locked(core, gone, done);
  drop_abandoned(core, lk, gone, "its executor's execution context was shut down");
  // Nothing may touch the context from here: not a post (executor_dead), not the executor copy
  // (a strand's would reach into the context's strand service when destroyed).
  // A handler claimed before the context went may still be being posted without mu: the copy
  // it posts through must outlive that call. (executor_dead, set above, stops new claims.)
  core->wk.executor_dead = true;
  wait_posts_done(core, lk);
  if (core->wk.executor) core->wk.executor->release_executor();
  if (!done.empty()) {
    lk.unlock();
    done.complete();
  }
}

}  // namespace wq::detail
