// SPDX-License-Identifier: BSL-1.0
// wq/workqueue.hpp: `workqueue`, a queue of embedded work items run on an Asio executor with the
// Linux kernel's semantics (alloc_workqueue / queue_work / queue_delayed_work / drain /
// destroy_workqueue), and the typed, ownership-carrying `enqueue` / `enqueue_delayed` of the
// kernel's Rust bindings.
//
// A workqueue runs on a process-wide worker pool chosen by its flags (wq/pool.hpp; creating
// one starts no thread), on a private `asio::thread_pool` of N threads, or on any Asio executor
// you already have (io_context, thread_pool, strand, any_io_executor). While every worker the
// queue may run is busy (or one is on its way), queueing pushes the item's embedded node on a
// lock-free intake (one compare-and-swap) and the workers move it to the worklist when they next
// take the queue's lock; otherwise it links the item under that lock and posts a worker handler in
// the same step. A worker runs items one after another and re-posts itself after a fairness budget
// so other handlers on the executor are not starved. Queueing and running an embedded item
// allocates nothing in steady state (the statistics' histograms are made by a queue's first
// sample and again when a bucket first passes 255 and 65 535 samples: wq/stats.hpp).
//
// Thread safety: stated on the class.
//
// Memory ordering (rule 6): writes made before a queueing call that returns `queued` are visible
// inside the work function when it runs. If the call returns `already_pending`, the pending
// instance has not started yet and will see those writes too (rule 7).
//
// Lifetime: destroying a workqueue drains it (rule 50): armed delayed items targeting it are
// cancelled (their references released) and reported, then every queued item and its chains
// run to completion, then an owned pool is joined. Items that last ran on a destroyed queue may
// be queued elsewhere afterwards. Destroying a queue with nothing in flight but the caller is
// never a misuse, from any thread, strand or item of its own. Executors of the queue outlive it
// safely (wq/executor.hpp).
//
// Outstanding work (Asio's convention): a queue built on your executor holds outstanding work
// on it while the queue has queued, inactive, running or armed items, as a pending timer wait
// would, so that executor's run() does not return before they are done. A queue on a pool
// (shared or private) holds none (nobody runs a pool by hand).
//
// Blocking waits (flush, drain, destroy) never hang silently: each completes, or is refused
// within bounded time with a reported wq::errc (diagnostics.hpp): from one of the queue's own
// items or its strand, in a cycle of items waiting for each other, on a queue paused for the
// wait limit, or when its executor does not run its workers (a stopped io_context; the only
// thread of an io_context waiting for itself).  wq/async.hpp has their asynchronous forms.
#pragma once

#include <wq/config.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <boost/asio/execution/executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <wq/container_of.hpp>
#include <wq/delayed_work.hpp>
#include <wq/detail/core.hpp>
#include <wq/diagnostics.hpp>
#include <wq/executor.hpp>
#include <wq/flags.hpp>
#include <wq/jiffies.hpp>
#include <wq/observer.hpp>
#include <wq/queue_options.hpp>
#include <wq/queue_status.hpp>
#include <wq/stats.hpp>
#include <wq/work.hpp>
#include <wq/work_pointer.hpp>

namespace wq {

namespace detail {
struct queue_access;
struct async_waiter;
}  // namespace detail

/// A workqueue: runs work items with the kernel's queueing semantics on an Asio executor.
///
/// \code
///   wq::workqueue q{"events"};                      // on the shared normal pool
///   auto r = q.enqueue<&my_struct::work>(std::make_unique<my_struct>(42));
/// \endcode
///
/// Thread safety: distinct objects: safe. Shared objects: every member function may be called
/// concurrently from any thread, including from work items running on this or another queue,
/// and concurrently with destroy(): a queueing call that comes after destroy() began returns
/// `rejected` (rule 50). Two exceptions: the destructor must not race with any call on this
/// object (the object ends), and destroy(), `wq::async_destroy` and cancelled_on_destroy() must
/// not race with one another.
class workqueue {
 public:
  /// Creates a queue that runs on a worker pool.
  ///
  /// Effects: with `options.threads` 0 (the default) the queue is a front-end over the
  /// process-wide pool its flags choose (wq/pool.hpp: normal, highpri, unbound): no thread
  /// starts here, the pool starts workers as items need them and replaces blocked ones
  /// (rule 42), so up to max_active items run at once. With `threads` N the queue owns a
  /// private `asio::thread_pool` of N threads and runs at most N items at once. max_active as
  /// queue_options says (rule 37).
  /// Throws: std::bad_alloc; with `threads` > 0, std::system_error with the pthread_create
  /// error (e.g. std::errc::resource_unavailable_try_again) if the threads cannot be created.
  /// Nothing is leaked and later queues are unaffected (tested in test/fault_test.cpp).
  /// Note: with more than one thread, a failure after the first thread started blocks inside
  /// Boost.Asio 1.81's thread_pool constructor (it joins the started threads, which wait for
  /// work); see docs/bad-input.md, "Known limitations".
  explicit workqueue(std::string_view name, const queue_options& options = {})
      : workqueue(name, options, false) {}

