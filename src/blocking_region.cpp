// SPDX-License-Identifier: BSL-1.0
// wq::blocking_region (wq/blocking_region.hpp): a pool worker declares itself blocked.
#include <wq/blocking_region.hpp>

#include "worker_pool.hpp"

namespace wq {

blocking_region::blocking_region() noexcept : thread_(detail::this_pool_thread()) {
  if (thread_ == nullptr) return;
  // Safety: thread_ holds the calling thread's pool_thread record (set just above).
  auto* th = static_cast<detail::pool_thread*>(thread_);
  th->pool->enter_blocked(th);
}

blocking_region::~blocking_region() {
  if (thread_ == nullptr) return;
  // Safety: as in the constructor; the record lives as long as its thread.
  auto* th = static_cast<detail::pool_thread*>(thread_);
  th->pool->leave_blocked(th);
}

}  // namespace wq
