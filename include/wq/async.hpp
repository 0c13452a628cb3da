// SPDX-License-Identifier: BSL-1.0
// wq/async.hpp: the blocking waits as Asio asynchronous operations, so an Asio thread never
// has to block: async_flush (rule 26), async_drain (rule 49), async_cancel_sync (rules 29, 32)
// and async_destroy (rule 50), taking any completion token (a callback, use_future,
// use_awaitable, deferred, ...).
//
// Each completes with the same guarantee as its blocking form, established when the handler
// is invoked, or with `asio::error::operation_aborted` if it was cancelled first:
//
//   async_flush(queue, token)         void(error_code): every item queued or running on the
//                                     queue when the call was made has finished.
//   async_drain(queue, token)         void(error_code): the queue has no queued or running
//                                     items; it counts as draining until then (outside
//                                     queueing is rejected).
//   async_cancel_sync(item, token)    void(error_code, bool was_pending): the item is neither
//                                     pending nor running anywhere (it stays disabled until
//                                     then, so self-requeues fail). The cancellation itself
//                                     happens in the initiating call.
//   async_destroy(queue, token)       void(error_code): the queue is destroyed (rule 50): its
//                                     items and their chains have run, it accepts nothing
//                                     more, and nothing of it runs afterwards (a handler bound
//                                     to the queue's own executor, or a coroutine running on
//                                     it, runs as its last item). The initiating call refuses
//                                     outside queueing and cancels armed items at once; the
//                                     queue object may be destroyed right after the call (its
//                                     destructor then neither waits nor reports; a destroy()
//                                     waits for the background destruction to finish).
//
// Asio's conventions, all kept:
//   - Handlers run through their associated executor (default: the system executor, a thread
//     of Asio's own; bind your io_context with asio::bind_executor), as if by asio::post: never
//     inside the initiating call, never under a wq lock, so a handler may be bound to the
//     queue's own executor (or be a coroutine running on the queue).
//   - While an operation is outstanding, its handler's executor has outstanding work (a
//     tracked copy of it is held), so that executor's run() does not return early.
//   - Per-operation cancellation: each operation honours the cancellation slot associated with
//     its handler (asio::bind_cancellation_slot, the awaitable operators `||`, ...) and then
//     completes with operation_aborted, unless it had already completed. Supported types:
//       async_flush        terminal, partial, total (cancelling only stops the waiting);
//       async_drain        terminal, partial (the queue stops draining; it rejected outside
//                          queueing meanwhile);
//       async_cancel_sync  terminal, partial (the item stays cancelled; it is re-enabled, and
//                          may still be running);
//       async_destroy      terminal (the destruction goes on in the background).
//
// Thread safety: callable from any thread, including from work items (an async flush of the
// caller's own queue is fine: it completes after the caller's item and its older peers).
// Lifetime: the queue (for async_flush, async_drain) or item (async_cancel_sync) must outlive
// the operation; async_destroy needs the queue object only during the initiating call.
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <memory>
#include <tuple>
#include <utility>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/error_code.hpp>

#include <wq/cancel.hpp>
#include <wq/detail/async_waiter.hpp>
#include <wq/detail/cancel_link.hpp>
#include <wq/detail/grab.hpp>
#include <wq/executor.hpp>
#include <wq/workqueue.hpp>

namespace wq {
namespace detail {

/// An async waiter carrying the user's completion handler and the values it completes with
/// after the error_code.
template <class Handler, class... Args>
struct async_op final : async_waiter, cancellable {
  using executor_type = boost::asio::associated_executor_t<Handler, boost::asio::system_executor>;
  using work_guard = std::decay_t<decltype(boost::asio::prefer(
      std::declval<executor_type>(), boost::asio::execution::outstanding_work.tracked))>;
  using alloc_t = typename std::allocator_traits<
      boost::asio::associated_allocator_t<Handler>>::template rebind_alloc<async_op>;

  Handler handler;
  work_guard guard;  // keeps the handler's executor's context running while we wait
  std::tuple<Args...> args;
  work* reenable = nullptr;     // async_cancel_sync: enable this item before completing
  cancel_link* link = nullptr;  // in the handler's cancellation slot, if connected

  explicit async_op(Handler&& h)
      : handler(std::move(h)),
        guard(boost::asio::prefer(
            boost::asio::get_associated_executor(handler, boost::asio::system_executor()),
            boost::asio::execution::outstanding_work.tracked)) {
    complete = &on_complete;
    withdraw = &on_withdraw;
    abort = &on_abort;
  }

