// SPDX-License-Identifier: BSL-1.0
// wq/detail/executor.hpp: what queue_executor (wq/executor.hpp) asks of the engine: whether
// the calling thread runs one of a core's workers, the core's execution context, and
// submitting a function as a work item (defined in wq/impl/executor.hpp). Defined in
// src/executor.cpp; nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <cstdint>

#include <boost/asio/execution_context.hpp>

namespace wq::detail {

struct queue_core;

/// Returns whether the calling thread runs a worker of queue core `core`.
/// Thread safety: any thread; `core` is referenced by the caller.
bool running_on(const queue_core* core) noexcept;

/// Returns the execution context of the queue that owns (or last owned) `core`.
/// Thread safety: any thread; `core` is referenced by the caller.
boost::asio::execution_context& context_of(const queue_core* core) noexcept;

/// Boxes `f` in a work item and queues it on core `core` (id `id`); destroys it unrun if the
/// queue refuses it (destroyed). Throws: std::bad_alloc (nothing queued). Defined in
/// wq/impl/executor.hpp.
template <class F>
void submit(queue_core* core, std::uint64_t id, F&& f);

}  // namespace wq::detail
