// SPDX-License-Identifier: BSL-1.0
// The completion gate: see wq/detail/completion_gate.hpp. The gate is a context's watch list
// (context_watch.hpp), whose service closes it at the context's shutdown.
#include <wq/detail/completion_gate.hpp>

#include <atomic>

#include "context_watch.hpp"

namespace wq::detail {

std::shared_ptr<watch_list> context_gate(boost::asio::execution_context& ctx) {
  return watch_list_of(ctx);
}

bool enter_context_gate(watch_list& gate) noexcept {
  // Safety (seq_cst): count, then load the flag; the shutdown stores the flag, then loads the
  // count. Either this sees the context closed, or the shutdown sees this hand-off and waits.
  gate.handing_off.fetch_add(1, std::memory_order_seq_cst);
  if (!gate.closed.load(std::memory_order_seq_cst)) return true;
  gate.handing_off.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

void leave_context_gate(watch_list& gate) noexcept {
  // Safety (seq_cst, so also release): every touch of the context inside happens before the
  // shutdown's load that sees the count drop.
  gate.handing_off.fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace wq::detail
