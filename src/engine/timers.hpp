// SPDX-License-Identifier: BSL-1.0
// src/engine/timers.hpp: delayed items' timers (layer 1): the armed list of a queue
// (queue_core::tm), arming, expiry and cancellation of one item's timer wait, and the
// completion handler. What a completion does is the engine's (timer_fired in engine.cpp), handed
// in as a function pointer, so this layer calls nothing above it.
//
// Timer discipline: an item's timer object is touched only (a) by the thread that owns the
// item's PENDING bit while the item is in transit (not ARMED), (b) while holding the mutex of
// the queue named in the state word with ARMED set, after waiting for wait_starting to clear,
// or (c) by the arming thread that set wait_starting (under that mutex), until it clears it.
// (c) lets arming start a fresh wait after releasing the queue's mutex: the Asio call takes the
// timer context's own lock, and holding the queue's mutex across it made the timer thread,
// completing other items of that queue, queue up behind every arming call (p99 lateness of
// milliseconds while a thread armed many items). At most one Asio wait is outstanding per item
// (IN_FLIGHT); the arming path starts one only if none is, and the completion re-arms itself
// lazily when the deadline moved later, so moving a deadline costs no timer operation.
//
// Deadline discipline: an item's deadline word is written under that same mutex while ARMED,
// with one exception: mod_delayed_work moves a real deadline later with a CAS and no lock
// (move_armed, engine.cpp). So whoever queues an item because its deadline has come commits
// that decision with commit_expiry, a CAS on the same word: a move either lands first (the
// commit fails and the deadline is read again) or finds the commit's mark and takes the locked
// path, which finds the item queued. A later deadline can only postpone an expiry, so nothing
// else that reads the deadline needs to know about the moves.
//
// Under a wq::test_clock (virtual_time.hpp) deadlines are virtual and no wait is started: the
// item is ARMED and VIRTUAL, without IN_FLIGHT, and the clock queues it when its deadline comes.
// A wait still outstanding from real time only ends there (the item then counts as VIRTUAL).
// When the clock goes it gives every VIRTUAL item a real wait; ARMED items without VIRTUAL
// always have a wait outstanding (IN_FLIGHT).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>

#include <wq/delayed_work.hpp>

#include "../virtual_time.hpp"
#include "queue_core.hpp"

namespace wq::detail {

/// What a completed timer wait knows of the clock: `reached` is the deadline the wait was
/// started for if it completed because that time came (Asio completes a wait without an error
/// only once its clock, the same steady_clock, has reached the timer's expiry), so a deadline at
/// or before it is due without reading the clock; wait_unreached if it was cancelled or cut
/// short.
inline constexpr clock_point wait_unreached = clock_point::min();

/// One completed timer wait (cancelled or expired), as handed to the engine: its item, what the
/// wait knows of the clock (`reached`, above), and whether it ran on wq's timer thread
/// (`shared`), where the item may have been destroyed meanwhile (see begin_completion).
struct fired_wait {
  delayed_work* item;
  clock_point reached;
  bool shared;
};

/// The engine's step run for completed timer waits: `n` >= 1 of them, in the order they
/// completed. On wq's timer thread the completions Asio runs back to back are handed over
/// together (up to fired_batch_max, see timers.cpp), so that the engine takes a queue's mutex
/// once for the items of that queue due together rather than once per item; on an
/// application's io_context each completion is handed over alone, under its anchor's mutex.
using timer_fired_fn = void (*)(const fired_wait* waits, std::size_t n) noexcept;

/// The most completions on wq's timer thread handed over in one call.
inline constexpr std::size_t fired_batch_max = 256;

/// Effects: for a wait on wq's timer thread (`w.shared`), publishes that its completion is
/// about to touch `w.item` and takes the item's orphan entry if it has one (orphan_wait).
/// Returns: false if the item was destroyed: its memory must not be touched, and
/// end_completion must not be called; true otherwise (always for a wait that is not shared),
/// and the caller calls end_completion(w) once it no longer touches the item. Requires: the
/// calling thread runs the completion (timer_fired_fn); the completions it was handed are
/// begun one at a time. Memory ordering: as orphan_wait says.
bool begin_completion(const fired_wait& w) noexcept;

/// Effects: ends what begin_completion(w) began: a destroyer of `w.item` waiting for this
/// completion may go on. Memory ordering: release (every access of the item before it happens
/// before the destroyer's acquire).
void end_completion(const fired_wait& w) noexcept;

// An item on an application io_context and its outstanding wait share this block: the wait's
// completion may run after the item is gone (the item cannot wait for it: that context may not
// be running, or may be run by the destroying thread). `item` is guarded by `mu`; the block is
// freed by whichever of the two lets go last.
struct timer_anchor {
  std::mutex mu;
  delayed_work* item = nullptr;
  std::atomic<int> refs{1};  // the item's, plus one while a wait is outstanding

