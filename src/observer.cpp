// SPDX-License-Identifier: BSL-1.0
// The out-of-line part of wq/observer.hpp: an item's name.
#include <wq/observer.hpp>

#include <atomic>

#include <wq/impl/work_access.hpp>
#include <wq/work.hpp>

namespace wq {

const char* work_name(const work& item) noexcept {
  // Safety (relaxed): the ops pointer points at static storage and is rebound only to ops of
  // the same member; any value read names the item correctly.
  const work_ops* ops = detail::work_access::ops(item).load(std::memory_order_relaxed);
  return ops != nullptr ? ops->name : "unbound";
}

}  // namespace wq
