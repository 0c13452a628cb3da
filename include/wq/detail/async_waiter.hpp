// SPDX-License-Identifier: BSL-1.0
// wq/detail/async_waiter.hpp: the engine side of the async operations (async_flush,
// async_drain, async_cancel_sync): a record registered with a queue core and completed by the
// worker (or canceller) that makes its condition true, instead of a blocked thread. Nothing
// here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <cstdint>

#include <wq/work.hpp>

namespace wq::detail {

struct queue_core;

struct async_waiter {
  enum class kind { flush, drain, item_idle };
  kind what = kind::flush;
  std::uint64_t epoch = 0;  // flush: wait for colors of epochs <= epoch
  work* item = nullptr;     // item_idle: wait until no worker of the core runs it
  // Called once per core the record was registered with, under that core's mutex, when the
  // condition holds there. Must not block or call back into wq.
  void (*complete)(async_waiter* self) noexcept = nullptr;
  bool bumped = false;           // flush: the queue's epoch has moved past `epoch`
  std::atomic<int> remaining{1};  // registrations still to complete, plus the initiator's
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

}  // namespace wq::detail
