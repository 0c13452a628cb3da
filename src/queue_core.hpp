// SPDX-License-Identifier: BSL-1.0
// src/queue_core.hpp: the queue engine's state (private to the library).
//
// One queue_core per live workqueue. Cores are allocated in chunks by the registry and never
// freed; a destroyed queue's core is retired (its generation bumped) and recycled once no
// handle refers to it: no reference (`reg.refs`: the workqueue object, executor copies,
// helpers joining an orphaned pool) and no worker handler posted for it
// (`reg.outstanding_handlers`). Each field is tagged with what guards it (see queue_core).
#pragma once

#include <wq/detail/async_waiter.hpp>
#include <wq/detail/core.hpp>
#include <wq/observer.hpp>
#include <wq/stats.hpp>

#include "wait_graph.hpp"
#include "worker_pool.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <boost/intrusive/list.hpp>

namespace wq::detail {

using work_list = boost::intrusive::list<
    work, boost::intrusive::member_hook<work, work_access::hook_type, work_access::hook_member>,
    boost::intrusive::constant_time_size<true>>;

/// One worker: a handler posted to the executor (on a shared pool: the slot itself, submitted
/// as a pool_task), running items one after another.
struct worker_slot : pool_task {
  work* current = nullptr;  // item being run, for non-reentrancy (rules 9-11)
  std::uint64_t runs = 0;   // items started here (the watchdog's progress mark)
  bool timing = false;      // the current run is a sampled one (started_at)
  std::chrono::steady_clock::time_point started_at{};
  const work_ops* current_ops = nullptr;  // its ops: identity is (address, function)
  unsigned current_color = 0;             // flush color of the instance being run
  work_list scheduled;                    // items handed to this worker by collision (rule 10)
  bool active = false;                    // a handler for this slot is posted or running
  run_record* rec = nullptr;              // the thread running this slot's handler (wait graph)
  // On a shared pool, the slot is its own handler (submitting allocates nothing): it runs
  // run_worker(owner, gen, index). Written under mu when submitted.
  queue_core* owner = nullptr;
  std::uint32_t index = 0;
  std::uint32_t gen = 0;
};

/// A flush_work() caller waiting for one instance of an item to finish (stack-allocated by the
/// waiter, registered in queue_core::flushers while it waits).
struct flush_waiter {
  work* item = nullptr;
  worker_slot* slot = nullptr;  // the worker running the awaited instance, once started
  bool started = false;         // the awaited instance has started (on `slot`)
  bool done = false;            // ... and finished
};

/// One queueing timed for the latency histogram (stats.hpp).
struct stat_sample {
  const work* item = nullptr;
  std::chrono::steady_clock::time_point at{};
};
inline constexpr std::uint32_t sample_every = 16;

/// The counters behind workqueue::stats() (the stats mechanism).
struct queue_counters {
  std::uint64_t queued = 0;              // L: mu
  std::uint64_t started = 0;             // L: mu
  std::uint64_t finished = 0;            // L: mu
  std::uint64_t cancelled = 0;           // L: mu
  std::uint64_t max_depth = 0;           // L: mu
  latency_histogram queue_latency;       // L: mu
  latency_histogram run_time;            // L: mu
  std::uint32_t tick = 0;                // L: mu. Queueings since the last sample.
  int nr_samples = 0;                    // L: mu. Used entries of samples.
  std::array<stat_sample, 4> samples{};  // L: mu
  // A: relaxed, counted without the mutex; only ever summed, orders nothing.
  std::atomic<std::uint64_t> coalesced{0};

