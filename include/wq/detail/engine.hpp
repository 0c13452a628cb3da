// SPDX-License-Identifier: BSL-1.0
// wq/detail/engine.hpp: the engine's entry points -- the only functions of the queue engine
// (src/engine/) the header-only layer and the executors call. Defined in src/engine/engine.cpp;
// nothing here is a user contract.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/thread_pool.hpp>

namespace wq {
// The public types the entry points name (wq/fwd.hpp declares them too; detail/ includes no
// public header).
class work;
class delayed_work;
struct location;
enum class queue_flags : std::uint8_t;
enum class queue_status;
}  // namespace wq

namespace wq::detail {

struct queue_core;
struct executor_box;
struct pool_task;

/// Runs up to a budget of items for worker slot `slot` of `core`, if `core` still has
/// generation `gen` (an executor entry point: worker_handler calls it).
void run_worker(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept;
/// Accounts for a worker handler destroyed without being invoked: the executor was shut down or
/// destroyed, so it will never run the queue's items; they are dropped (references released).
void worker_handler_dropped(queue_core* core, std::uint32_t gen, std::uint32_t slot) noexcept;
/// Runs the worker slot a shared pool's task is (an executor entry point: submitted by
/// submit_handler_locked, run by a pool thread).
void run_pool_task(pool_task* t) noexcept;

/// Parameters of a new queue core.
struct core_config {
  std::string name;
  /// The pool the queue owns, if any: kept until the core is recycled, so that executors of the
  /// queue that outlive it still name a valid execution context.
  std::unique_ptr<boost::asio::thread_pool> own_pool;
  queue_flags flags{};       // none
  bool ordered = false;      // an ordered_workqueue (picks the unbound pool on a shared pool)
  int max_active = 0;        // already clamped
  int max_workers = 1;       // concurrent worker handlers, <= max_active and <= slot_cap
  int worker_slots = 1;      // slots allocated up front
  int slot_cap = 1;          // most workers the queue can ever run at once (set_max_active)
  bool shared_pool = false;  // runs on the process-wide pool chosen by `flags` (wq/pool.hpp)
};

/// Creates a core (recycling a retired one if possible) that posts to `ex`.
/// Returns the core and its id; the caller holds the core's first reference (release it with
/// release_core). Throws std::bad_alloc.
std::pair<queue_core*, std::uint64_t> create_core(core_config cfg,
                                                  std::unique_ptr<executor_box> ex);

/// Takes one more reference on a core the caller already holds one on.
/// Thread safety: any thread. Memory ordering: relaxed (a reference is only ever copied from
/// another one, which keeps the core from being recycled meanwhile).
void acquire_core(queue_core* core) noexcept;
/// Drops one reference; the last one recycles a retired core (and frees the pool it owned).
/// Thread safety: any thread, but never while holding a queue mutex.
void release_core(queue_core* core) noexcept;

/// Returns: how many queue cores are in memory now: those of live queues, of destroyed ones
/// something still refers to, and those kept ready for new queues (at most 1024, plus the
/// rest of each 64-core slab that holds one of the others). What a test of "a
/// destroyed queue's memory goes back" counts. Thread safety: any thread. Complexity: O(1).
std::size_t cores_in_memory() noexcept;

/// Counts one more copy of the queue's executor with outstanding_work.tracked: while any exists
/// the queue holds outstanding work on the executor it runs on (if that is a user's executor).
/// Thread safety: any thread not holding the queue's mutex; takes it on the 0 -> 1 edge.
void add_tracked(queue_core* core) noexcept;
/// Counts one copy fewer (see add_tracked); takes the queue's mutex on the 1 -> 0 edge.
void remove_tracked(queue_core* core) noexcept;

/// Links a claimed item on queue `id` (worklist or inactive list). Returns queued or rejected;
/// on rejected the caller still owns the claim and must unclaim it.
/// `where`, if given, is reported to the queue's observer (on_queued, under the queue lock so
/// that the item cannot have run yet). `as_chained`: accepted while the queue drains, as its
/// own items' chained queueing is (claim_and_link, for a queueing call that coalesced into this
/// claim); still refused by a dying or destroyed queue or a dead executor.
queue_status link_claimed(queue_core* core, std::uint64_t id, work& w,
                          const location* where = nullptr, bool count = true,
                          bool as_chained = false) noexcept;
/// For a queueing call that found `w` pending: if the calling thread runs a work item of a
/// queue and `w`'s instance is in transit (claimed by a queueing on its way to be linked or
/// refused, by a canceller, or a worker starting it; on no list and not armed; or a push to the
/// caller's queue's intake not yet taken), waits until that settles, so that an instance its
/// queue refuses (draining or dying) is not mistaken for one that will run (claim_and_link).
/// The wait is short: every such transit ends without waiting for the caller, whose run
/// meanwhile keeps its queue from draining; it takes the caller's queue mutex to move its
/// intake to the lists; past about a second (only a transit of the caller's own thread lasts
/// that long: an on_queued hook queueing its item again) it gives up. Returns: whether PENDING
/// was given up (claim again); false at once for any other caller, or on giving up. Requires: the
/// caller's queue mutex not held (as any queueing call). Thread safety: any thread. Memory
/// ordering: acquire loads.
bool wait_transit_as_worker(work& w) noexcept;

/// Links a claimed item that boxes a function submitted through the queue's executor (an Asio
/// completion handler, a coroutine's resumption), as link_claimed does, except while the queue
/// drains: submitted from outside the queue, the function is then held, neither refused nor
/// waited for by the drain, and queued when the last drain ends (as a delayed item that fires
/// during a drain is, rule 49), because an Asio executor accepts what is posted to it until its
/// context is shut down, and the drain reopens the queue. Refused (queue_status::rejected, the
/// caller destroys the box) once the queue is dying, destroyed or its executor dead.
/// Thread safety: any thread. Memory ordering: as link_claimed.
queue_status link_submitted(queue_core* core, std::uint64_t id, work& w) noexcept;

/// Links a claimed item on queue `id` now (`delay` zero, as link_claimed) or arms it for
/// `delay` from now (`w` must then be a delayed_work). Returns queued or rejected (as
/// link_claimed). `count`: the call is a queueing (counted, reported to the observer); false:
/// mod_delayed_work arms or queues again an instance it took off this queue's armed list
/// (counted moving by its grab, grab.hpp), which is uncounted from moving instead.
/// `as_chained`: as link_claimed's (arming: accepted while the queue drains, refused once it
/// is dying, since a timer must not fire into it).
queue_status link_or_arm(queue_core* core, std::uint64_t id, work& w,
                         std::chrono::nanoseconds delay, const location* where = nullptr,
                         bool count = true, bool as_chained = false) noexcept;

/// mod_delayed_work's fast path (rule 20): if `dw` is armed on queue `id` with a real timer
/// wait outstanding, moves its deadline to `delay` from now and returns true; the item stays
/// armed and pending throughout, as when the general path takes it off the armed list and arms
/// it again. A later deadline (the debounce case) is one CAS on the deadline word, without the
/// queue's mutex; an expiry deciding on the old deadline commits with a CAS on the same word
/// (commit_expiry, src/engine/timers.hpp), so either the move lands first and the expiry sees
/// it, or the move sees the expiry's mark and takes the locked path, which finds the item no
/// longer armed. An earlier deadline is moved under the mutex and cuts the wait short. Returns
/// false in every other case (not armed here, disabled, a test clock installed, the "infinite"
/// max_delay, the queue dying, draining or destroyed): the caller then takes the general path,
/// which arms or queues the item afresh. Having returned false, it may have moved the deadline
/// later, which can only postpone an expiry the general path then decides. Thread safety: any
/// thread. Memory ordering: acq_rel CAS on the deadline; acquire on the state and the queue's
/// intake word (a cancel, drain or destroy that happened before the call is seen).
bool move_armed(queue_core* core, std::uint64_t id, delayed_work& dw,
                std::chrono::nanoseconds delay) noexcept;

}  // namespace wq::detail
