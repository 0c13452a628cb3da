// SPDX-License-Identifier: BSL-1.0
// wq/detail/cancel_link.hpp: per-operation cancellation for wq's asynchronous operations: the
// handler wq installs in a completion handler's cancellation slot, and the rendezvous that lets
// it act on an operation that may be completing on another thread at the same moment. Nothing
// here is a user contract.
//
// Asio emits a cancellation signal on the thread (or strand) of the operation's caller, but a
// wq operation completes on whatever thread makes it complete: a worker running the awaited
// item, a timer completion, a canceller. Asio's slots are not safe to clear concurrently with an
// emit, so wq never clears the slot: the handler it installs (`cancel_link`, living in the
// slot's own storage) holds one atomic word naming the operation, and
//   - the canceller pins the operation by setting the BUSY bit (if the word still names it),
//     tries to withdraw it, then either clears the word (it completes the operation itself, as
//     aborted) or unpins it (the operation was already completing);
//   - the completion path detaches before freeing the operation: it swaps the word to 0,
//     waiting while a canceller holds it pinned (the canceller never waits for the completion
//     path, so the wait is short and cannot deadlock).
// After the detach nothing of wq touches the link again; a later emit finds the word 0.
//
// Thread safety: as described; `cancel_link` is touched by exactly one canceller at a time
// (Asio serialises emits on one signal) and one completion path.
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <cstdint>
#include <thread>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>

namespace wq::detail {

/// What an operation does when a cancellation reaches it (implemented per operation type).
struct cancellable {
  /// Tries to withdraw the operation from the engine. Returns true if the caller (the
  /// canceller) now owns its completion and must complete it as aborted (after clearing the
  /// link), false if it is already completing elsewhere. Called with the operation pinned.
  bool (*withdraw)(cancellable* self) noexcept = nullptr;
  /// Completes a withdrawn operation with operation_aborted. Called after the link is cleared.
  void (*abort)(cancellable* self) noexcept = nullptr;
};

/// The handler wq emplaces in a cancellation slot.
class cancel_link {
 public:
  cancel_link(cancellable* op, boost::asio::cancellation_type_t accepted) noexcept
      // Safety: the pointer is stored as an integer so its low bit can mark "pinned";
      // cancellable objects are at least 2-byte aligned.
      : word_(reinterpret_cast<std::uintptr_t>(op)), accepted_(accepted) {}
  cancel_link(const cancel_link&) = delete;
  cancel_link& operator=(const cancel_link&) = delete;

  /// Called by the cancellation signal's emit.
  void operator()(boost::asio::cancellation_type_t type) noexcept {
    if ((type & accepted_) == boost::asio::cancellation_type::none) return;
    // Safety (acquire): pairs with the release that published the operation (the initiation)
    // and with an earlier canceller's unpin.
    std::uintptr_t w = word_.load(std::memory_order_acquire);
    do {
      if (w == 0 || (w & busy) != 0) return;  // completed, or being cancelled already
    } while (!word_.compare_exchange_weak(w, w | busy, std::memory_order_acq_rel,
                                          std::memory_order_acquire));
    // Safety: pinned: the completion path waits in detach() before freeing the operation.
    auto* op = reinterpret_cast<cancellable*>(w);
    if (op->withdraw(op)) {
      // Safety (release): after this store the operation belongs to this thread alone; nobody
      // reads the word again but a later emit, which finds 0.
      word_.store(0, std::memory_order_release);
      op->abort(op);
    } else {
      word_.store(w, std::memory_order_release);  // unpin: let the completion path go on
    }
  }

  /// Detaches the operation before it completes normally. Waits while a canceller has it
  /// pinned (a canceller only takes locks and returns; it never waits for this thread).
  /// Returns false if a canceller had already withdrawn it (then the canceller completes it).
  bool detach() noexcept {
    std::uintptr_t w = word_.load(std::memory_order_acquire);
    for (unsigned spins = 0;; ++spins) {
      if (w == 0) return false;
      if ((w & busy) != 0) {
        if (spins > 64) std::this_thread::yield();
        w = word_.load(std::memory_order_acquire);
        continue;
      }
      // Safety (acq_rel): acquire the canceller's unpin (its accesses happen before ours).
      if (word_.compare_exchange_weak(w, 0, std::memory_order_acq_rel, std::memory_order_acquire))
        return true;
    }
  }

 private:
  static constexpr std::uintptr_t busy = 1;
  std::atomic<std::uintptr_t> word_;  // the operation (| busy while a canceller holds it), or 0
  boost::asio::cancellation_type_t accepted_;
};

/// Installs a cancel_link for `op` in `slot` if the slot is connected. Returns the link (to
/// detach later) or nullptr.
template <class Slot>
cancel_link* connect_cancel(Slot slot, cancellable* op, boost::asio::cancellation_type_t accepted) {
  if (!slot.is_connected()) return nullptr;
  return &slot.template emplace<cancel_link>(op, accepted);
}

}  // namespace wq::detail
