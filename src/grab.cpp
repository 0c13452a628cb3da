// SPDX-License-Identifier: BSL-1.0
// Grabbing a pending instance (the kernel's try_to_grab_pending), waiting for a running one,
// the disable count, and re-queueing what was grabbed: see wq/detail/grab.hpp.
#include <wq/detail/grab.hpp>

#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>
#include <wq/impl/claim.hpp>

#include "engine/backoff.hpp"
#include "engine/counters.hpp"
#include "engine/lifecycle.hpp"
#include "engine/queue_core.hpp"
#include "engine/registry.hpp"
#include "engine/run_records.hpp"
#include "engine/waiters.hpp"
#include "engine/workers.hpp"

namespace wq::detail {

grab_result grab_pending(work& w, bool cancelling, grab_info* info) noexcept {
  auto& st = work_access::state(w);
  for (unsigned spins = 0;; ++spins) {
    state_t s = st.load(std::memory_order_acquire);
    if ((s & st_pending) == 0) {
      // Safety (acq_rel): as claim_pending; the caller becomes the owner of PENDING.
      if (st.compare_exchange_weak(s, s | st_pending, std::memory_order_acq_rel,
                                   std::memory_order_relaxed))
        return grab_result::idle;
      continue;
    }
    if ((s & (st_queued | st_armed | st_intake)) != 0) {
      if (const core_pin pin = lookup_core(queue_id_of(s))) {
        queue_core* core = pin.get();
        done_list done;  // completed after lk is released
        std::unique_lock lk(core->mu);
        // An item on the intake becomes QUEUED once the intake is taken. (If it is still
        // INTAKE after this, its producer has not pushed it yet: look again shortly.)
        if ((s & st_intake) != 0 && queue_id_of(s) == core->id()) start_workers_locked(core);
        s = st.load(std::memory_order_acquire);
        if ((s & (st_queued | st_armed)) != 0 && queue_id_of(s) == core->id()) {
          if (unlink_locked(core, w, s, cancelling, done)) {
            if (info != nullptr) {
              info->queue = core->id();
              info->armed = (s & st_armed) != 0;
              if (info->armed && info->queue == info->target)
                note_moving_locked(core->stats);  // a deadline move: one instance, in transit
              else
                note_cancelled_locked(core->stats);  // another instance replaces it
            }
            return grab_result::pending;
          }
          // Its worker took it ahead and has just taken it to run it: it is starting.
          lk.unlock();
          backoff(spins);
          continue;
        }
      }
      if ((s & st_intake) != 0) backoff(spins);
      continue;  // moved meanwhile: look again
    }
    // PENDING alone: being queued by another thread, started by a worker, or held by another
    // canceller. Each window is short and ends without waiting for us.
    backoff(spins);
  }
}

bool wait_not_running(work& w) noexcept {
  const worker_context& me = this_worker();
  bool self = me.current == &w;
  if (self) {
    report(errc::cancel_sync_self,
           "cancel_*_sync/disable_*_sync from the item's own work function cannot wait for "
           "itself: pending instance cancelled, running one (the caller) not waited for");
  }
  // An item may last have run on any queue (rules 12, 29: it may have been moved). The run
  // records name the queue of every run they show, so only those queues are looked at:
  // O(threads that ever ran an item), not O(queues ever created). Runs the records cannot show
  // (hidden_runs: a thread without a record, an outer item while a nested one runs) fall back to
  // every queue in use, O(live queues), while one exists or begins or ends meanwhile.
  auto look_at = [&](queue_core* core) {
    std::unique_lock lk(core->mu);
    if (!core->reg.live) return;
    auto running = [&] {
      for (auto& slot : core->wk.slots)
        if (slot.active && slot.running() == &w && &slot != me.slot) return true;
      return false;
    };
    if (!running()) return;
    // A refused wait (a cycle of items waiting for each other, ...) is reported: the running
    // instance is then not waited for, as from the item itself.
    (void)wait_until(core, lk, {wait_target::kind::running, core, &w}, blocked_kind::item,
                     "cancel_*_sync", [&] { return !running(); });
  };
  // Safety (seq_cst): the hidden-run word before and after the records. A run that hid from
  // the records while they were read was counted before it hid and uncounted after it showed
  // again, so the two loads differ or show a count: then every queue is looked at.
  const std::uint64_t before = hidden_runs().load(std::memory_order_seq_cst);
  for (const run_record* r = first_run_record(); r != nullptr; r = r->next) {
    // Safety (acquire): pairs with run_one's release stores of `item`, after its `core_index`.
    if (r->item.load(std::memory_order_acquire) != &w) continue;
    // Safety (acquire): the run may end between the two loads; `core_index` may then show the
    // queue of what the thread ran before (or none), stored with release after the run, so
    // skipping it still sees the run's effects (run_record). Otherwise look_at locks the
    // queue that ran it (a worker running keeps it from being freed, so the pin holds).
    const std::uint32_t index = r->core_index.load(std::memory_order_acquire);
    if (const core_pin pin = pin_core(index)) look_at(pin.get());
  }
  const std::uint64_t after = hidden_runs().load(std::memory_order_seq_cst);
  if (before != after || hidden_count(after) != 0)
    for_each_core([&](queue_core* core) { look_at(core); });
  return !self;
}

unsigned disable_inc(work& w) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  for (;;) {
    if (disable_count(s) == disable_max) {
      report(errc::disable_count_overflow, "disable ignored (rule 34)");
      return static_cast<unsigned>(disable_max);
    }
    // Safety (acq_rel): a later claim_pending reads the count in the same RMW chain.
    if (st.compare_exchange_weak(s, s + disable_one, std::memory_order_acq_rel,
                                 std::memory_order_relaxed))
      return static_cast<unsigned>(disable_count(s) + 1);
  }
}

unsigned disable_dec(work& w) noexcept {
  auto& st = work_access::state(w);
  state_t s = st.load(std::memory_order_relaxed);
  for (;;) {
    if (disable_count(s) == 0) {
      report(errc::disable_count_underflow,
             "enable of an item that is not disabled ignored (rule 34)");
      return 0;
    }
    if (st.compare_exchange_weak(s, s - disable_one, std::memory_order_acq_rel,
                                 std::memory_order_relaxed))
      return static_cast<unsigned>(disable_count(s) - 1);
  }
}

mod_grab grab_for_mod(work& w, std::uint64_t target) noexcept {
  grab_info info;
  info.target = target;
  mod_grab g;
  g.was_pending = grab_pending(w, false, &info) == grab_result::pending;
  g.moved = g.was_pending && info.armed && info.queue == target;
  g.from = info.queue;
  return g;
}

void note_move_dropped(std::uint64_t id) noexcept {
  const core_pin pin = lookup_core(id);  // outlives lk (declared first)
  queue_core* core = pin.get();
  if (core == nullptr) return;
  std::lock_guard lk(core->mu);
  if (core->id() == id && core->reg.live) note_move_dropped_locked(core->stats);
}

}  // namespace wq::detail
