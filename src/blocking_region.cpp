// SPDX-License-Identifier: BSL-1.0
// wq::blocking_region (wq/blocking_region.hpp): a pool worker declares itself blocked.
#include <wq/blocking_region.hpp>

#include <wq/detail/core.hpp>
#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>

#include "worker_pool.hpp"

namespace wq {

blocking_region::blocking_region() noexcept : thread_(detail::this_pool_thread()) {
  if (thread_ == nullptr) return;
  // Safety: thread_ holds the calling thread's pool_thread record (set just above).
  auto* th = static_cast<detail::pool_thread*>(thread_);
  epoch_ = th->region_epoch;
  th->pool->enter_blocked(th);
}

blocking_region::~blocking_region() {
  if (thread_ == nullptr) return;
  detail::pool_thread* const th = detail::this_pool_thread();
  // Compared, never dereferenced, unless it is the calling thread's own live record: another
  // thread's record may be gone (its worker exited).
  if (static_cast<void*>(th) != thread_) {
    detail::report(errc::blocking_region_misuse,
                   "a blocking_region was destroyed on another "
                   "thread than the pool worker that opened it (held across a co_await?); the "
                   "pool closed it when its work item ended");
    return;
  }
  if (th->region_epoch != epoch_) return;  // closed (and reported) when its item ended
  th->pool->leave_blocked(th);
}

}  // namespace wq