  /// Creates a queue whose workers are handlers posted to `ex` (any Asio executor).
  ///
  /// The queue holds outstanding work on `ex` while it has work (see the file comment).
  /// Destroying the queue waits for its queued items to run; if the context is stopped or not
  /// run, they are dropped instead, see destroy(). If the executor's context is destroyed
  /// first, the queue hears of it while the context shuts down: its items, queued or armed,
  /// are dropped unrun and their references released (notice errc::items_dropped), later
  /// queueing returns `rejected`, and the queue object stays valid to destroy (D19).
  /// Throws: std::bad_alloc; std::invalid_argument if `options.threads` is not 0 (a queue on
  /// an executor runs on that executor's threads).
  template <class Executor>
  requires boost::asio::execution::executor<Executor> workqueue(const Executor& ex,
                                                                std::string_view name,
                                                                const queue_options& options = {})
      : workqueue(ex, name, options, false) {}

  /// Creates a queue on `ctx.get_executor()` (an io_context, a user's thread_pool, ...).
  template <class ExecutionContext>
  requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&> workqueue(
      ExecutionContext& ctx, std::string_view name, const queue_options& options = {})
      : workqueue(ctx.get_executor(), name, options, false) {}

  workqueue(const workqueue&) = delete;
  workqueue& operator=(const workqueue&) = delete;

  /// Destroys the queue as destroy() does (if it was not destroyed already, e.g. by
  /// async_destroy). With nothing in flight but the caller it goes at once, from anywhere.
  /// Misuse: run from one of this queue's own items (§5.2, errc::wait_on_own_queue) or from a
  /// handler of the strand the queue runs on (§5.3, errc::wait_needs_this_worker) while other
  /// items are in flight, it cannot wait; it is reported, outside queueing is refused from then
  /// on, armed items are cancelled, and the queue finishes in the background: the last of its
  /// items to finish retires it and an owned pool is joined by a helper thread. Nothing hangs,
  /// but the caller gets no "nothing runs any more" guarantee (wq::async_destroy gives it to a
  /// completion handler instead). A wait refused for another reason ends the same way.
  ~workqueue();

  // ---- typed API (Rust `Queue::enqueue`) ----------------------------------------------------

  /// Queues the item `Member` of `*pointer`, handing `pointer`'s ownership to the queue until
  /// `T::run(pointer, wq::id<Member>{})` receives it back.
  ///
  /// Preconditions (compile-time): `Member` is `&C::m` for a `wq::work`-derived member `m` of a
  /// non-virtual base `C` of the pointee type `T` (or of `T` itself), and `T` declares
  /// `static void run(Pointer, wq::id<Member>) noexcept`.
  /// Returns: `queued`, or the reason it was not queued with `pointer` handed back:
  /// already_pending (rule 1; impossible for std::unique_ptr, asserted), disabled (rule 16),
  /// rejected (queue draining or destroyed; or the item was built with a C-style function,
  /// `wq::fn_ops<&f>`, which this would replace with `T::run`: reported as
  /// errc::typed_on_c_style_item, nothing queued), null_pointer (`pointer` is null or
  /// moved-from: refused and reported as errc::null_pointer in every build type, nothing
  /// queued).
  /// Note: on a `delayed_work` member this is a delay of zero (rule 19).
  template <auto Member, class Pointer>
  enqueue_result<Pointer> enqueue(Pointer pointer,
                                  const location& where = location::current()) noexcept;

  /// Arms the delayed item `Member` of `*pointer` to be queued here after `delay` (jiffies or
  /// any std::chrono duration; negative means 0, huge values saturate). A zero delay queues
  /// immediately (rule 19). If the item is already pending (armed or queued), nothing changes
  /// and its deadline is left alone (rule 18).
  /// Returns: as enqueue().
  template <auto Member, class Pointer, class Delay>
  requires wq::delay<Delay> enqueue_result<Pointer> enqueue_delayed(
      Pointer pointer, Delay delay, const location& where = location::current())
  noexcept;

