// SPDX-License-Identifier: BSL-1.0
// wq/detail/completion_gate.hpp: how wq hands a completion handler to the handler's own
// executor from one of wq's threads (a worker, the timer thread, a canceller) without racing
// the destruction of that executor's execution context. Nothing here is a user contract.
//
// Asio's scheduler signals a waiting thread after releasing its mutex, so a thread that posts
// a handler to an io_context may still be inside the post when the handler has run; and an
// operation holding outstanding work on a context touches it again to release that work. A
// program that destroys the context as soon as the handler ran (or stops it and destroys it
// with operations still pending) would race with, or be used after free by, wq's thread. The
// gate is the context's watch (src/context_watch.cpp, one per execution context): every such
// hand-off passes it, and the context's shutdown (the first step of its destruction, while it
// is still whole) closes it and waits for the hand-offs in flight to return. After that, a
// completion is destroyed unrun and the work it held is never released, as the context's own
// pending handlers are destroyed unrun. Hand-offs are short and never block on anything the
// shutting-down thread holds, so the wait is bounded.
#pragma once

#include <wq/config.hpp>

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>

namespace wq::detail {

struct watch_list;  // src/context_watch.hpp

/// Returns: the gate of `ctx`, made with its watch service on first use; shared, so it outlives
/// the context for the operations still holding it. Thread safety: any thread.
/// Throws: std::bad_alloc.
std::shared_ptr<watch_list> context_gate(boost::asio::execution_context& ctx);

/// Effects: enters the gate unless the context was shut down. Returns: whether it entered (the
/// caller must then call leave_context_gate once it no longer touches the context).
/// Thread safety: any thread. Memory ordering: seq_cst (the count is raised, then the closed
/// flag read; the shutdown sets the flag, then reads the count: one of the two sees the other).
bool enter_context_gate(watch_list& gate) noexcept;

/// Effects: leaves the gate (entered by enter_context_gate). Memory ordering: release (pairs
/// with the shutdown's acquire: everything done inside happens before the context is torn down).
void leave_context_gate(watch_list& gate) noexcept;

/// Returns: the gate of `ex`'s execution context, or nullptr if `ex` names none (an executor
/// without the context property). Throws: std::bad_alloc.
template <class Executor>
std::shared_ptr<watch_list> gate_of(const Executor& ex) {
  if constexpr (boost::asio::can_query_v<const Executor&, boost::asio::execution::context_t>) {
    using ctx_t = decltype(boost::asio::query(ex, boost::asio::execution::context));
    if constexpr (std::is_convertible_v<ctx_t, boost::asio::execution_context&>) {
      boost::asio::execution_context& ctx = boost::asio::query(ex, boost::asio::execution::context);
      return context_gate(ctx);
    } else {
      return nullptr;
    }
  } else {
    return nullptr;
  }
}

/// Effects: through `gate` (if not null), posts (or, with `dispatch`, dispatches) `fn` to
/// `work_ex`, an executor holding outstanding work on the handler's context, then releases that
/// work. If the context was shut down, neither happens: `fn` is destroyed unrun and `work_ex`
/// is abandoned without its destructor (which would reach into the torn-down context). Out of
/// memory posting, `fn` is destroyed unrun (as Asio does when it cannot allocate).
/// Requires: `work_ex` moved in by the caller, whose moved-from executor no longer names the
/// context (as Asio's executors are after a move).
template <class WorkExecutor, class Fn>
void hand_off_gated(watch_list* gate, WorkExecutor&& work_ex, Fn&& fn, bool dispatch) noexcept {
  using ex_t = std::decay_t<WorkExecutor>;
  alignas(ex_t) unsigned char storage[sizeof(ex_t)];
  // Safety: placement-new into local storage, so that the executor can be abandoned below
  // without running its destructor.
  ex_t* ex = ::new (static_cast<void*>(storage)) ex_t(std::move(work_ex));
  if (gate != nullptr && !enter_context_gate(*gate)) return;  // `ex` abandoned, `fn` destroyed
  try {
    if (dispatch) {
      boost::asio::dispatch(*ex, std::forward<Fn>(fn));
    } else {
      boost::asio::post(*ex, std::forward<Fn>(fn));
    }
  } catch (...) {
    // Out of memory posting the completion: the handler is destroyed without being called.
  }
  ex->~ex_t();  // releases the outstanding work, still inside the gate
  if (gate != nullptr) leave_context_gate(*gate);
}

}  // namespace wq::detail
