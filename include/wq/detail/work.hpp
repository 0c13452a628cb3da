// SPDX-License-Identifier: BSL-1.0
// wq/detail/work.hpp: what wq/work.hpp's inline code asks of the library: marking an item
// started or given up, the destructor's misuse check (defined in src/work.cpp), and the
// trampoline table of a C-style work function (defined in wq/impl/work.hpp). Nothing here is a
// user contract.
#pragma once

#include <wq/config.hpp>

namespace wq {
class work;  // wq/work.hpp (detail/ includes no public header)
}  // namespace wq

namespace wq::detail {

/// Clears `item`'s PENDING bit (the whole of `drop` for C-style items, which own nothing).
/// Thread safety: the caller owns the item's PENDING bit.
void clear_pending(work* item) noexcept;
/// Marks a dequeued item as started: clears PENDING and QUEUED (rule 2).
/// Thread safety: the worker that dequeued the item.
void begin_run(work* item) noexcept;
/// The destructor's misuse check: cancels a pending instance and waits for a function running
/// on another thread, reporting either (errc::destroyed_while_pending / _running).
void check_destroy(work& item) noexcept;

/// The work_ops of C-style work function `F` (wq::fn_ops<F>): runs `F` after begin_run; drops
/// with clear_pending. Defined in wq/impl/work.hpp.
template <void (*F)(work*) noexcept>
struct fn_ops_holder;

/// The one friend of the work types (wq/impl/work_access.hpp).
struct work_access;

}  // namespace wq::detail