  // ---- C-style API (kernel queue_work / queue_delayed_work) ---------------------------------

  /// Queues `item` (kernel `queue_work`); `queue_work(q, item)` is the kernel-shaped bool
  /// wrapper.
  ///
  /// Preconditions: `item` was constructed with a work function (`wq::work w{wq::fn_ops<&f>}`)
  /// or bound by the typed API with a raw pointer. An item queued before through the typed API
  /// with an owning pointer (std::unique_ptr, std::shared_ptr, boost::intrusive_ptr) cannot be
  /// queued here: its `run` takes back a reference this call does not provide.
  /// Returns: queued; already_pending (rule 1); disabled (rule 16); rejected (queue draining or
  /// destroyed, or, reported as errc::untyped_on_owning_item, an item bound with an owning
  /// pointer: use `enqueue<&T::m>(pointer)`); unbound (no work function, reported as
  /// errc::no_work_function).
  /// Note: on a `shared_work` / `shared_delayed_work` this does not compile (see below).
  queue_status queue(work& item, const location& where = location::current()) noexcept;

  /// Does not compile: a `shared_work` / `shared_delayed_work` holds a std::shared_ptr that
  /// only `enqueue<&T::m>(pointer)` hands over (static_assert with that advice).
  template <class Item>
  requires detail::shared_item<Item> queue_status queue(Item& item,
                                                        const location& where = location::current())
  noexcept;

  /// Arms `item` to be queued here after `delay` (kernel `queue_delayed_work`; see
  /// enqueue_delayed for the delay rules).
  ///
  /// Preconditions and Returns: as queue(); an item bound with an owning pointer is refused
  /// (rejected, errc::untyped_on_owning_item): use `enqueue_delayed<&T::m>(pointer, delay)`.
  template <class Delay>
  requires wq::delay<Delay> queue_status queue_delayed(delayed_work& item, Delay delay,
                                                       const location& where = location::current())
  noexcept;

  /// Does not compile: a `shared_delayed_work` holds a std::shared_ptr that only
  /// `enqueue_delayed<&T::m>(pointer, delay)` hands over (static_assert with that advice).
  template <class Item, class Delay>
  requires detail::shared_item<Item> && wq::delay<Delay> queue_status
  queue_delayed(Item& item, Delay delay, const location& where = location::current())
  noexcept;

  // ---- queue-wide operations ----------------------------------------------------------------

  /// Waits until every item that was queued or running on this queue at the time of the call
  /// has finished (rule 26, kernel flush_workqueue), or was cancelled, or was dropped unrun
  /// because the executor's context shut down (D19: the notice errc::items_dropped tells of
  /// those; destroy() returns executor_stopped afterwards). Items queued after the call started,
  /// including self-requeues and items chained by the flushed ones, are not waited for, so a
  /// self-requeueing item cannot livelock a flush. Armed delayed items are not waited for.
  /// Concurrent flushers each get their own snapshot.
  /// Returns: an empty error_code, or why it was refused (reported as misuse):
  /// errc::wait_on_own_queue if called from an item running on this queue (it would wait for
  /// itself, §5.2); errc::wait_needs_this_worker from a handler of the strand this queue runs
  /// on (its items need that strand, §5.3); errc::wait_cycle from an item that another item
  /// of this queue waits for (§5.4); errc::wait_on_paused_queue if the queue stays paused for
  /// the wait limit with items queued; errc::executor_stopped or errc::executor_not_running if
  /// its executor does not run its workers (wq::set_wait_limit).
  std::error_code flush();

  /// Pauses the queue (the kernel's freezable queues, rule 45): queued items stay queued and
  /// none starts until resume(); items already running finish. Queueing still works.
  void pause() noexcept;
  /// Resumes a paused queue: waiting items start at once. drain() and destroy() resume a
  /// paused queue first (it could never drain otherwise).
  void resume() noexcept;

  /// Waits until no item is queued, inactive or running on this queue (rule 49). While it
  /// waits, only chained queueing (from items running on this queue) is accepted; other
  /// attempts return `rejected`. Armed delayed items are not waited for; if their timer fires
  /// during the drain they are queued once the drain ends.
  /// Returns: as flush() (a refused drain stops draining).
  std::error_code drain();

