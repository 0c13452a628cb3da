// SPDX-License-Identifier: BSL-1.0
// src/wait_graph.hpp: blocking waits that never hang silently (private to the library).
//
// Every blocking wait of wq (flush, drain, destroy, flush_work, flush_delayed_work, the _sync
// cancels) goes through wait_until(), which either returns once the awaited condition holds or
// refuses, reporting why, within bounded time:
//   - wait cycles between running items (the kernel's lockdep): a thread running a work item
//     that is about to block registers what it waits for in a process-wide wait graph; if the
//     awaited thing cannot make progress without the caller (directly, or through other blocked
//     items and queues), the wait is refused at once (errc::wait_cycle);
//   - a paused queue whose queued items the wait needs, and that stays paused for the wait
//     limit (another thread may resume it meanwhile) (errc::wait_on_paused_queue);
//   - an executor that does not run the queue's workers: its io_context is stopped
//     (errc::executor_stopped), or no worker posted to it started for the wait limit
//     (errc::executor_not_running: nobody runs it, or only the waiting thread would).
//
// The graph. Nodes are threads running items (their run_record) and targets: a queue (all its
// running items must finish: AND), an item (if running, its threads: AND; if queued, a free
// worker slot, or else any running item of its queue finishing: OR) and an item's running
// instances (AND). A waiter's registration (run_record::waiting) is guarded by the graph mutex,
// which is taken before any queue mutex and never by a thread holding one. The evaluation reads
// each queue's slots under that queue's mutex, one queue at a time. A cycle can only close when
// a thread blocks, and the thread that closes it sees every other edge (each registered under
// the graph mutex), so the last one in is refused and the others proceed.
//
// Thread safety: as above. Not a user contract.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <type_traits>

#include <wq/diagnostics.hpp>
#include <wq/work.hpp>

#include "core_mutex.hpp"

namespace wq::detail {

struct queue_core;
struct run_record;
enum class blocked_kind : std::uint8_t;  // engine/queue_core.hpp

/// What a blocked thread waits for.
struct wait_target {
  enum class kind {
    none,     ///< not waiting
    queue,    ///< every item in flight on `core` (flush, drain, destroy)
    item,     ///< `item`'s instance on `core`, queued or running (flush_work)
    running,  ///< `item`'s running instances on `core` (the _sync cancels)
  };
  kind what = kind::none;
  queue_core* core = nullptr;
  const work* item = nullptr;
};

/// Registers the calling thread's wait in the graph for as long as it lives (only threads that
/// run a work item can close a cycle, so only they register).
class wait_registration {
 public:
  wait_registration() = default;
  wait_registration(const wait_registration&) = delete;
  wait_registration& operator=(const wait_registration&) = delete;
  ~wait_registration();

  /// Registers `t`, unless waiting for it would close a cycle. Returns false (and registers
  /// nothing) if it would. Threads not running an item register nothing and return true.
  /// Requires that the caller holds no queue mutex.
  bool enter(const wait_target& t) noexcept;
  /// Ends the registration, if any. Requires that the caller holds no queue mutex.
  void leave() noexcept;
  [[nodiscard]] bool registered() const noexcept { return rec_ != nullptr; }

 private:
  run_record* rec_ = nullptr;  // registered as waiting, or nullptr
};

/// Bookkeeping of one blocking wait's progress checks.
class stuck_detector {
 public:
  explicit stuck_detector(queue_core* core) noexcept;
  /// Returns why the wait cannot finish (errc{} if it may). Requires core->mu.
  errc check(const wait_target& t) noexcept;
  /// How long to sleep on the queue's condition variable before the next check.
  [[nodiscard]] std::chrono::milliseconds slice() const noexcept;

 private:
  queue_core* core_;
  std::uint32_t starts_;                                // handler starts seen at the last check
  std::uint64_t pool_mark_ = 0;                         // its shared pool's progress mark, ditto
  std::chrono::steady_clock::time_point since_;         // ... and when they last changed
  std::chrono::steady_clock::time_point paused_since_;  // last check that found it running
};

/// Reports a refused wait (`why`) of operation `op` on queue `core`. Requires core->mu (for the
/// queue's name); the diagnostic handler must not call back into wq.
void report_refused_wait(errc why, const char* op, const queue_core* core) noexcept;

/// Blocks (blocked_wait, engine/waiters.hpp, as waiting for `kind`: which changes wake it),
/// with core->mu held through `lk`, until `done(arg)` holds. Returns errc{} then, or the reason it
/// refused (already reported, naming `op`); see the file comment. `lk` may be released and
/// re-acquired in between (to register in the wait graph). With `report` false a refusal is
/// returned without being reported (the caller reports it).
errc wait_until_impl(queue_core* core, core_lock& lk, const wait_target& t, blocked_kind kind,
                     const char* op, bool (*done)(void* arg), void* arg,
                     bool report = true) noexcept;

/// wait_until_impl with any callable `done()`.
template <class Done>
errc wait_until(queue_core* core, core_lock& lk, const wait_target& t, blocked_kind kind,
                const char* op, Done done, bool report = true) noexcept {
  return wait_until_impl(
      core, lk, t, kind, op, [](void* p) { return static_cast<bool>((*static_cast<Done*>(p))()); },
      static_cast<void*>(&done), report);
}

}  // namespace wq::detail
