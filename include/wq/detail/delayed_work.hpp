// SPDX-License-Identifier: BSL-1.0
// wq/detail/delayed_work.hpp: the timer a delayed item embeds and the context it runs on
// (timer_context is defined in src/delayed_work.cpp). Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <chrono>

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/wait_traits.hpp>

namespace wq::detail {

/// The timer type embedded in delayed items: bound to an io_context executor (8 bytes) instead
/// of any_io_executor (56 bytes), which is what keeps delayed_work under 160 bytes.
using item_timer =
    boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                      boost::asio::wait_traits<std::chrono::steady_clock>,
                                      boost::asio::io_context::executor_type>;

/// The io_context run by wq's internal timer thread (started on first use, never stopped).
boost::asio::io_context& timer_context();
/// Returns: the timer thread's io_context if timer_context() has started it, else nullptr (for
/// wq's own housekeeping, which must not start a thread). Thread safety: any thread; acquire
/// (pairs with the release that published the started context).
boost::asio::io_context* started_timer_context() noexcept;
/// Shared by an item on an application io_context and its outstanding timer wait, so the wait's
/// completion can tell that the item was destroyed (defined in src/engine/timers.hpp).
struct timer_anchor;

}  // namespace wq::detail