  /// Destroys the queue (rule 50): refuses new queueing from outside, cancels armed delayed
  /// items that target it (releasing the references they hold and counting them in
  /// cancelled_on_destroy()), drains it, then joins an owned pool. On return nothing of this
  /// queue runs any more. With nothing in flight but the caller it does so at once, also from
  /// one of the queue's own items or its strand (no report). Idempotent (see Returns).
  /// Returns: an empty error_code if every item ran; otherwise a wq::errc saying what happened
  /// instead. A non-empty code does not always mean the queue still exists: only
  /// errc::wait_on_own_queue and errc::wait_needs_this_worker mean "refused at the call (own item
  /// or strand with other items in flight), nothing changed". errc::executor_stopped and
  /// errc::executor_not_running (its executor does not run its workers) mean the queue was
  /// destroyed anyway, as Asio destroys a context's handlers: its queued items were dropped unrun,
  /// their references released (reported as the notice errc::items_dropped, not as a misuse).
  /// errc::executor_stopped also when its executor's context was shut down or destroyed earlier
  /// with items queued or armed (they were dropped then, with that notice): not every item ran.
  /// Refused while waiting for another reason (a cycle, errc::wait_cycle), it is destroyed in the
  /// background: it refuses outside queueing and the last of its items retires it. After
  /// async_destroy, waits until that has finished. Called again once destroyed, returns an
  /// empty error_code, or errc::executor_stopped if that destruction (or the context, earlier)
  /// dropped items unrun. (The destructor cannot refuse: see ~workqueue.)
  std::error_code destroy();

  /// Sets max_active (rule 38): same clamping as the constructor; raising it starts waiting
  /// items at once. Refused on ordered queues (errc::set_max_active_on_ordered). Returns the value
  /// in effect.
  int set_max_active(int max_active) noexcept;

  /// Returns the effective max_active.
  [[nodiscard]] int max_active() const noexcept;
  /// Returns whether items wait beyond max_active (the kernel's workqueue_congested, rule 51):
  /// a queueing call now would not start at once. Advisory: may be stale when used. False
  /// once destroyed. Thread safety: any thread.
  [[nodiscard]] bool congested() const noexcept;
  /// Returns the queue's name (kept by the queue's engine state, which this object holds until
  /// it is destroyed).
  [[nodiscard]] const std::string& name() const noexcept;
  /// Returns the queue's flags.
  [[nodiscard]] queue_flags flags() const noexcept { return flags_; }
  /// Returns whether this queue runs one item at a time in queueing order.
  [[nodiscard]] bool ordered() const noexcept { return ordered_; }
  /// The type get_executor() returns, named as Asio's I/O objects name theirs.
  using executor_type = queue_executor;
  /// Returns the queue's Asio executor (wq::queue_executor, wq/executor.hpp, included here):
  /// functions submitted through it run as work items of this queue.
  [[nodiscard]] executor_type get_executor() const noexcept;

  /// Returns a snapshot of the queue's counters and sampled latencies (wq/stats.hpp). Cheap
  /// enough to call once a second from a monitoring item. After a destroy() that returned no
  /// error it returns the final snapshot destroy() took once everything had run; after a
  /// destruction that finishes in the background (wq::async_destroy, or a destroy() that
  /// returned an error once it had begun: its wait refused, or an executor that did not run the
  /// workers) it returns the live counters until the queue has retired, then the final ones,
  /// which stay as long as this object.
  /// Thread-safe, also concurrently with destroy() (it then returns the live counters or that
  /// final snapshot).
  [[nodiscard]] queue_stats stats() const;

  /// Installs `obs` (nullptr removes it) to receive this queue's events (wq/observer.hpp).
  /// `obs` must outlive the queue or the next set_observer call plus any hook still running.
  void set_observer(observer* obs) noexcept;

  /// Returns a human-readable dump of the queue: its counters, the items running (with the
  /// worker each runs on), waiting (worklist and inactive, in order) and armed (with the time
  /// left), at most `limit` of each. For debugging stalls, like the kernel's
  /// show_one_workqueue. Thread-safe.
  [[nodiscard]] std::string dump(std::size_t limit = 32) const;

  /// Returns the number of armed delayed items destroy() had to cancel.
  [[nodiscard]] std::uint64_t cancelled_on_destroy() const noexcept {
    return cancelled_on_destroy_;
  }

 protected:
  // The constructors above; `is_ordered` is set by ordered_workqueue only (rule 39): max_active 1,
  // on a strand (of the private pool or of `ex`), or on the unbound pool.
  workqueue(std::string_view name, const queue_options& options, bool is_ordered);
  template <class Executor>
  requires boost::asio::execution::executor<Executor> workqueue(const Executor& ex,
                                                                std::string_view name,
                                                                const queue_options& options,
                                                                bool is_ordered);

