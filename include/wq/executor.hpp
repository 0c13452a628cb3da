// SPDX-License-Identifier: BSL-1.0
// wq/executor.hpp: `queue_executor`, the Asio executor of a workqueue (`q.get_executor()`), so
// `asio::post`, `dispatch`, `defer`, `co_spawn`, `bind_executor` and `any_io_executor` work on
// a queue with the queue's rules: a function submitted through it runs as a work item of the
// queue, so it counts against max_active, runs in FIFO order on an ordered queue, is waited for
// by flush() and drain(), and is destroyed unrun once the queue's destruction has begun (as Asio
// destroys what is posted to a context shut down). One submitted from
// outside the queue while it drains (a completion handler bound to it, a coroutine running on it
// being resumed) is held, not waited for by the drain, and queued when the drain ends (D2).
//
// Each submitted function is boxed in a work item allocated with Asio's recycling allocator
// (the allocation a raw `asio::post` also makes); embedded items remain the zero-allocation
// path. Functions run in a noexcept context: an exception escaping one calls std::terminate,
// as for every work function.
//
// Properties: `execution::context` (the queue's execution context: the shared pool it runs on,
// its own thread pool, or the context of the executor it was built on);
// `execution::outstanding_work`: `untracked` by default; a `tracked` copy (what
// `asio::executor_work_guard` and every Asio operation make of its handler's executor) counts as
// outstanding work of the queue, which then holds outstanding work on the executor the queue runs
// on, so that executor's `run()` does not return while the copy exists (it counts for nothing once
// the queue is destroyed); `execution::blocking`: `possibly` by default, like an io_context's
// executor: a function submitted from one of the queue's own workers runs inline (so
// `asio::dispatch` from an item runs at once), which keeps the queue's ordering and concurrency
// rules because that worker is already one of its running items; `never` on request (what
// `asio::post` and `asio::defer` require): it always queues.
//
// Thread safety: copies may be used from any thread. An executor outlives its queue safely:
// submitting to a destroyed queue destroys the function without running it (as Asio does for a
// shut-down context), and it never reaches another queue, however many queues are created and
// destroyed meanwhile (each copy holds a reference that keeps its queue's identity from being
// reused). Its `context` stays valid as long as the copy exists when the queue owned its pool
// (the pool object is kept, stopped, until the last copy goes); for a queue built on your
// executor it is your context, which must outlive the copies as for any Asio executor.
// Copying costs one atomic increment, as copying an Asio strand does.
#pragma once

#include <wq/config.hpp>

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include <boost/asio/execution.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution_context.hpp>

#include <wq/detail/core.hpp>
#include <wq/detail/executor.hpp>

namespace wq {

/// The executor of a workqueue. Obtain it with `workqueue::get_executor()`.
class queue_executor {
 public:
  /// The queue's execution context (its own pool, or its executor's context).
  [[nodiscard]] boost::asio::execution_context& query(
      boost::asio::execution::context_t) const noexcept {
    return detail::context_of(core_);
  }
  /// Functions run on threads (as any Asio executor's).
  static constexpr boost::asio::execution::mapping_t::thread_t query(
      boost::asio::execution::mapping_t) noexcept {
    return boost::asio::execution::mapping.thread;
  }
  /// `blocking.possibly` unless `blocking.never` was required (see the file comment).
  [[nodiscard]] boost::asio::execution::blocking_t query(
      boost::asio::execution::blocking_t) const noexcept {
    return possibly()
               ? boost::asio::execution::blocking_t(boost::asio::execution::blocking.possibly)
               : boost::asio::execution::blocking_t(boost::asio::execution::blocking.never);
  }
  [[nodiscard]] queue_executor require(boost::asio::execution::blocking_t::never_t) const noexcept {
    return {core_, id(), false, tracked()};
  }
  [[nodiscard]] queue_executor require(
      boost::asio::execution::blocking_t::possibly_t) const noexcept {
    return {core_, id(), true, tracked()};
  }
  /// `tracked` if this copy counts as outstanding work of the queue (see the file comment).
  [[nodiscard]] boost::asio::execution::outstanding_work_t query(
      boost::asio::execution::outstanding_work_t) const noexcept {
    return tracked() ? boost::asio::execution::outstanding_work_t(
                           boost::asio::execution::outstanding_work.tracked)
                     : boost::asio::execution::outstanding_work_t(
                           boost::asio::execution::outstanding_work.untracked);
  }
  [[nodiscard]] queue_executor require(
      boost::asio::execution::outstanding_work_t::tracked_t) const noexcept {
    return {core_, id(), possibly(), true};
  }
  [[nodiscard]] queue_executor require(
      boost::asio::execution::outstanding_work_t::untracked_t) const noexcept {
    return {core_, id(), possibly(), false};
  }

