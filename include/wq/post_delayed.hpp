// SPDX-License-Identifier: BSL-1.0
// wq/post_delayed.hpp: `post_delayed(queue, delay, token)`, a delayed callback as one Asio
// asynchronous operation: after `delay` (jiffies or any std::chrono duration) the completion
// handler is invoked, with the signature `void(boost::system::error_code)` (Asio's convention,
// so use_future and use_awaitable throw on error), through its associated
// executor, which defaults to the queue's executor, so by default it runs as a work item of the
// queue (counted against max_active, ordered on an ordered queue). A handler bound to another
// executor (`asio::bind_executor`) is posted to it when the delay has passed, never run inside
// the queue's item, even when that executor's context is the one the queue runs on. Any
// completion token works: a callback (an lvalue is copied, as Asio copies one),
// `asio::use_future`, `asio::use_awaitable`, `asio::deferred`.
//
// Each call allocates one block (the handler, its delayed work item and a tracked copy of the
// handler's executor), with the handler's associated allocator. The wait runs on wq's timer thread;
// while it is outstanding, the handler's associated executor counts outstanding work (an
// io_context's run() does not return early), as with any Asio operation.
//
// Outcomes: an empty error_code after the delay; `asio::error::operation_aborted` if the queue
// refuses the operation (it is draining or destroyed) — then the handler is posted to its
// associated executor at once (if that is the draining queue itself, the default, it runs once
// the drain has ended; if that is a destroyed queue, it is destroyed without being called, so
// bind the handler to another executor, or use `use_future`, where the refusal must be seen). If
// the queue is destroyed while the wait is outstanding, the operation is cancelled and the handler
// is posted with operation_aborted; if its associated executor is that queue itself (the default),
// the handler is destroyed without being called, as Asio destroys the handlers of a context that is
// shut down. For a delay you need to move, embed a `wq::delayed_work` instead (mod_delayed_work).
//
// Per-operation cancellation: the operation honours the cancellation slot associated with the
// handler, for every type (terminal, partial, total: a wait that has not fired has no side
// effects). A cancellation that reaches it before the item has started running takes the item
// off its timer (or its queue, if it fired already) and completes with operation_aborted; once
// the run has begun the operation completes normally. So `co_await (timer.async_wait(...) ||
// wq::post_delayed(q, 1s, use_awaitable))` returns when the first of the two completes.
//
// Thread safety: callable from any thread, including from work items and Asio handlers.
#pragma once

#include <wq/config.hpp>

#include <wq/jiffies.hpp>
#include <wq/workqueue.hpp>

namespace wq {

/// Invokes the handler `token` completes with, signature `void(boost::system::error_code)`,
/// after `delay`
/// (see the file comment for the outcomes). Returns what the token's async_result makes of it
/// (nothing for a callback, a future for use_future, an awaitable for use_awaitable).
/// Throws: std::bad_alloc if the operation's block cannot be allocated.
template <class Delay, class CompletionToken>
requires wq::delay<Delay>
auto post_delayed(workqueue& queue, Delay delay, CompletionToken&& token);

}  // namespace wq

#define WQ_DETAIL_POST_DELAYED_HPP_DECLARED  // impl/post_delayed.hpp checks it
#include <wq/impl/post_delayed.hpp>