 private:
  friend struct detail::queue_access;
  // Creates the core, named `name`, with max_active `requested` (clamped and reported here),
  // on `context` (the pool, owned or shared, or the executor's context). `box` null: the queue
  // runs on its flags' shared pool. What the queue needs later is kept in the core, not here:
  // this object is a handle (32 bytes) to it.
  void init(std::string_view name, int requested, boost::asio::execution_context& context,
            std::unique_ptr<detail::executor_box> box, int max_workers,
            std::unique_ptr<boost::asio::thread_pool> pool = nullptr);
  std::size_t cancel_armed_for_destroy();
  // Releases the references of armed items destroy cancelled (unlocked) and reports them.
  std::size_t release_cancelled(std::vector<work*> dropped);
  // Keeps the statistics of a queue being destroyed for stats() (not for one that never saw an
  // item, whose statistics are zero). Requires the core mutex held.
  void keep_final_stats() noexcept;
  // The statistics of a queue that counts no more (dying with nothing running, or retired),
  // an instance mod_delayed_work is moving counted cancelled. Requires the core mutex held.
  // Throws std::bad_alloc (the name's copy).
  [[nodiscard]] queue_stats final_snapshot_locked() const;
  // Why the calling thread may not block on `core` (its own item, or a handler of the strand
  // its workers run on), or errc{}. Takes the core's mutex: call it without.
  static errc blocked_wait(detail::queue_core* core) noexcept;
  // Throws std::invalid_argument: queue_options::threads given with an executor (queue `name`).
  [[noreturn]] static void refuse_threads_on_executor(std::string_view name);
  void orphan(errc why) noexcept;
  // Destroys the queue at once if nothing but the calling item is in flight (armed items are
  // cancelled). Returns false, changing nothing, otherwise.
  bool destroy_now_if_idle() noexcept;
  // destroy() of a queue destroyed already: waits until an async_destroy in progress (or a
  // destroy finishing in the background) has retired it.
  std::error_code wait_destroyed();
  // async_destroy's start: refuses outside queueing, cancels armed items, registers `w` to
  // complete once the queue has drained, and drops the initiator's count of `w`.
  void begin_async_destroy(detail::async_waiter* w) noexcept;

  detail::queue_core* core_ = nullptr;  // referenced, see detail/core.hpp
  std::uint64_t id_ = 0;                // core_'s id while this queue lives
  // The typed queueing of enqueue and enqueue_delayed (`delay` zero: queued now).
  template <auto Member, class Pointer>
  enqueue_result<Pointer> enqueue_after(Pointer pointer, std::chrono::nanoseconds delay,
                                        const char* call, const location& where) noexcept;
  // The C-style queueing of queue and queue_delayed (`delay` zero: queued now; else `item` is
  // a delayed_work): refuses an item with no work function (unbound) or bound by a typed call
  // with an owning pointer (rejected), then claims, links or arms, and counts a coalesced call.
  queue_status queue_untyped(work& item, std::chrono::nanoseconds delay,
                             const location& where) noexcept;
  void note_coalesced() const noexcept;
  // Adds `n` to cancelled_on_destroy_, saturating at 2^32 - 1 (more armed items than memory
  // holds).
  void add_cancelled_on_destroy(std::size_t n) noexcept;
  std::unique_ptr<queue_stats> final_stats_;  // set by destroy()
  // The handle is 32 bytes: a 32-bit count and one-byte flags beside the three bools below.
  std::uint32_t cancelled_on_destroy_ = 0;
  queue_flags flags_;
  bool ordered_;
  bool destroyed_ = false;
  bool system_ = false;  // one of system_queues.hpp's: flush() reports §5.6 once per process
};

/// Returns the item the calling thread is running as a work function, or nullptr outside work
/// functions (kernel `current_work()`).
[[nodiscard]] work* current_work() noexcept;

/// Describes what the calling work function is doing (kernel `set_worker_desc`, rule 51), with
/// a printf-style format: until the function returns, `q.dump()` shows the text (up to 31
/// characters) next to the running item, and the thread carries it as its name where the
/// platform allows (Linux: its first 15 characters, shown by `top -H`, `ps -L`, gdb). Outside a
/// work function it does nothing, as in the kernel. Thread safety: the calling worker.
void set_worker_desc(const char* fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace wq

#define WQ_DETAIL_WORKQUEUE_HPP_DECLARED  // impl/workqueue.hpp checks it
#include <wq/impl/workqueue.hpp>
