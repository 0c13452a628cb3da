// SPDX-License-Identifier: BSL-1.0
// wq/impl/async.hpp: template bodies of wq/async.hpp:
// the operation block every async wait completes through, and the initiations.
#pragma once

// Part of <wq/async.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_ASYNC_HPP_DECLARED
#error "<wq/impl/async.hpp> is part of <wq/async.hpp>: include <wq/async.hpp>"
#endif

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
#include <wq/detail/completion_gate.hpp>
#include <wq/detail/grab.hpp>
#include <wq/diagnostics.hpp>
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
  // The gate of that context (completion_gate.hpp): completing passes it.
  std::shared_ptr<watch_list> gate;
  std::tuple<Args...> args;
  work* reenable = nullptr;     // async_cancel_sync: enable this item before completing
  cancel_link* link = nullptr;  // in the handler's cancellation slot, if connected

  explicit async_op(Handler&& h)
      : handler(std::move(h)),
        guard(boost::asio::prefer(
            boost::asio::get_associated_executor(handler, boost::asio::system_executor()),
            boost::asio::execution::outstanding_work.tracked)),
        gate(gate_of(guard)) {
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
    if (aborted.load(std::memory_order_relaxed)) {
      finish(boost::asio::error::operation_aborted);
    } else if (items_dropped) {
      // async_destroy of a queue whose context dropped items: not every item ran (D19).
      finish(boost::system::error_code(make_error_code(errc::executor_stopped)));
    } else {
      finish(boost::system::error_code{});
    }
  }

  /// Frees the operation, then posts the handler with `ec` and the results, past the gate of
  /// its executor's context (one already shut down gets nothing: the handler is destroyed
  /// unrun, as that context's own pending handlers were).
  void finish(boost::system::error_code ec) noexcept {
    if (reenable != nullptr) disable_dec(*reenable);
    alloc_t a(boost::asio::get_associated_allocator(handler));
    Handler h(std::move(handler));
    work_guard ex(std::move(guard));
    std::shared_ptr<watch_list> g(std::move(gate));
    std::tuple<Args...> out(std::move(args));
    release_waiter_cores(this);  // no registration is left, nor a canceller that could look
    this->~async_op();
    std::allocator_traits<alloc_t>::deallocate(a, this, 1);
    hand_off_gated(
        g.get(), std::move(ex),
        [h = std::move(h), ec, out = std::move(out)]() mutable {
          std::apply([&](auto&&... v) { std::move(h)(ec, std::move(v)...); }, std::move(out));
        },
        false);
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

template <class CompletionToken>
auto async_flush(workqueue& queue, CompletionToken&& token) {
  return detail::async_queue_wait<detail::async_waiter::kind::flush, &detail::register_async_flush>(
      queue, std::forward<CompletionToken>(token), boost::asio::cancellation_type::all);
}

template <class CompletionToken>
auto async_drain(workqueue& queue, CompletionToken&& token) {
  return detail::async_queue_wait<detail::async_waiter::kind::drain, &detail::register_async_drain>(
      queue, std::forward<CompletionToken>(token),
      boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial);
}

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
