// SPDX-License-Identifier: BSL-1.0
// wq/impl/post_delayed.hpp: template bodies of wq/post_delayed.hpp:
// the operation block of post_delayed and its initiation.
#pragma once

// Part of <wq/post_delayed.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_POST_DELAYED_HPP_DECLARED
#error "<wq/impl/post_delayed.hpp> is part of <wq/post_delayed.hpp>: include <wq/post_delayed.hpp>"
#endif

#include <chrono>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/system/error_code.hpp>

#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/detail/cancel_link.hpp>
#include <wq/detail/completion_gate.hpp>
#include <wq/detail/grab.hpp>
#include <wq/executor.hpp>
#include <wq/jiffies.hpp>
#include <wq/workqueue.hpp>

namespace wq {
namespace detail {

/// The block behind one post_delayed: the delayed item, the handler and a work guard on the
/// handler's associated executor.
template <class Handler, class Executor>
struct delayed_op : cancellable {
  using allocator = typename std::allocator_traits<boost::asio::associated_allocator_t<
      Handler, boost::asio::recycling_allocator<void>>>::template rebind_alloc<delayed_op>;

  delayed_work dw{ops};
  Handler handler;
  // The handler's executor with outstanding_work.tracked: keeps its context running while the
  // operation waits (what an executor_work_guard holds, without its moved-from state).
  using work_executor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<const Executor&>(), boost::asio::execution::outstanding_work.tracked))>;
  work_executor guard;
  // The gate of the handler's executor's context (completion_gate.hpp): completing passes it.
  std::shared_ptr<watch_list> gate;
  cancel_link* link = nullptr;  // in the handler's cancellation slot, if connected

  // `h` is the handler as the initiation was given it: an lvalue is copied, as Asio copies a
  // handler passed as an lvalue, and the caller's object is left as it was.
  template <class H>
  delayed_op(H&& h, const Executor& ex)
      : handler(std::forward<H>(h)),
        guard(boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked)),
        gate(gate_of(ex)) {
    withdraw = &on_withdraw;
    abort = &on_abort;
  }

  static delayed_op* from(work* w) noexcept {
    // Safety: container_of: these ops belong to the `dw` member of a delayed_op only.
    return container_of<&delayed_op::dw>(static_cast<delayed_work*>(w));
  }
  // Frees the block first (so the handler may start another operation in the same memory), then
  // hands the handler `ec` through its associated executor, past the gate of its context (a
  // context already shut down gets nothing: the handler is destroyed unrun). The caller owns
  // the completion: the instance was run, dropped, refused or withdrawn. Only a handler whose
  // executor is the queue's own, completing from the run, is dispatched: it then runs as the
  // delayed item itself. Any other is posted: dispatched from the run, a handler bound to the
  // io_context the queue's worker runs on would run inside that item (current_work() set, a
  // flush() of the queue refused as a wait on itself).
  static void complete(delayed_op* self, boost::system::error_code ec) noexcept {
    Handler h(std::move(self->handler));
    work_executor ex(std::move(self->guard));  // the work stays outstanding until we are done
    std::shared_ptr<watch_list> gate(std::move(self->gate));
    allocator a(boost::asio::get_associated_allocator(h, boost::asio::recycling_allocator<void>()));
    std::allocator_traits<allocator>::destroy(a, self);
    std::allocator_traits<allocator>::deallocate(a, self, 1);
    constexpr bool own_queue = std::is_same_v<Executor, queue_executor>;
    hand_off_gated(gate.get(), std::move(ex), boost::asio::append(std::move(h), ec),
                   own_queue && !ec);
  }
  // The run or the drop of the item: a canceller can no longer withdraw it (the instance is
  // gone from the queue), so detach from the cancellation slot first, then complete.
  static void finish(delayed_op* self, boost::system::error_code ec) noexcept {
    if (self->link != nullptr) (void)self->link->detach();
    complete(self, ec);
  }
  static void run(work* w) noexcept {
    begin_run(w);
    finish(from(w), boost::system::error_code{});
  }
  static void drop(work* w) noexcept {
    clear_pending(w);
    finish(from(w), boost::asio::error::operation_aborted);
  }
  // Cancellation: take the pending instance off its timer or queue, as cancel_delayed_work
  // does; if it has already started (or been dropped), the operation completes that way.
  static bool on_withdraw(cancellable* c) noexcept {
    auto* self = static_cast<delayed_op*>(c);
    if (grab_pending(self->dw) == grab_result::pending) return true;
    unclaim_pending(self->dw);
    return false;
  }
  static void on_abort(cancellable* c) noexcept {
    auto* self = static_cast<delayed_op*>(c);
    unclaim_pending(self->dw);  // the grabbed instance is given up
    complete(self, boost::asio::error::operation_aborted);
  }
  static constexpr work_ops ops{&run, &drop, "wq::post_delayed operation", true};
};

struct initiate_post_delayed {
  workqueue* queue;

  template <class Handler>
  void operator()(Handler&& handler, std::chrono::nanoseconds delay) const {
    using handler_t = std::decay_t<Handler>;
    using executor_t = boost::asio::associated_executor_t<handler_t, queue_executor>;
    using op = delayed_op<handler_t, executor_t>;
    const executor_t ex = boost::asio::get_associated_executor(handler, queue->get_executor());
    typename op::allocator a(
        boost::asio::get_associated_allocator(handler, boost::asio::recycling_allocator<void>()));
    op* p = std::allocator_traits<typename op::allocator>::allocate(a, 1);
    try {
      std::allocator_traits<typename op::allocator>::construct(a, p, std::forward<Handler>(handler),
                                                               ex);
    } catch (...) {
      std::allocator_traits<typename op::allocator>::deallocate(a, p, 1);
      throw;
    }
    // Before the item is armed: once armed it may fire, run and free the block on another
    // thread. (A cancellation cannot be emitted before this initiation returns.)
    p->link = connect_cancel(boost::asio::get_associated_cancellation_slot(p->handler), p,
                             boost::asio::cancellation_type::all);
    if (queue->queue_delayed(p->dw, delay) != queue_status::queued)
      op::finish(p, boost::asio::error::operation_aborted);
  }
};

}  // namespace detail

template <class Delay, class CompletionToken>
requires wq::delay<Delay>
auto post_delayed(workqueue& queue, Delay delay, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
      detail::initiate_post_delayed{&queue}, token, delay_to_nanoseconds(delay));
}

}  // namespace wq
