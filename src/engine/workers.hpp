// SPDX-License-Identifier: BSL-1.0
// src/engine/workers.hpp: the workers (layer 3): a queue's worker slots, posting a handler for
// one to the queue's executor or shared pool, and one handler's loop in three steps -- take the
// next item, run it, finish it -- inside a worker_scope (Asio's do_run_one and its
// work_cleanup). What a finished item means to waiters and to the queue's life is the engine's
// (engine.cpp), not this layer's. The state is queue_core::wk (workers_state) and the slots;
// every function requires the core's mutex held unless it says otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

#include "queue_core.hpp"
#include "run_records.hpp"

namespace wq::detail {

/// Records whether producers may leave items on the intake: every worker slot the queue may
/// use is active, or a worker is on its way (posted, not started: it takes the intake first
/// thing). Requires mu held. Whoever makes it false must look at the intake afterwards (with
/// seq_cst) and take what is there: the worker going idle (take_next), or starting (worker_scope).
inline void update_saturated(queue_core* core) noexcept {
  // Safety (seq_cst): a store-load pair against producers' push + load of this flag (see
  // try_push); relaxed would let both sides miss each other and strand an item.
  core->in.saturated.store(core->wk.nr_workers >= core->wk.max_workers || core->wk.nr_unstarted > 0,
                           std::memory_order_seq_cst);
}

/// Effects: links the claimed item `w` (link_locked) and starts a worker if one may start.
/// Requires: mu held; the caller owns w's PENDING claim.
void queue_locked(queue_core* core, work& w) noexcept;

/// Effects: takes the intake, then posts workers while free slots and runnable items allow.
/// Every reader of the lists or counters calls this first, so that items on the intake are seen
/// as queued. Requires: mu held.
void start_workers_locked(queue_core* core) noexcept;

/// Effects: as start_workers_locked, but a worker it may start is only claimed and counted
/// unstarted here: the handler is posted by post_claimed once the caller has released mu, so
/// the thread it wakes does not find mu held and sleep on it (a round trip then costs two
/// context switches, as asio::post's does). Returns: the claimed slot, or -1 (nothing to post).
/// Requires: mu held. The caller must call post_claimed(core, slot, gen) after unlocking
/// whenever the result is not -1, with `gen` read under mu.
int start_workers_deferred_locked(queue_core* core) noexcept;

/// Effects: posts the handler start_workers_deferred_locked claimed for `slot`, without mu; on
/// failure (out of memory) takes mu and undoes the claim, as a failed post under mu does.
/// Requires: mu not held; `slot` >= 0 came from start_workers_deferred_locked with `gen` the
/// core's generation then. Thread safety: any thread. Memory ordering: ends with a release
/// decrement of wk.posting (see queue_core.hpp), after which the core may be retired.
void post_claimed(queue_core* core, int slot, std::uint32_t gen) noexcept;

/// Effects: waits until no handler is being posted without mu (wk.posting is 0), releasing
/// and re-taking mu through `lk` while it waits. Called before the executor or pool is torn
/// down. Requires: mu held through `lk`, and no new deferred post can be claimed (the queue is
/// retired or its executor dead). Memory ordering: acquire (pairs with post_claimed).
void wait_posts_done(queue_core* core, core_lock& lk) noexcept;

/// Effects: hands a handler for slot `slot` (claimed, or the calling worker's own) to the
/// queue's executor or shared pool, counting it unstarted. Requires: mu held (so the executor
/// cannot be torn down by a concurrent destroy between the decision and the post; Asio never
/// runs a posted handler inline, so this cannot recurse). Throws: what the executor's post
/// throws.
void submit_handler_locked(queue_core* core, std::uint32_t gen, std::uint32_t slot);

/// Effects: sets what a slot submitted to a shared pool runs (the facade's run_pool_task; the
/// same value every time). Called by the facade before a core can submit. Thread safety: any
/// thread. Memory ordering: relaxed (the value never changes, and creating a core publishes it).
void set_pool_entry(void (*entry)(pool_task*) noexcept) noexcept;

/// Effects: a worker handler is gone; the last one of a retired core recycles it.
/// Requires: mu held through `lk`, which may be unlocked on return (the core was recycled): the
/// caller must not touch the core afterwards.
void handler_gone_locked(queue_core* core, core_lock& lk) noexcept;

/// One worker handler's stay in its slot, from its start to its return (RAII, like Asio's
/// work_cleanup): the constructor counts the handler started, publishes its worker_run in the
/// slot and takes what waits on the intake; the thread's worker context names the queue and
/// slot until the destructor restores what it was (a worker may run inside another queue's
/// work function) and unpublishes the worker_run.
/// Requires: mu held for construction and destruction; at destruction no item is handed to
/// the handler (run.scheduled is empty: take_next runs them, or gives them back when it
/// yields) and it holds no item taken ahead (work_loop gives them back).
class worker_scope {
 public:
  worker_scope(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept;
  ~worker_scope();
  worker_scope(const worker_scope&) = delete;
  worker_scope& operator=(const worker_scope&) = delete;

  queue_core* const core;
  const std::uint32_t gen;   // the queue's generation the handler was posted for
  const std::uint32_t slot;  // the slot's index
  worker_slot& me;
  run_record* const rec;  // this thread's run record, or nullptr (no memory)
  worker_context& ctx;    // this thread's worker context (this_worker()), looked up once
  // What the handler holds while it runs (me.run points at it from construction to
  // destruction, both under mu): the slot keeps none of it between handlers.
  worker_run run;
  // The item being run is a sampled one, timed from its start to its end (the run-time
  // histogram): the handler's own, from take_next to finish_one, so the slot carries none of
  // it.
  bool timing = false;
  std::chrono::steady_clock::time_point started_at{};
  std::chrono::steady_clock::time_point finished_at{};

 private:
  const worker_context saved_;
};

/// What take_next found.
enum class next_step {
  run,      ///< an item to run
  idle,     ///< nothing for this worker: its slot is released
  yielded,  ///< the fairness budget is spent and a successor handler was submitted
};

/// Worker handlers run at most this many items before yielding their thread (fairness).
inline constexpr int worker_budget = 64;

/// Effects: takes the next item this worker may run into `out` (its own hand-overs first, then
/// the worklist, handing items that run on another worker of the queue to that worker,
/// rules 9-11), marks it started and counted, and posts the next worker if more are runnable.
/// Or: releases the slot when nothing is left (idle), or submits a successor when `budget` is
/// spent (yielded). Every intake_period items, and before going idle, links what producers left
/// on the intake. Requires: mu held. Memory ordering: going idle stores `saturated` and loads
/// the intake seq_cst: a store-load pair with try_push (intake.hpp).
next_step take_next(worker_scope& s, int& budget, work*& out) noexcept;

/// Effects: runs `w`: releases mu, completes `done`, publishes `w` in the run record, calls the
/// item's function (which may free it, rule 4); then runs the items of s.run.ahead in order until
/// they are done or someone watches (workers_state::watched), each published as the worker's
/// current item before it clears PENDING; re-locks. Requires: mu held through `lk`.
void run_one(worker_scope& s, work* w, core_lock& lk, done_list& done) noexcept;

/// Effects: counts the item `run_one` ran finished (statistics, active, in flight, its color).
/// Returns: its flush color. Requires: mu held.
unsigned finish_one(worker_scope& s) noexcept;

/// Effects: takes runnable items ahead into `b` (at most ahead_batch::capacity, and budget - 1
/// so that the fairness yield still comes), for run_one to run after the item it was given
/// without taking the mutex between them. Takes none unless every worker slot the queue may
/// use is busy (on a shared pool: as many as the pool runs at once; a free one would start a
/// worker for them), the worker has no item handed over,
/// no one watches (watchers_locked) and the next item is not a sampled one. Items running on
/// another worker are handed to it (rules 9-11), as take_next does. Each taken item is
/// activated as take_next would (rule 37). Returns: how many it took.
/// Requires: mu held; s.run.ahead == &b; b empty.
int take_ahead_locked(worker_scope& s, ahead_batch& b, int budget) noexcept;

/// Effects: counts the `i`-th item run from `b` started and finished (statistics, active, in
/// flight).
/// Returns: its flush color. Requires: mu held; i < b.ran.
unsigned finish_ahead_locked(worker_scope& s, const ahead_batch& b, int i) noexcept;

/// Effects: puts the entries of `b` its worker did not start back at the front of the ready
/// list, in their order, and empties `b`. Requires: mu held; called by b's worker.
void give_back_ahead_locked(queue_core* core, ahead_batch& b) noexcept;

/// Effects: puts the items handed to the worker `run` (rule 10) back at the front of the ready
/// list, in their order, and empties its list: the worker leaves (it yields, or the queue is
/// paused) and no instance of them runs here. Requires: mu held; called by run's worker.
void give_back_scheduled_locked(queue_core* core, worker_run& run) noexcept;

/// Effects: takes every entry that a worker of `core` other than `self` (null: any) took ahead
/// and has not started back to the front of the ready list, in their order (a worker with
/// nothing else to run, pause, abandon). Returns: whether it took any. Requires: mu held.
bool take_back_ahead_locked(queue_core* core, const worker_slot* self) noexcept;

/// Effects: if `w`, QUEUED with LIST `scheduled`, is in a batch a worker took ahead, puts it
/// back at the front of the ready list, so that its start is seen under the mutex (flush_work
/// waits for that start, and a flush_work caller must never be matched with another item at
/// the same address). Returns: false if its worker has just taken it to run it (its state soon
/// shows it started: look again), true otherwise. Requires: mu held.
bool settle_ahead_locked(queue_core* core, work& w) noexcept;

/// Effects: takes `w`, QUEUED with LIST `scheduled`, off the worker's list it was handed to, or
/// out of the batch it was taken ahead into. Returns: whether it found it (false: its worker
/// took it to run it, which clears QUEUED shortly, with nothing for the caller to wait for).
/// The instance stays counted. Requires: mu held.
bool take_scheduled_locked(queue_core* core, work& w) noexcept;

/// Returns: whether an instance of `w` (address and function, rule 11) runs on a worker of
/// `core` other than `self`, and which. Requires: mu held. Complexity: O(active slots).
worker_slot* find_running(queue_core* core, const work* w, const work_ops* ops,
                          const worker_slot* self) noexcept;

/// Returns: whether the queue runs on a process-wide shared pool (which is never stopped, so a
/// wait on it is never refused for a stopped executor). Thread safety: any thread; immutable
/// while the queue is live.
inline bool on_shared_pool(const queue_core* core) noexcept { return core->wk.pool != nullptr; }

/// Returns: whether the calling thread runs a handler of the strand `core`'s workers are posted
/// through, so none of them can start until it returns (§5.3). Requires: mu held (the queue's
/// executor box is freed when it retires, possibly by a destroy() on another thread).
bool strand_held_here(const queue_core* core) noexcept;

/// Returns: whether the queue runs one item at a time (ordered, or max_active 1), so an item
/// queued behind the calling one of its items cannot start before it returns. Requires: mu
/// held.
inline bool one_worker_locked(const queue_core* core) noexcept { return core->wk.max_workers == 1; }

/// Returns: the worker of `core` running an instance of `item` (by address) now, or nullptr.
/// Requires: mu held. Complexity: O(slots).
worker_slot* running_slot_locked(const queue_core* core, const work* item) noexcept;

}  // namespace wq::detail