  /// Effects: zeroes every counter. Requires mu held (coalesced: no concurrent queueing).
  void reset() noexcept {
    queued = started = finished = cancelled = max_depth = 0;
    queue_latency = {};
    run_time = {};
    tick = 0;
    nr_samples = 0;
    samples = {};
    coalesced.store(0, std::memory_order_relaxed);
  }
};

// Guard tags on the fields below (as the kernel's workqueue.c tags its structs):
//   L:  the core's mutex `mu`;
//   I:  immutable while the queue is live (written under mu when it is created);
//   A:  atomic, accessed without mu (the comment says which ordering and why);
//   W:  the worker running that slot (no lock).

/// The registry's part of a core: identity, liveness and the references that keep it from
/// being recycled (src/workqueue.cpp, "the core registry").
struct registry_slot {
  std::uint32_t index = 0;       // I (for ever): slot in the registry, set when its chunk is made
  std::uint32_t gen = 0;         // L: generation; the id is (gen << 20) | index
  bool live = false;             // L: between create_core and retire
  bool recycled = false;         // L: pushed on the free list (guards against a second push)
  int outstanding_handlers = 0;  // L: worker handlers alive (posted, running, not yet freed)
  // A (acq_rel): references held by handles (workqueue, queue_executor copies, orphan
  // joiners), changed without mu; the last release takes mu to recycle a retired core.
  std::atomic<std::uint64_t> refs{0};
  // L: the pool the queue owns, if any. Joined by destroy() (or the orphan's helper thread),
  // freed only when the core is recycled, so executor copies outliving the queue name a valid
  // context.
  std::unique_ptr<boost::asio::thread_pool> own_pool;
  // A (release/acquire): the queue's execution context, for queue_executor::query (an
  // executor may outlive its queue and read this while the core is recycled).
  std::atomic<boost::asio::execution_context*> context{nullptr};
};

/// The intake: plain queueing (queue_work from any thread) links items here without the
/// mutex while the queue accepts them, so producers do not contend with workers for it. A
/// Treiber stack of items chained through their (unused) list hooks, newest first; the word
/// holds the queue's generation in its top 16 bits and the newest item (or intake_closed) in
/// the rest.
struct intake_state {
  // A: pushed to with a CAS by producers; taken whole (and its items moved to the lists in
  // queueing order) only by a holder of mu, see take_intake_locked.
  alignas(64) std::atomic<std::uintptr_t> word{0};
  // A (seq_cst), written under mu: nr_workers == max_workers or a worker on its way (a mirror
  // of the workers' counts). Producers that see it set leave their items on the intake for the
  // running workers, which take it before they go idle (see update_saturated).
  std::atomic<bool> saturated{false};
};

/// The worklist: queued items and the counts that decide activation and flushing.
struct worklist_state {
  alignas(64) work_list ready;     // L: active items waiting for a worker, FIFO
  work_list inactive;              // L: items beyond max_active, FIFO (rule 37)
  int max_active = 1;              // L
  int nr_active = 0;               // L: items on ready, scheduled lists or running
  std::uint64_t nr_in_flight = 0;  // L: queued + inactive + running (what drain waits for)
  // L: flush colors (rule 26). Every queued or running instance counts in nr_color[its
  // color]; instances queued from now on get color flush_epoch % nr_colors. flush() bumps the
  // epoch and waits until the colors of older epochs drain.
  std::uint64_t flush_epoch = 0;
  std::uint64_t nr_color[nr_colors] = {};
};

/// The workers: slots, the handlers posted for them, and where they are posted.
struct workers_state {
  // L: grown on demand up to slot_cap (a deque: slots never move, flush waiters point at
  // them). A slot's `timing`/`started_at` are W.
  std::deque<worker_slot> slots;
  int nr_workers = 0;   // L: active slots
  int max_workers = 1;  // L: min(max_active, slot_cap)
  int slot_cap = 1;     // I: most slots the queue may grow (its executor's concurrency, or
                        // max_active on a shared pool, where blocked workers are replaced)
  // L: worker handlers posted (or re-posted for fairness) that have not started yet. While
  // there is one, no other worker is posted: it takes the next item and, if more are
  // runnable, posts the next worker itself (claim_worker_slot), as the kernel's workers wake
  // one another instead of every queueing waking one.
  int nr_unstarted = 0;
  int nr_in_handler = 0;  // L: handlers inside run_worker for the live queue (destroy() waits
                          // for 0: a handler's tail completes async waiters)
  std::uint64_t handler_starts = 0;  // L: handlers started (progress, for blocking waits)
  bool executor_dead = false;        // L: the executor destroyed a handler unrun: never post again
  // L; also read without mu by workqueue::blocked_wait, whose queue is the only retirer.
  // Null on a shared pool.
  std::unique_ptr<executor_box> executor;
  worker_pool* pool = nullptr;  // I: the shared pool the queue runs on, if any
  // A (relaxed): copies of the queue's executor with outstanding_work.tracked; while there
  // is one, the queue holds outstanding work on its executor. The 0 <-> 1 edges take mu and
  // call note_work_locked, which re-reads it.
  std::atomic<std::int64_t> tracked{0};
};

/// Who waits for the queue: blocking waiters on idle_cv, flush_work() callers, async waiters.
struct waiters_state {
  std::condition_variable idle_cv;      // waits under mu; drainers wait for nr_in_flight == 0
  int drain_waiters = 0;                // L: threads waiting on idle_cv for nr_in_flight == 0
  int item_waiters = 0;                 // L: threads waiting on idle_cv for an item to stop running
  int queue_flushers = 0;               // L: threads in flush() waiting on idle_cv
  std::vector<flush_waiter*> flushers;  // L: flush_work() callers waiting on this queue
  std::vector<async_waiter*> async_waiters;  // L: async flush/drain/cancel_sync in progress
};

/// The delayed items whose timer targets this queue.
struct timers_state {
  work_list armed;  // L
};

/// Where the queue is in its life: paused, draining, dying, orphaned.
struct lifecycle_state {
  bool dying = false;   // L: destroy in progress: only chained queueing accepted
  int draining = 0;     // L: drain() calls in progress
  bool paused = false;  // L: rule 45: queued items stay queued, none start until resume
  // L: destroyed where it could not wait (§5.2): the worker that finds it idle retires it and
  // has own_pool (if any) joined by a helper thread.
  bool orphaned = false;
  bool destroy_notified = false;  // L: its async_destroy handlers were completed
  bool orphan_busy = false;       // L: a thread is completing them with mu released
  work_list deferred;             // L: delayed items that fired during a drain
};

/// One queue's engine state: one member per mechanism, each field tagged with its guard.
struct queue_core {
  std::mutex mu;
  registry_slot reg;
  intake_state in;
  worklist_state wl;
  workers_state wk;
  waiters_state wt;
  timers_state tm;
  lifecycle_state lc;
  queue_counters stats;
  std::string name;                       // I
  queue_flags flags = queue_flags::none;  // I
  std::atomic<observer*> obs{nullptr};    // A (relaxed): see workqueue::set_observer

