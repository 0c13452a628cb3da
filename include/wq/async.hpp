// SPDX-License-Identifier: BSL-1.0
// wq/async.hpp: the blocking waits as Asio asynchronous operations, so an Asio thread never
// has to block: async_flush (rule 26), async_drain (rule 49) and async_cancel_sync (rules 29,
// 32), taking any completion token (a callback, use_future, use_awaitable, deferred, ...).
//
// Each completes with the same guarantee as its blocking form, established when the handler
// is invoked. Handlers are invoked through their associated executor (as asio::post would),
// never inside the initiating call; the initiating call does not block.
//
//   async_flush(queue, token)            signature void(): every item queued or running on
//                                        the queue when the call was made has finished.
//   async_drain(queue, token)            signature void(): the queue has no queued or running
//                                        items; it counts as draining until then (outside
//                                        queueing is rejected).
//   async_cancel_sync(item, token)       signature void(bool was_pending): the item is neither
//                                        pending nor running anywhere (it stays disabled until
//                                        then, so self-requeues fail).
//
// Thread safety: callable from any thread, including from work items (an async flush of the
// caller's own queue is fine: it completes after the caller's item and its older peers).
// Lifetime: the queue or item must outlive the operation.
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <memory>
#include <tuple>
#include <utility>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/system_executor.hpp>

#include <wq/cancel.hpp>
#include <wq/detail/async_waiter.hpp>
#include <wq/detail/grab.hpp>
#include <wq/workqueue.hpp>

namespace wq {
namespace detail {

/// An async waiter carrying the user's completion handler and its arguments.
template <class Handler, class... Args>
struct async_op : async_waiter {
  using executor_type = boost::asio::associated_executor_t<Handler, boost::asio::system_executor>;
  using work_guard = std::decay_t<decltype(boost::asio::prefer(
      std::declval<executor_type>(), boost::asio::execution::outstanding_work.tracked))>;

  Handler handler;
  work_guard guard;  // keeps the handler's executor's context alive while we wait
  std::tuple<Args...> args;
  work* reenable = nullptr;  // async_cancel_sync: enable this item before completing

  explicit async_op(Handler&& h)
      : handler(std::move(h)),
        guard(boost::asio::prefer(
            boost::asio::get_associated_executor(handler, boost::asio::system_executor()),
            boost::asio::execution::outstanding_work.tracked)) {
    complete = &on_complete;
  }

  static async_op* create(Handler&& h) {
    using alloc_t = typename std::allocator_traits<
        boost::asio::associated_allocator_t<Handler>>::template rebind_alloc<async_op>;
    alloc_t a(boost::asio::get_associated_allocator(h));
    async_op* p = std::allocator_traits<alloc_t>::allocate(a, 1);
    try {
      ::new (static_cast<void*>(p)) async_op(std::move(h));
    } catch (...) {
      std::allocator_traits<alloc_t>::deallocate(a, p, 1);
      throw;
    }
    return p;
  }

  /// Drops one registration; the last one posts the handler and frees the operation.
  void release() noexcept {
    // Safety (acq_rel): the last decrement sees every earlier registration's effects.
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (reenable != nullptr) disable_dec(*reenable);
    using alloc_t = typename std::allocator_traits<
        boost::asio::associated_allocator_t<Handler>>::template rebind_alloc<async_op>;
    alloc_t a(boost::asio::get_associated_allocator(handler));
    Handler h(std::move(handler));
    auto ex = std::move(guard);
    std::tuple<Args...> out(std::move(args));
    this->~async_op();
    std::allocator_traits<alloc_t>::deallocate(a, this, 1);
    boost::asio::post(ex, [h = std::move(h), out = std::move(out)]() mutable {
      std::apply(std::move(h), std::move(out));
    });
  }

  static void on_complete(async_waiter* w) noexcept { static_cast<async_op*>(w)->release(); }
};

}  // namespace detail

namespace detail {
/// The initiation shared by async_flush and async_drain: a waiter of kind `What` registered
/// with `queue`'s core by `Register`.
template <async_waiter::kind What, auto Register, class CompletionToken>
auto async_queue_wait(workqueue& queue, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void()>(
      [&queue](auto handler) {
        using op_t = async_op<decltype(handler)>;
        op_t* op = op_t::create(std::move(handler));
        op->what = What;
        // A registration holds its own count; if the queue is gone there is nothing to wait
        // for. Either way drop the initiator's count: the last one posts the handler.
        (void)Register(queue_access::core(queue), queue_access::id(queue), op);
        op->release();
      },
      token);
}
}  // namespace detail

/// Starts an asynchronous flush of `queue` (rule 26); completes with signature void().
template <class CompletionToken>
auto async_flush(workqueue& queue, CompletionToken&& token) {
  return detail::async_queue_wait<detail::async_waiter::kind::flush,
                                  &detail::register_async_flush>(
      queue, std::forward<CompletionToken>(token));
}

/// Starts an asynchronous drain of `queue` (rule 49); completes with signature void().
template <class CompletionToken>
auto async_drain(workqueue& queue, CompletionToken&& token) {
  return detail::async_queue_wait<detail::async_waiter::kind::drain,
                                  &detail::register_async_drain>(
      queue, std::forward<CompletionToken>(token));
}

/// Cancels `item` and completes (signature void(bool was_pending)) once it is neither pending
/// nor running anywhere (rules 29, 32).
template <class CompletionToken>
auto async_cancel_sync(work& item, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(bool)>(
      [&item](auto handler) {
        using op_t = detail::async_op<decltype(handler), bool>;
        op_t* op = op_t::create(std::move(handler));
        op->what = detail::async_waiter::kind::item_idle;
        op->item = &item;
        detail::disable_inc(item);  // self-requeues fail until the operation completes
        op->reenable = &item;
        std::get<0>(op->args) = cancel_work(item);
        // Each registration adds to op->remaining before it can complete.
        (void)detail::register_async_item_idle(op);
        op->release();  // drop the initiator's own registration
      },
      token);
}

}  // namespace wq
