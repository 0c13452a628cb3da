// SPDX-License-Identifier: BSL-1.0
// The out-of-line part of wq/executor.hpp: which queue the calling thread works for, and the
// context a queue's executor reports.
#include <wq/executor.hpp>

#include <atomic>

#include "engine/queue_core.hpp"
#include "engine/run_records.hpp"

namespace wq::detail {

bool running_on(const queue_core* core) noexcept { return this_worker().core == core; }

boost::asio::execution_context& context_of(const queue_core* core) noexcept {
  // Relaxed, as every read of queue_core::context (see its declaration there).
  return *core->reg.context.load(std::memory_order_relaxed);
}

}  // namespace wq::detail
