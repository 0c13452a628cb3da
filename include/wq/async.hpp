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
//                                     queue when the call was made has finished (or was
//                                     cancelled, or dropped unrun by its context's shutdown,
//                                     as flush() says).
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
//                                     it, runs as its last item: what it queues there is
//                                     refused, and a destroy() there returns at once). The
//                                     initiating call refuses
//                                     outside queueing and cancels armed items at once; the
//                                     queue object may be destroyed right after the call (its
//                                     destructor then neither waits nor reports; a destroy()
//                                     waits for the background destruction to finish).
//                                     Completes with wq::errc::executor_stopped if items
//                                     were dropped unrun (the queue's execution context shut
//                                     down first, or a destroy() found it stopped): not every
//                                     item ran (D19). On a queue destroyed or being destroyed
//                                     already (destroy(), an earlier async_destroy), it
//                                     completes once that destruction has finished, with the
//                                     same result. Called while the earlier ones' handlers
//                                     run as the queue's last items (from one of them, say),
//                                     its own handler, if bound to the queue, runs as one
//                                     more; once the queue is gone, a handler bound to it is
//                                     destroyed unrun, as anything submitted to a destroyed
//                                     queue's executor. The code is a boost::system::error_code
//                                     wrapping wq's std::error_code: compare it with `==`
//                                     (`ec == wq::errc::executor_stopped`) or convert it
//                                     (`std::error_code(ec)`); its own value() and category()
//                                     are Boost's encoding of the wrapped code, not wq's.
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

#include <wq/work.hpp>
#include <wq/workqueue.hpp>

namespace wq {

/// Starts an asynchronous flush of `queue` (rule 26); completes with void(error_code).
template <class CompletionToken>
auto async_flush(workqueue& queue, CompletionToken&& token);

/// Starts an asynchronous drain of `queue` (rule 49); completes with void(error_code).
template <class CompletionToken>
auto async_drain(workqueue& queue, CompletionToken&& token);

/// Cancels `item` and completes (void(error_code, bool was_pending)) once it is neither
/// pending nor running anywhere (rules 29, 32).
template <class CompletionToken>
auto async_cancel_sync(work& item, CompletionToken&& token);

/// Destroys `queue` asynchronously (rule 50); completes with void(error_code) once the queue
/// has drained and accepts nothing more. See the file comment.
template <class CompletionToken>
auto async_destroy(workqueue& queue, CompletionToken&& token);

}  // namespace wq

#define WQ_DETAIL_ASYNC_HPP_DECLARED  // impl/async.hpp checks it
#include <wq/impl/async.hpp>
