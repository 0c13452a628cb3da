// SPDX-License-Identifier: BSL-1.0
// wq/detail/grab.hpp: taking a pending instance away from wherever it is (the kernel's
// try_to_grab_pending) and waiting for running instances. Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <chrono>
#include <cstdint>

namespace wq {
class work;  // wq/work.hpp (detail/ includes no public header)
}  // namespace wq

namespace wq::detail {

/// What grab_pending found. Either way the caller now owns the item's PENDING bit, and the
/// item is on no list and has no armed deadline.
enum class grab_result {
  idle,     ///< it was not pending (the caller set PENDING)
  pending,  ///< it was queued or armed; the queue's reference (if any) is still in the item
};

/// Where a grabbed pending instance was.
struct grab_info {
  std::uint64_t target = 0;  // in: the queue mod_delayed_work re-queues it on
  std::uint64_t queue = 0;   // out: the id of the queue it was queued or armed on
  bool armed = false;        // out: it was armed (not yet queued)
};

/// Steals the pending instance of `w` from its queue's lists or armed timer, waiting out the
/// short windows where another thread is queueing it or a worker is starting it. `cancelling`:
/// count it in the queue's `cancelled` statistic. mod_delayed_work passes false and `info`
/// (with its target queue): then an instance armed on the target is counted moving (one
/// instance in transit, stats() counts it armed), any other cancelled, under the same lock
/// that takes it off its list, so that no snapshot of the queue's counters misses it.
grab_result grab_pending(work& w, bool cancelling = true, grab_info* info = nullptr) noexcept;

/// Counts a moving instance of queue `id` (grab_pending's) as cancelled instead, if the queue
/// still exists: it was not armed or queued again.
void note_move_dropped(std::uint64_t id) noexcept;

/// mod_delayed_work's grab (the caller then owns PENDING, as with grab_pending), keeping the
/// statistics right: moving the deadline of an item already armed for the target queue keeps
/// its instance (`moved`: neither cancelled nor queued again); any other pending instance is
/// replaced, so it is counted cancelled on the queue it was on.
struct mod_grab {
  bool was_pending = false;
  bool moved = false;
  std::uint64_t from = 0;
  /// The kept instance did not survive after all (disabled, or the re-queue was refused).
  void dropped() const noexcept {
    if (moved) note_move_dropped(from);
  }
};
mod_grab grab_for_mod(work& w, std::uint64_t target) noexcept;

/// Blocks until `w` runs on no worker of any queue, ignoring the calling worker itself.
/// Returns false (after a warning) if the caller is running `w` itself.
bool wait_not_running(work& w) noexcept;

/// Adds one to the disable count (saturating with a warning). Returns the new count.
unsigned disable_inc(work& w) noexcept;
/// Subtracts one from the disable count (warning on underflow). Returns the new count.
unsigned disable_dec(work& w) noexcept;

}  // namespace wq::detail
