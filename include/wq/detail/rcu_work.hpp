// SPDX-License-Identifier: BSL-1.0
// wq/detail/rcu_work.hpp: what the header-only rcu_work needs from the compiled library
// (defined in src/rcu_work.cpp). It names nothing of liburcu, so libwq does not depend on it.
// Nothing here is a user contract; wq/rcu_work.hpp is.
#pragma once

#include <wq/config.hpp>

namespace wq {
class delayed_work;  // wq/delayed_work.hpp
}  // namespace wq

namespace wq::detail {

/// Effects: if `item` is armed, takes it off its queue's armed list and queues it there now,
/// as its timer firing would (the outstanding timer wait then finds it no longer armed); if it
/// is not armed (idle, already queued or running, or cancelled when its queue was destroyed),
/// does nothing. Never blocks beyond the queue's mutex and never waits for the item.
/// Returns: whether the item was armed and is now queued.
/// Thread safety: any thread, including one that is not wq's (an RCU callback thread); takes
/// the mutex of the queue the item is armed on. Memory ordering: the item's state word is read
/// with acquire and re-read under the queue's mutex before it is trusted.
/// Complexity: O(1).
bool fire_armed_now(delayed_work& item) noexcept;

}  // namespace wq::detail
