// SPDX-License-Identifier: BSL-1.0
// The public cancel and disable functions (wq/cancel.hpp), built on the grab of
// src/grab.cpp.
#include <wq/cancel.hpp>

#include <thread>

#include <wq/detail/diagnostics.hpp>
#include <wq/detail/grab.hpp>
#include <wq/diagnostics.hpp>
#include <wq/impl/claim.hpp>

namespace wq {

bool cancel_work(work& item) noexcept {
  if (detail::grab_pending(item) == detail::grab_result::idle) {
    detail::unclaim_pending(item);
    return false;
  }
  // drop() takes the queue's reference out, clears PENDING, then releases the reference.
  detail::work_access::ops(item).load(std::memory_order_relaxed)->drop(&item);
  return true;
}

bool cancel_work_sync(work& item) noexcept {
  detail::disable_inc(item);
  const bool was_pending = cancel_work(item);
  detail::wait_not_running(item);
  detail::disable_dec(item);
  return was_pending;
}

bool disable_work(work& item) noexcept {
  detail::disable_inc(item);
  return cancel_work(item);
}

bool disable_work_sync(work& item) noexcept {
  const bool was_pending = disable_work(item);
  detail::wait_not_running(item);
  return was_pending;
}

bool enable_work(work& item) noexcept { return detail::disable_dec(item) == 0; }

bool enable_and_queue_work(workqueue& queue, work& item) noexcept {
  const work_ops* ops = detail::work_access::ops(item).load(std::memory_order_relaxed);
  if (ops != nullptr && ops->owning) {
    detail::report(errc::untyped_on_owning_item,
                   "enable_and_queue_work: item enabled but not queued; use enable_work and the "
                   "typed enqueue");
    enable_work(item);
    return false;
  }
  if (!enable_work(item)) return false;
  const queue_status st = queue.queue(item);
  return st == queue_status::queued || st == queue_status::already_pending;
}

}  // namespace wq
