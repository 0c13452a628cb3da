// SPDX-License-Identifier: BSL-1.0
// wq/queue_status.hpp: `queue_status`, the outcome of a queueing call, and `enqueue_result<P>`,
// what the typed `enqueue` returns: the outcome plus the owning pointer when the queue did not
// take it (Rust's `Err(pointer)`).
//
// Thread safety: plain values.
#pragma once

#include <wq/config.hpp>

#include <utility>

namespace wq {

/// Why a queueing call did or did not queue the item.
enum class queue_status {
  /// Queued (or armed): the item will run once, unless cancelled. The kernel's `true`.
  queued,
  /// The item was already pending; nothing changed (rule 1). The pending instance has not
  /// started yet and will observe every write made before the call (rule 7), unless a cancel
  /// of the item running at the same moment removes it (a cancel holds even an idle item for
  /// an instant, as the kernel's does; rule 1 says what follows).
  already_pending,
  /// The item's disable count is non-zero (rule 16): a `disable_*` of it, or a `cancel_*_sync`
  /// of it in progress on another thread, which holds the item disabled until it returns (as the
  /// kernel's does), so a producer racing a cancel_sync is told `disabled` though it disabled
  /// nothing.
  disabled,
  /// The queue refused the item: it is draining and the call is not chained from one of its own
  /// items, or it is being destroyed, or it has been destroyed. The kernel drops such an item
  /// and returns true (rule 17); wq reports it and hands ownership back instead, so nothing is
  /// lost silently.
  rejected,
  /// The item has no work function (C-style `queue_work` on an item built without one).
  unbound,
  /// The typed call was given a null or moved-from pointer: nothing was queued, and the
  /// misuse is reported (errc::null_pointer).
  null_pointer,
};

/// Returns a short lower-case name of `s`, e.g. "already_pending".
constexpr const char* to_string(queue_status s) noexcept {
  switch (s) {
    case queue_status::queued: return "queued";
    case queue_status::already_pending: return "already_pending";
    case queue_status::disabled: return "disabled";
    case queue_status::rejected: return "rejected";
    case queue_status::unbound: return "unbound";
    case queue_status::null_pointer: return "null_pointer";
  }
  return "unknown";
}

/// The result of a typed `enqueue`: the outcome and, unless the item was queued, the caller's
/// owning pointer handed back (never leaked, never released twice).
///
/// Contextually converts to true iff the item was queued, like the kernel's return value.
template <class Pointer>
struct [[nodiscard]] enqueue_result {
  queue_status status;
  /// Empty (or null) when queued; otherwise the pointer passed to enqueue.
  Pointer pointer;

  [[nodiscard]] bool queued() const noexcept { return status == queue_status::queued; }
  explicit operator bool() const noexcept { return queued(); }
};

}  // namespace wq