  /// Runs `f` as a work item of the queue (or inline, see the file comment).
  /// Throws: std::bad_alloc if the box cannot be allocated (`f` is then not run).
  template <class F>
  requires std::is_invocable_v<std::decay_t<F> &&> void execute(F&& f) const {
    if (possibly() && detail::running_on(core_)) {
      std::decay_t<F> local(std::forward<F>(f));
      std::move(local)();
      return;
    }
    detail::submit(core_, id(), std::forward<F>(f));
  }

  /// Whether the calling thread is running one of this queue's items.
  [[nodiscard]] bool running_in_this_thread() const noexcept { return detail::running_on(core_); }

  friend bool operator==(const queue_executor& a, const queue_executor& b) noexcept {
    return a.core_ == b.core_ && a.bits_ == b.bits_;
  }

  queue_executor(const queue_executor& other) noexcept : core_(other.core_), bits_(other.bits_) {
    acquire();
  }
  /// Takes over `other`'s reference (and tracked work). Like a moved-from Asio executor,
  /// `other` may then only be destroyed or assigned to. (Asio relies on this: its work guards
  /// never destroy a moved-from tracked executor.)
  queue_executor(queue_executor&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)), bits_(other.bits_) {}
  queue_executor& operator=(const queue_executor& other) noexcept {
    if (this != &other) {
      queue_executor copy(other);  // acquired before ours is released
      *this = std::move(copy);
    }
    return *this;
  }
  queue_executor& operator=(queue_executor&& other) noexcept {
    if (this != &other) {
      release();
      core_ = std::exchange(other.core_, nullptr);
      bits_ = other.bits_;
    }
    return *this;
  }
  ~queue_executor() { release(); }

 private:
  friend class workqueue;
  static constexpr std::uint64_t possibly_bit = std::uint64_t{1} << 63;  // ids use 36 bits
  static constexpr std::uint64_t tracked_bit = std::uint64_t{1} << 62;

  /// Takes a new reference on `core` (the caller holds one).
  queue_executor(detail::queue_core* core, std::uint64_t id, bool possibly,
                 bool tracked = false) noexcept
      : core_(core), bits_(id | (possibly ? possibly_bit : 0) | (tracked ? tracked_bit : 0)) {
    acquire();
  }
  void acquire() noexcept {
    if (core_ == nullptr) return;  // a copy of a moved-from executor is moved-from too
    detail::acquire_core(core_);
    if (tracked()) detail::add_tracked(core_);
  }
  void release() noexcept {
    if (core_ == nullptr) return;  // moved from
    if (tracked()) detail::remove_tracked(core_);
    detail::release_core(core_);
  }
  [[nodiscard]] std::uint64_t id() const noexcept { return bits_ & ~(possibly_bit | tracked_bit); }
  [[nodiscard]] bool possibly() const noexcept { return (bits_ & possibly_bit) != 0; }
  [[nodiscard]] bool tracked() const noexcept { return (bits_ & tracked_bit) != 0; }

  detail::queue_core* core_;  // referenced (kept); the id detects a destroyed queue
  std::uint64_t bits_;        // the queue's id, and the blocking.possibly flag
};

static_assert(boost::asio::execution::is_executor<queue_executor>::value);
// Two words, so any_io_executor stores it in place (no allocation per conversion or copy).
static_assert(sizeof(queue_executor) == 2 * sizeof(void*));

}  // namespace wq

#define WQ_DETAIL_EXECUTOR_HPP_DECLARED  // impl/executor.hpp checks it
#include <wq/impl/executor.hpp>