  void release() noexcept {
    // Safety (acq_rel): the last releaser sees every access of the other.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

/// Effects: lets a delayed item on wq's timer thread go while its last wait is still
/// outstanding (IN_FLIGHT): the item's address is listed as orphaned, so the wait's completion,
/// which runs on the timer thread, finds it there and never touches the item. If that
/// completion is running now, waits for it to return (it is short and takes no lock the caller
/// could hold). Returns at once when no wait is outstanding.
/// Requires: `dw` is being destroyed: not ARMED, no arming thread starting a wait
/// (wait_timer_idle), no anchor; its timer is destroyed after this returns, which cancels the
/// outstanding wait. Thread safety: any thread except wq's timer thread.
/// Memory ordering: seq_cst on the orphan count and on the timer thread's "completing" word (the
/// completion publishes which item it is about to touch, then reads the count; this lists the
/// item, then reads that word: one of the two sees the other); acquire on IN_FLIGHT (pairs with
/// the completion's release clear).
/// Allocation: one hash node per orphaned wait; out of memory, waits for the completion instead.
void orphan_wait(delayed_work& dw) noexcept;

/// Effects: starts an Asio wait on `dw`'s timer until `deadline`, completing into `fired`
/// (allocated from wq's handler pool; terminates if even that fails: an armed item nobody
/// would queue is worse than stopping). Requires: the caller may touch the timer (timer
/// discipline (a), (b) or (c)) and no wait is outstanding (IN_FLIGHT was clear).
void start_wait(delayed_work& dw, clock_point deadline, timer_fired_fn fired) noexcept;

/// Effects: waits until no arming thread is starting a wait on `dw`'s timer outside the
/// queue's mutex (timer discipline (c)). Every other toucher of the timer calls this first.
/// Thread safety: any thread; safe under a queue mutex (the starter needs no lock to finish).
/// Memory ordering: acquire (pairs with the starter's release clear of wait_starting).
void wait_timer_idle(delayed_work& dw) noexcept;

/// Effects: arms the claimed item `dw` on queue `id` of `core` for `deadline` (virtual if
/// `!real`): links it on the armed list, sets ARMED (and IN_FLIGHT or VIRTUAL) and the queue id.
/// With a real deadline, either marks a fresh wait to start (returns true: the caller starts it
/// with start_wait once it has released mu, then clears wait_starting) or cuts an outstanding
/// wait short if it would complete after `deadline`.
/// Requires: mu held; the caller owns dw's PENDING claim.
/// Memory ordering: acq_rel on the state (acquire pairs with a completion's release clear of
/// IN_FLIGHT: a new wait starts only once the previous one is done with the timer).
bool arm_locked(queue_core* core, std::uint64_t id, delayed_work& dw, clock_point deadline,
                bool real) noexcept;

/// Returns: whether `d`, read from an item's deadline word, is the mark an expiry left there
/// (commit_expiry): the deadline with its bits inverted, negative, which no deadline is (real
/// ones are steady_clock::now() plus a delay, virtual ones a test clock's time, which starts at
/// a real now). delayed_work::deadline() inverts it back.
constexpr bool is_expired_mark(clock_point d) noexcept { return d.time_since_epoch().count() < 0; }

/// Effects: commits the decision that the ARMED item `dw`'s deadline `seen` has come, by
/// replacing it with its expired mark (is_expired_mark), unless a lock-free move (move_armed in
/// engine.cpp) made it later since it was read. Every decision to queue an armed item because of
/// its deadline (its timer's completion, a test clock's advance) commits through this before it
/// queues the item; decisions that do not depend on the deadline (cancel, flush, a forced fire)
/// need not. Returns: true: queue it; false: the deadline moved: read it and decide again.
/// Requires: mu of the queue ARMED names held. Memory ordering: acq_rel CAS on the deadline.
/// A move is a CAS on the same word that refuses the mark, so the deadline's modification
/// order decides: either this fails and sees the move's deadline, or the move fails, sees the
/// mark, and takes the locked path, which finds the item queued.
bool commit_expiry(delayed_work& dw, clock_point seen) noexcept;

/// Effects: takes the ARMED item `dw` off the armed list and clears ARMED (and IN_FLIGHT if
/// `wait_done`: the caller is its completing wait), leaving it for the caller to queue. Unless
/// `wait_done`, an item whose timer is on the application's io_context (it has an anchor) also
/// has its outstanding wait cancelled, so that it is no outstanding work there any more (its
/// completion follows with operation_aborted); on wq's timer thread the wait stays outstanding
/// for reuse. Requires: mu held, `dw` ARMED for `core`.
void disarm_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept;

/// Effects: takes every armed item off the armed list, cancels its outstanding wait (whose
/// completion then finds it not ARMED and lets go of it) and passes it to `sink(work&)`.
/// Returns: how many. Requires: mu held.
template <class Sink>
std::size_t cancel_armed_locked(queue_core* core, Sink&& sink) noexcept {
  std::size_t n = 0;
  while (!core->tm.armed.empty()) {
    work& w = core->tm.armed.front();
    core->tm.armed.pop_front();
    const state_t old = work_access::state(w).fetch_and(~st_armed, std::memory_order_acq_rel);
    if ((old & st_in_flight) != 0) {
      // Safety: only delayed items are ever on the armed list. Timer calls are serialised by the
      // target queue's mutex, held here, and by wait_starting (timer discipline).
      auto& dw = static_cast<delayed_work&>(w);
      wait_timer_idle(dw);
      work_access::timer(dw).cancel();
    }
    sink(w);
    ++n;
  }
  return n;
}

}  // namespace wq::detail