  [[nodiscard]] std::uint64_t id() const noexcept {
    return (std::uint64_t{reg.gen} << core_index_bits) | reg.index;
  }
};

/// Returns the core with slot index taken from `id`, or nullptr if no such slot exists. The
/// caller must lock it and compare its id() with `id` before trusting it.
queue_core* lookup_core(std::uint64_t id) noexcept;

/// Marks a live core retired (generation bumped) and recycles it when no handle refers to it.
/// Waiters still registered (async_destroy) move onto `done`. Requires mu held through `lk`,
/// which is unlocked on return if the core was recycled.
void retire_core(queue_core* core, std::unique_lock<std::mutex>& lk, done_list& done) noexcept;

/// Links a claimed item on core's worklist or inactive list and returns a slot to post a worker
/// for, or -1. Requires mu held. Sets QUEUED and the queue id in the state word.
int insert_locked(queue_core* core, work& w) noexcept;

/// The intake word: generation tag (top 16 bits) and item pointer (the rest).
inline constexpr unsigned intake_tag_shift = 48;
inline constexpr std::uintptr_t intake_ptr_mask = (std::uintptr_t{1} << intake_tag_shift) - 1;
inline constexpr std::uintptr_t intake_closed = 1;  // no item is at this address
constexpr std::uintptr_t intake_tag(std::uint32_t gen) noexcept {
  return std::uintptr_t{gen} << intake_tag_shift;
}
/// Tries to queue a claimed item on queue `id` through its intake, without the mutex. Leaves
/// the claim to the caller, who takes the locked path, if the queue does not accept plain
/// queueing now (destroyed, dying, draining), has a worker slot to start (the locked path
/// does that in the same critical section), or the item's address cannot be tagged.
enum class push_result {
  pushed,      ///< on the intake: the queueing succeeded
  not_pushed,  ///< take the locked path
  closed,      ///< take the locked path; on_queued was already reported (a drain or destroy
               ///< closed the intake while this call pushed)
};
push_result push_intake(queue_core* core, std::uint64_t id, work& w,
                        const location* where) noexcept;
/// Moves the intake's items onto the queue's lists, oldest first, counting them as queued.
/// Returns whether there were any. Requires mu held.
bool take_intake_locked(queue_core* core) noexcept;
/// Closes the intake (dying, draining), moving what was on it onto the lists. Requires mu.
void close_intake_locked(queue_core* core) noexcept;
/// Reopens a closed intake if the queue accepts plain queueing again. Requires mu held.
void open_intake_locked(queue_core* core) noexcept;
/// Records whether producers may leave items on the intake: every worker slot the queue may
/// use is active, or a worker is on its way (posted, not started: it takes the intake first
/// thing). Requires mu held. Whoever makes it false must look at the intake afterwards (with
/// seq_cst) and take what is there: the worker going idle, or starting (run_worker).
inline void update_saturated(queue_core* core) noexcept {
  // Safety (seq_cst): a store-load pair against producers' push + load of this flag (see
  // push_intake); relaxed would let both sides miss each other and strand an item.
  core->in.saturated.store(core->wk.nr_workers >= core->wk.max_workers || core->wk.nr_unstarted > 0,
                           std::memory_order_seq_cst);
}

/// Records which list of its queue holds `w` (state bits LIST). Requires mu held.
void set_list(work& w, list_kind kind) noexcept;
/// Whether a worker could take an item now: one is on the worklist, or one is inactive and
/// fewer than max_active are active. Requires mu held.
///
/// Activation (rule 37) is lazy: an inactive item becomes active when a worker takes it off
/// the inactive list, not when a finishing or cancelled item makes room. Every worklist item
/// is older than every inactive one (an item goes on the worklist only while nothing is
/// inactive), so which items run, in which order, and how many at once are the same as with
/// the kernel's activation on finish; the difference is one list move and one state RMW less
/// per item when a burst overflows max_active.
inline bool has_runnable(const queue_core* core) noexcept {
  return !core->wl.ready.empty() ||
         (!core->wl.inactive.empty() && core->wl.nr_active < core->wl.max_active);
}
/// How many items a worker could take now (the worklist, and the inactive items max_active
/// leaves room for). Requires mu held.
inline std::size_t nr_runnable(const queue_core* core) noexcept {
  const int room = core->wl.max_active - core->wl.nr_active;
  return core->wl.ready.size() +
         (room > 0 ? std::min(core->wl.inactive.size(), static_cast<std::size_t>(room)) : 0);
}

/// Moves the async waiters whose condition now holds onto `done` (completed by the caller once
/// it has released mu). Requires mu held.
void check_async_locked(queue_core* core, done_list& done) noexcept;
/// Registers an async_destroy waiter (kind destroy) on an orphaned core. Requires mu held.
/// Returns false if out of memory.
bool register_async_destroy_locked(queue_core* core, async_waiter* w) noexcept;
/// Moves the core's async_destroy waiters onto `out`. Requires mu held.
void take_destroy_waiters_locked(queue_core* core, done_list& out) noexcept;
/// Starts or ends the queue's outstanding work on its executor (Asio's convention) to match
/// whether it has work: queued, inactive or running items, armed or deferred delayed items, or
/// tracked copies of its executor. Call it after any change that may cross the idle/busy edge.
/// Requires mu held. Complexity: O(1); a no-op for queues on their own pool.
inline void note_work_locked(queue_core* core) noexcept {
  executor_box* ex = core->wk.executor.get();
  if (ex == nullptr || ex->track == nullptr) return;
  // Safety (relaxed): the tracked count's edges take mu before calling this, so the last
  // edge's value is seen here (see add_tracked in workqueue.cpp).
  const bool busy = core->wl.nr_in_flight > 0 || !core->tm.armed.empty() ||
                    !core->lc.deferred.empty() ||
                    core->wk.tracked.load(std::memory_order_relaxed) > 0;
  if (busy != ex->tracking) ex->track(ex, busy);
}
/// Whether every instance queued with an epoch <= e0 has finished. Requires mu held.
bool older_colors_drained(const queue_core* core, std::uint64_t e0) noexcept;
/// Ends one drain (sync or async); the last one queues the deferred items. Requires mu held.
void end_drain_locked(queue_core* core) noexcept;

/// Posts a worker handler for `slot`, if it is not -1. Requires mu held (see workqueue.cpp).
void post_worker(queue_core* core, int slot) noexcept;
/// Takes the intake, then posts workers while free slots and waiting items allow. Requires mu
/// held. Every reader of the lists or counters calls this first, so that items on the intake
/// are seen as queued.
void start_workers_locked(queue_core* core) noexcept;
/// Unpauses a paused queue and starts its workers (drain and destroy could not finish on a
/// paused queue). Requires mu held.
void unpause_locked(queue_core* core) noexcept;
/// Queues the delayed items that fired during a drain. Requires mu held.
void queue_deferred_locked(queue_core* core) noexcept;
/// Starts destroying: refuses outside queueing, unpauses, unlinks armed items (returned: the
/// caller releases their references, unlocked) and queues deferred ones. Requires mu held.
std::vector<work*> begin_destroy_locked(queue_core* core);
/// The queue's executor will never run its items (destroyed a worker handler unrun, or is not
/// run by anyone when the queue is destroyed): takes every item the queue holds (queued,
/// inactive, handed over, deferred, armed) off its lists into `out`, fixing the counts, and
/// refuses queueing from then on. The caller drops them (releasing their references) once it
/// has released mu. Requires mu held.
void abandon_locked(queue_core* core, work_list& out, done_list& done) noexcept;
/// Retires an orphaned core that has gone idle and has its pool joined elsewhere; its
/// async_destroy waiters complete once that is done (onto `done`, or from the joining thread).
/// Requires mu held through `lk` (see retire_core).
void finish_orphan_locked(queue_core* core, std::unique_lock<std::mutex>& lk,
                          done_list& done) noexcept;
/// Drops the latency sample of `w`, if any (it was cancelled). Requires mu held.
inline void forget_sample_locked(queue_core* core, const work* w) noexcept {
  if (core->stats.nr_samples == 0) return;
  for (auto& s : core->stats.samples) {
    if (s.item == w) {
      s.item = nullptr;
      --core->stats.nr_samples;
      return;
    }
  }
}
/// Backs off in a spin-wait for a short in-transit window: yields, then sleeps briefly.
void backoff(unsigned spins) noexcept;

/// The running thread's worker context, if it is running a work item.
struct worker_context {
  queue_core* core = nullptr;
  worker_slot* slot = nullptr;
  work* current = nullptr;
};

/// Which item a thread's worker is running, published for the destructor's misuse check
/// (check_destroy). One record per thread that ever ran a worker, reused after the thread
/// exits; records are never freed, so a reader may walk the list at any time.
struct run_record {
  std::atomic<const work*> item{nullptr};  // the item whose function runs now, or nullptr
  // Its ops, written before `item`: identity is address plus function (rule 11), so an object
  // built in the memory of one that freed itself while running is not mistaken for it.
  std::atomic<const work_ops*> ops{nullptr};
  std::atomic<bool> in_use{false};  // owned by a live thread
  run_record* next = nullptr;       // immutable once published
  wait_target waiting;              // what the thread blocks on; guarded by the graph
                                    // mutex (wait_graph.cpp)
};
/// The calling thread's record (claimed on first use), or nullptr while the thread exits or if
/// no memory was left for one.
run_record* this_run_record() noexcept;
/// The calling thread's record if it has claimed one, else nullptr. Never allocates.
run_record* claimed_run_record() noexcept;
/// Makes sure at least `n` records are free to claim (allocating the shortfall), so that
/// threads about to run workers claim one without allocating. Best effort: stops on bad_alloc.
void reserve_run_records(std::size_t n) noexcept;
/// The newest record; follow `next` for the others.
run_record* first_run_record() noexcept;

/// Calls fn(core) for every queue core that ever existed (live or not), each unlocked.
template <class Fn>
void for_each_core(Fn&& fn);
void for_each_core_impl(void (*fn)(queue_core*, void*), void* arg);
template <class Fn>
void for_each_core(Fn&& fn) {
  for_each_core_impl([](queue_core* c, void* a) { (*static_cast<Fn*>(a))(c); }, &fn);
}
worker_context& this_worker() noexcept;

}  // namespace wq::detail
