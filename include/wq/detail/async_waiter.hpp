// SPDX-License-Identifier: BSL-1.0
// wq/detail/async_waiter.hpp: the engine side of the async operations (async_flush,
// async_drain, async_cancel_sync, async_destroy): a record registered with one or more queue
// cores and completed by the worker (or canceller) that makes its condition true, instead of a
// blocked thread. Nothing here is a user contract.
//
// Completion never happens under a queue mutex: the engine moves a satisfied waiter off its
// core's list into a `done_list` while holding the mutex, and completes the list after
// releasing it (the completion posts the user's handler, possibly to the same queue, whose
// mutex it then takes).
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

namespace wq {
class work;  // wq/work.hpp (detail/ includes no public header)
}  // namespace wq

namespace wq::detail {

struct queue_core;

struct async_waiter {
  enum class kind { flush, drain, item_idle, destroy };
  kind what = kind::flush;
  std::uint64_t epoch = 0;  // flush: wait for colors of epochs <= epoch
  work* item = nullptr;     // item_idle: wait until no worker of the core runs it
  // Called once per registration, after the registration left its core's list, never under a
  // wq mutex. Must not block.
  void (*complete)(async_waiter* self) noexcept = nullptr;
  bool bumped = false;  // flush: the queue's epoch has moved past `epoch`
  // destroy: the queue dropped items unrun (its context shut down first, D19), so the
  // operation completes with errc::executor_stopped. Written under the core's mutex when the
  // waiter leaves its list; read by whoever completes the operation (ordered by `remaining`).
  bool items_dropped = false;
  // Registrations still to complete, plus the initiator's. Incremented relaxed (under the
  // registering core's mutex, before the waiter can complete); decremented acq_rel, so the last
  // decrement sees every completer's writes.
  std::atomic<int> remaining{1};
  // Set by a canceller that withdrew at least one registration: the operation completes with
  // operation_aborted. Read by whoever completes it last (ordered by `remaining`).
  std::atomic<bool> aborted{false};
  // Cores this waiter was registered with (written by the initiator before the operation can
  // be cancelled; read by a canceller).
  std::vector<queue_core*> cores;
  async_waiter* next_done = nullptr;  // link in a done_list (owned by the list's holder)
};

/// Satisfied waiters collected under a queue mutex, completed after it is released.
/// Declare it before the lock in the same scope: the lock is released first, then the list
/// completes in its destructor (or earlier, with complete()).
class done_list {
 public:
  done_list() = default;
  done_list(const done_list&) = delete;
  done_list& operator=(const done_list&) = delete;
  ~done_list() { complete(); }

  /// Adds a waiter that has just left its core's list. Requires that core's mutex.
  void push(async_waiter* w) noexcept {
    w->next_done = head_;
    head_ = w;
  }
  /// Completes every waiter collected so far. Requires that no wq mutex is held.
  void complete() noexcept {
    while (head_ != nullptr) {
      async_waiter* w = head_;
      head_ = w->next_done;
      w->complete(w);  // may free w
    }
  }
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

 private:
  async_waiter* head_ = nullptr;
};

/// Registers an async queue flush (rule 26) on queue `id`; completes at once if nothing older
/// is in flight. Returns false (and does not register) if the queue is gone.
bool register_async_flush(queue_core* core, std::uint64_t id, async_waiter* w) noexcept;
/// Registers an async drain (rule 49): the queue counts as draining until it completes.
bool register_async_drain(queue_core* core, std::uint64_t id, async_waiter* w) noexcept;
/// Registers `w` (kind item_idle) with every queue whose workers run `w->item` now (except the
/// caller's own worker). Returns the number of registrations; complete() is called once for
/// each of them.
int register_async_item_idle(async_waiter* w) noexcept;
/// Withdraws `w` from the cores it is still registered with (cancellation), undoing what the
/// registration changed (a drain stops counting). Returns how many registrations it removed;
/// those will never complete. Thread safety: any thread not holding a wq mutex.
int withdraw_async(async_waiter* w) noexcept;

/// Drops the references `w`'s registrations hold on their cores (the last one frees a core
/// whose queue is gone). Call once, when the operation is over: no registration of it is
/// left and no canceller can call withdraw_async any more. Thread safety: the operation's
/// finisher, not holding a wq mutex.
void release_waiter_cores(async_waiter* w) noexcept;

}  // namespace wq::detail