  static async_op* create(Handler&& h) {
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

  /// Connects the handler's cancellation slot (if any) for the given cancellation types.
  void connect(boost::asio::cancellation_type_t accepted) {
    link = connect_cancel(boost::asio::get_associated_cancellation_slot(handler), this, accepted);
  }

  /// Drops one registration; the last one completes the operation.
  void release() noexcept {
    // Safety (acq_rel): the last decrement sees every earlier registration's effects (and a
    // canceller's `aborted`, stored before its own decrement).
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // A canceller pinning the operation now withdraws nothing (no registration is left) and
    // lets go; detach() waits for that.
    if (link != nullptr && !link->detach()) return;
    finish(aborted.load(std::memory_order_relaxed) ? boost::asio::error::operation_aborted
                                                   : boost::system::error_code{});
  }

  /// Frees the operation, then posts the handler with `ec` and the results.
  void finish(boost::system::error_code ec) noexcept {
    if (reenable != nullptr) disable_dec(*reenable);
    alloc_t a(boost::asio::get_associated_allocator(handler));
    Handler h(std::move(handler));
    work_guard ex(std::move(guard));
    std::tuple<Args...> out(std::move(args));
    this->~async_op();
    std::allocator_traits<alloc_t>::deallocate(a, this, 1);
    try {
      boost::asio::post(ex, [h = std::move(h), ec, out = std::move(out)]() mutable {
        std::apply([&](auto&&... v) { std::move(h)(ec, std::move(v)...); }, std::move(out));
      });
    } catch (...) {
      // Out of memory posting the completion: the handler is destroyed without being called
      // (as Asio does when it cannot allocate an operation).
    }
  }

  static void on_complete(async_waiter* w) noexcept { static_cast<async_op*>(w)->release(); }
  static bool on_withdraw(cancellable* c) noexcept {
    auto* self = static_cast<async_op*>(c);
    const int removed = withdraw_async(self);
    if (removed == 0) return false;  // every registration is completing already
    self->aborted.store(true, std::memory_order_relaxed);
    // Safety (acq_rel): as in release(); whoever takes `remaining` to zero completes.
    return self->remaining.fetch_sub(removed, std::memory_order_acq_rel) == removed;
  }
  static void on_abort(cancellable* c) noexcept {
    static_cast<async_op*>(c)->finish(boost::asio::error::operation_aborted);
  }
};

/// The initiation shared by async_flush and async_drain: a waiter of kind `What` registered
/// with `queue`'s core by `Register`.
template <async_waiter::kind What, auto Register, class CompletionToken>
auto async_queue_wait(workqueue& queue, CompletionToken&& token,
                      boost::asio::cancellation_type_t accepted) {
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
      [&queue, accepted](auto handler) {
        using op_t = async_op<decltype(handler)>;
        op_t* op = op_t::create(std::move(handler));
        op->what = What;
        op->connect(accepted);
        // A registration holds its own count; if the queue is gone there is nothing to wait
        // for. Either way drop the initiator's count: the last one posts the handler.
        (void)Register(queue_access::core(queue), queue_access::id(queue), op);
        op->release();
      },
      token);
}

}  // namespace detail

/// Starts an asynchronous flush of `queue` (rule 26); completes with void(error_code).
template <class CompletionToken>
auto async_flush(workqueue& queue, CompletionToken&& token) {
  return detail::async_queue_wait<detail::async_waiter::kind::flush, &detail::register_async_flush>(
      queue, std::forward<CompletionToken>(token), boost::asio::cancellation_type::all);
}

/// Starts an asynchronous drain of `queue` (rule 49); completes with void(error_code).
template <class CompletionToken>
auto async_drain(workqueue& queue, CompletionToken&& token) {
  return detail::async_queue_wait<detail::async_waiter::kind::drain, &detail::register_async_drain>(
      queue, std::forward<CompletionToken>(token),
      boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial);
}

/// Cancels `item` and completes (void(error_code, bool was_pending)) once it is neither
/// pending nor running anywhere (rules 29, 32).
template <class CompletionToken>
auto async_cancel_sync(work& item, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, bool)>(
      [&item](auto handler) {
        using op_t = detail::async_op<decltype(handler), bool>;
        op_t* op = op_t::create(std::move(handler));
        op->what = detail::async_waiter::kind::item_idle;
        op->item = &item;
        detail::disable_inc(item);  // self-requeues fail until the operation completes
        op->reenable = &item;
        std::get<0>(op->args) = cancel_work(item);
        op->connect(boost::asio::cancellation_type::terminal |
                    boost::asio::cancellation_type::partial);
        // Each registration adds to op->remaining before it can complete.
        (void)detail::register_async_item_idle(op);
        op->release();  // drop the initiator's own registration
      },
      token);
}

/// Destroys `queue` asynchronously (rule 50); completes with void(error_code) once the queue
/// has drained and accepts nothing more. See the file comment.
template <class CompletionToken>
auto async_destroy(workqueue& queue, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
      [&queue](auto handler) {
        using op_t = detail::async_op<decltype(handler)>;
        op_t* op = op_t::create(std::move(handler));
        op->what = detail::async_waiter::kind::destroy;
        op->connect(boost::asio::cancellation_type::terminal);
        // Takes over the initiator's count too: a handler bound to the queue must be posted
        // while the queue still accepts it (as its last item), which the engine arranges.
        detail::queue_access::begin_async_destroy(queue, op);
      },
      token);
}

}  // namespace wq
