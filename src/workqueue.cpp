// SPDX-License-Identifier: BSL-1.0
// wq::workqueue: construction, queue-wide waits (flush, drain, destroy), pause, statistics and
// dump. The engine it drives is src/engine/ (see its README.md); this file calls the engine's
// facade and its mechanisms' queries, holding the queue's mutex as each requires.
#include <wq/workqueue.hpp>

#include <wq/detail/diagnostics.hpp>
#include <wq/diagnostics.hpp>
#include <wq/executor.hpp>
#include <wq/impl/claim.hpp>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/require.hpp>

#include "context_watch.hpp"
#include "engine/counters.hpp"
#include "engine/inspect.hpp"
#include "engine/lifecycle.hpp"
#include "engine/queue_core.hpp"
#include "engine/queueing.hpp"
#include "engine/registry.hpp"
#include "engine/run_records.hpp"
#include "engine/waiters.hpp"
#include "engine/workers.hpp"
#include "engine/worklist.hpp"
#include "wait_graph.hpp"

namespace wq {
// ---- workqueue -----------------------------------------------------------------------------

workqueue::workqueue(std::string_view name, const queue_options& options, bool is_ordered)
    : flags_(options.flags), ordered_(is_ordered) {
  const unsigned threads = options.threads;
  if (threads == 0) {
    // A front-end over the process-wide pool its flags choose (wq/pool.hpp): no thread starts
    // here. Up to max_active workers, since the pool replaces blocked ones (rule 42).
    detail::worker_pool& pool = detail::pool_of_kind(detail::pool_kind_for(flags_, ordered_));
    init(name, options.max_active, pool, nullptr, max_max_active, nullptr);
    return;
  }
  std::unique_ptr<boost::asio::thread_pool> pool;
  try {
    pool = std::make_unique<boost::asio::thread_pool>(threads);
  } catch (const boost::system::system_error& e) {
    // Asio reports a failed pthread_create as boost::system::system_error, a runtime_error;
    // the documented contract is std::system_error with the same code (e.g. EAGAIN).
    throw std::system_error(e.code(),
                            "wq::workqueue '" + std::string(name) + "': cannot create its threads");
  }
  boost::asio::execution_context& context = *pool;
  // The pool executor carries wq's handler allocator, so posting workers allocates nothing
  // in steady state even from threads outside the pool.
  auto ex = boost::asio::require(
      pool->get_executor(), boost::asio::execution::allocator(detail::handler_allocator<void>{}));
  auto box = std::make_unique<detail::executor_box>();
  if (ordered()) {
    box->emplace(boost::asio::make_strand(ex));
  } else {
    box->emplace(ex);
  }
  // On failure the pool is destroyed here (its destructor joins its idle threads).
  init(name, options.max_active, context, std::move(box), static_cast<int>(threads),
       std::move(pool));
}

void workqueue::refuse_threads_on_executor(std::string_view name) {
  throw std::invalid_argument("wq::workqueue '" + std::string(name) +
                              "': queue_options::threads is for a queue without an executor; "
                              "a queue on an executor runs on that executor's threads");
}

void workqueue::init(std::string_view name, int requested, boost::asio::execution_context& context,
                     std::unique_ptr<detail::executor_box> box, int concurrency,
                     std::unique_ptr<boost::asio::thread_pool> pool) {
  std::string name_str(name);  // for the reports below (NUL-terminated), then the core
  // On the application's executor (not a pool wq owns or shares): watched, so that the
  // context's shutdown or destruction reaches the queue before its armed timers could post
  // into it (context_watch.hpp).
  const bool on_users_context = box != nullptr && pool == nullptr;
  int ma = clamp_max_active(requested);
  if (ordered()) {
    if (requested != 0 && requested != 1)
      detail::report(errc::max_active_clamped, "ordered queue '%s': max_active %d, using 1",
                     name_str.c_str(), requested);
    ma = 1;
  } else if (requested != 0 && ma != requested) {
    detail::report(errc::max_active_clamped, "queue '%s': max_active %d not in [1, %d], using %d",
                   name_str.c_str(), requested, max_max_active, ma);
  }
  // Every thread that runs a worker claims a record once; having them ready keeps the
  // allocation out of the first item a pool thread runs, which may come in steady state.
  static const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  detail::reserve_run_records(static_cast<std::size_t>(pool ? concurrency : hw));
  detail::core_config cfg;
  cfg.shared_pool = box == nullptr;
  cfg.own_pool = std::move(pool);
  cfg.name = std::move(name_str);  // the reports above were its last use here
  cfg.flags = flags_;
  cfg.ordered = ordered_;
  cfg.max_active = ma;
  cfg.slot_cap = ordered() ? 1 : std::max(1, concurrency);
  cfg.max_workers = std::min(ma, cfg.slot_cap);
  // Slots beyond the cores are grown on demand (claim_worker_slot).
  cfg.worker_slots = std::min(cfg.max_workers, hw);
  auto [core, id] = detail::create_core(std::move(cfg), std::move(box));
  core_ = core;
  id_ = id;
  detail::set_context(core_, &context);
  if (on_users_context) {
    try {
      detail::watch_context(context, core_, id_);
    } catch (...) {
      // Out of memory: the queue is not handed out; the empty queue is destroyed at once.
      (void)destroy();
      detail::release_core(core_);
      throw;
    }
  }
}

workqueue::~workqueue() {
  if (!destroyed_) {
    if (const errc why = blocked_wait(core_); why != errc{}) {
      // It cannot wait here (from one of its own items, or its strand): an idle queue goes at
      // once; one with work left finishes in the background (reported).
      if (!destroy_now_if_idle()) orphan(why);
    } else {
      (void)destroy();  // a refused wait finishes in the background (reported)
    }
  }
  // This object's reference: the core is recycled once no executor copy refers to it either.
  detail::release_core(core_);
}

queue_status workqueue::queue(work& item, const location& where) noexcept {
  return queue_untyped(item, std::chrono::nanoseconds(0), where);
}

queue_status workqueue::queue_untyped(work& item, std::chrono::nanoseconds delay,
                                      const location& where) noexcept {
  const bool delayed = delay.count() != 0;
  const char* const call = delayed ? "queue_delayed_work" : "queue_work";
  const work_ops* ops = detail::work_access::ops(item).load(std::memory_order_relaxed);
  if (ops == nullptr) {
    detail::report(errc::no_work_function,
                   "%s on queue '%s' refused: the item has no work function yet (build it with "
                   "wq::fn_ops<&f>, or queue it with the typed %s, which binds its run)",
                   call, name().c_str(),
                   delayed ? "enqueue_delayed<&T::m>(pointer, delay)" : "enqueue<&T::m>(pointer)");
    return queue_status::unbound;
  }
  if (ops->typed_only) {
    // Its run would take back a reference nobody stored (see work_ops::typed_only).
    detail::report(errc::untyped_on_owning_item,
                   "%s of %s on queue '%s' refused: the item was queued with an owning pointer; "
                   "use %s",
                   call, ops->name, name().c_str(),
                   delayed ? "enqueue_delayed<&T::m>(pointer, delay)" : "enqueue<&T::m>(pointer)");
    return queue_status::rejected;
  }
  // A destroyed queue's core refuses by its id (stale generation) or its dying flag.
  const queue_status st = detail::claim_and_link(
      item,
      [&](bool as_chained) {
        return detail::link_or_arm(core_, id_, item, delay, &where, true, as_chained);
      },
      [] {}, [] {});
  if (st == queue_status::already_pending) note_coalesced();
  return st;
}

const std::string& workqueue::name() const noexcept {
  // Safety: I (immutable while the queue is live, and kept after it is destroyed until the core
  // is freed, which this object's reference prevents): read without the mutex.
  return core_->name;
}

int workqueue::max_active() const noexcept {
  std::lock_guard lk(core_->mu);
  return core_->id() == id_ ? detail::max_active_locked(core_) : 0;
}

bool workqueue::congested() const noexcept {
  std::lock_guard lk(core_->mu);
  if (core_->id() != id_) return false;
  detail::start_workers_locked(core_);  // items on the intake count as waiting
  return detail::congested_locked(core_);
}

int workqueue::set_max_active(int max_active) noexcept {
  std::unique_lock lk(core_->mu);
  if (core_->id() != id_) return 0;
  if (ordered()) {
    detail::report(errc::set_max_active_on_ordered, "queue '%s': refused (rule 38)",
                   name().c_str());
    return detail::max_active_locked(core_);
  }
  const int ma = clamp_max_active(max_active);
  if (max_active != 0 && ma != max_active)
    detail::report(errc::max_active_clamped, "queue '%s': max_active %d not in [1, %d], using %d",
                   name().c_str(), max_active, max_max_active, ma);
  return detail::set_max_active_locked(core_, ma);
}

namespace {
// A queue-wide wait that cannot finish: from one of the queue's own items (§5.2), or from a
// handler of the strand the queue runs on (§5.3: its items need that strand).
std::error_code refuse_wait(errc why, const char* op, const std::string& name) noexcept {
  if (why == errc::wait_on_own_queue) {
    detail::report(why,
                   "%s of queue '%s' from one of its own items would wait for itself: "
                   "refused",
                   op, name.c_str());
  } else {
    detail::report(why,
                   "%s of queue '%s' from a handler of the strand it runs on would "
                   "deadlock: refused",
                   op, name.c_str());
  }
  return make_error_code(why);
}

// What destroy() returns for a queue it saw through to the end: executor_stopped if items were
// dropped unrun earlier because its executor's context shut down (D19: not every item ran),
// else an empty code. Requires: core->mu held; the queue not retired yet, or retired while
// the workqueue object still refers to the core (its lifecycle state stays until a new queue
// is made on the core, which that reference prevents).
std::error_code destroyed_result(const detail::queue_core* core) noexcept {
  return core->lc.items_dropped ? make_error_code(errc::executor_stopped) : std::error_code{};
}
}  // namespace

errc workqueue::blocked_wait(detail::queue_core* core) noexcept {
  if (detail::this_worker().core == core) return errc::wait_on_own_queue;
  // Under the mutex: a destroy() on another thread may retire the queue, which frees its
  // executor box (a flush() or drain() racing with destroy() used to read it freed).
  const std::lock_guard lk(core->mu);
  if (detail::strand_held_here(core)) return errc::wait_needs_this_worker;
  return errc{};
}

std::error_code workqueue::flush() {
  detail::queue_core* core = core_;
  if (system_) {
    // §5.6 (rule 27): the kernel deprecates flushing a system-wide queue. A once-flag (relaxed:
    // it publishes nothing; at worst two threads race to report once each).
    static std::atomic<bool> reported{false};
    if (!reported.exchange(true, std::memory_order_relaxed))
      detail::report(errc::system_queue_flushed,
                     "flush of system queue '%s': it waits for every item anyone queued there "
                     "(the kernel deprecates flush_scheduled_work); flush your own items or use "
                     "a queue of your own. Reported once per process",
                     name().c_str());
  }
  if (const errc why = blocked_wait(core); why != errc{}) return refuse_wait(why, "flush", name());
  std::unique_lock lk(core->mu);
  if (core->id() != id_) return {};
  detail::start_workers_locked(core);  // items on the intake were queued before this call
  const std::uint64_t e0 = detail::flush_epoch_locked(core);
  const detail::wait_target t{detail::wait_target::kind::queue, core, nullptr};
  // Items queued from now on must get a color no older instance still holds: the next color
  // was last used 16 epochs ago; wait for those (older, so waited for anyway) to drain first.
  errc why = detail::wait_until(core, lk, t, detail::blocked_kind::queue_flush, "flush",
                                [&] { return detail::flush_may_start_locked(core, e0); });
  if (why == errc{}) {
    // Wait for every instance queued with an epoch <= e0 (the snapshot at the call, rule 26).
    why = detail::wait_until(core, lk, t, detail::blocked_kind::queue_flush, "flush",
                             [&] { return detail::flushed_through_locked(core, e0); });
  }
  return why == errc{} ? std::error_code{} : make_error_code(why);
}

void workqueue::pause() noexcept {
  std::lock_guard lk(core_->mu);
  if (core_->id() == id_) detail::pause_locked(core_);
}

void workqueue::resume() noexcept {
  std::lock_guard lk(core_->mu);
  if (core_->id() == id_) detail::unpause_locked(core_);
}

std::error_code workqueue::drain() {
  detail::queue_core* core = core_;
  if (const errc why = blocked_wait(core); why != errc{}) return refuse_wait(why, "drain", name());
  std::unique_lock lk(core->mu);
  if (core->id() != id_) return {};
  detail::unpause_locked(core);  // a paused queue could never drain
  detail::begin_drain_locked(core);
  errc why;
  {
    why = detail::wait_until(core, lk, {detail::wait_target::kind::queue, core, nullptr},
                             detail::blocked_kind::drain, "drain",
                             [core] { return detail::drained_locked(core); });
  }
  detail::end_drain_locked(core);  // a refused drain stops draining too
  return why == errc{} ? std::error_code{} : make_error_code(why);
}

std::size_t workqueue::cancel_armed_for_destroy() {
  std::vector<work*> dropped;
  {
    std::unique_lock lk(core_->mu);
    dropped = detail::begin_destroy_locked(core_);
  }
  return release_cancelled(std::move(dropped));
}

#if defined(__GLIBCXX__) && defined(__x86_64__)
// Every queue pays its handle in memory (bytes/wq in bench/wq_scale.cpp counts it).
static_assert(sizeof(workqueue) <= 32, "workqueue handle grew past 32 bytes");
#endif

void workqueue::add_cancelled_on_destroy(std::size_t n) noexcept {
  const std::uint64_t sum = std::uint64_t{cancelled_on_destroy_} + n;
  // Safety (static_cast): clamped to the field's range first.
  cancelled_on_destroy_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(sum, UINT32_MAX));
}

std::size_t workqueue::release_cancelled(std::vector<work*> dropped) {
  for (work* w : dropped) {
    // drop() reclaims the queue's reference, clears PENDING, then releases it.
    detail::work_access::ops(*w).load(std::memory_order_relaxed)->drop(w);
  }
  if (!dropped.empty())
    detail::report(errc::armed_items_cancelled, "queue '%s': %zu armed item(s) cancelled",
                   name().c_str(), dropped.size());
  return dropped.size();
}

std::error_code workqueue::destroy() {
  detail::queue_core* core = core_;
  if (destroyed_) return wait_destroyed();
  if (const errc why = blocked_wait(core); why != errc{}) {
    // From one of its own items or a handler of its strand it cannot wait; if nothing but the
    // caller is in flight there is nothing to wait for.
    if (destroy_now_if_idle()) return {};
    return refuse_wait(why, "destroy", name());
  }
  destroyed_ = true;
  {
    detail::done_list done;
    std::unique_lock lk(core->mu);
    std::vector<work*> dropped = detail::begin_destroy_locked(core);
    if (dropped.empty() && detail::quiescent_locked(core) && core->reg.own_pool == nullptr) {
      // Idle (a short-lived per-session queue, typically): nothing to cancel, wait for or join.
      keep_final_stats();
      const std::error_code result = destroyed_result(core);
      detail::retire_core(core, lk, done);
      return result;
    }
    lk.unlock();
    add_cancelled_on_destroy(release_cancelled(std::move(dropped)));
  }
  {
    detail::done_list done;
    detail::work_list gone;
    std::unique_lock lk(core->mu);
    errc why;
    {
      why = detail::wait_until(
          core, lk, {detail::wait_target::kind::queue, core, nullptr}, detail::blocked_kind::drain,
          "destroy", [core] { return detail::quiescent_locked(core); },
          /*report=*/false);
    }
    // A shared pool is never stopped: its workers will run the items once it gets going again,
    // so they are not dropped; the queue finishes in the background (below).
    if ((why == errc::executor_stopped || why == errc::executor_not_running) &&
        !detail::on_shared_pool(core)) {
      // Its executor does not run its workers (stopped, or nobody runs it): as Asio destroys
      // the handlers of a context shut down, the queued items are dropped unrun and their
      // references released (a notice, not a misuse: stopping the io_context and then
      // destroying what used it is the usual shutdown); then nothing of the queue runs.
      detail::abandon_locked(core, gone, done);
      const std::size_t n = gone.size();
      // A later destroy() or async_destroy says so too (D19).
      if (n != 0) core->lc.items_dropped = true;
      lk.unlock();
      while (!gone.empty()) {
        work& w = gone.front();
        gone.pop_front();
        detail::work_access::ops(w).load(std::memory_order_relaxed)->drop(&w);
      }
      detail::report(errc::items_dropped,
                     "destroy of queue '%s': %s: %zu item(s) dropped unrun, their references "
                     "released",
                     name().c_str(),
                     why == errc::executor_stopped
                         ? "its executor's io_context is stopped"
                         : "no worker posted to its executor started within the wait limit",
                     n);
      lk.lock();
      detail::retire_or_orphan_locked(core, lk, done);
      return make_error_code(why);
    }
    if (why != errc{}) {
      // Refused (a cycle of waiting items, or a shared pool that made no progress for the wait
      // limit): the queue finishes in the background; the last of its items to finish retires
      // it (and has an owned pool joined).
      detail::report_refused_wait(why, "destroy", core);
      detail::mark_orphaned_locked(core);
      return make_error_code(why);
    }
  }
  // The pool the queue owns, if any: set when the core was made and freed only with it (which
  // this object's reference prevents), so it is read without the mutex.
  if (boost::asio::thread_pool* own = core->reg.own_pool.get(); own != nullptr) own->join();
  detail::done_list done;
  std::unique_lock lk(core->mu);
  keep_final_stats();
  const std::error_code result = destroyed_result(core);
  detail::retire_core(core, lk, done);
  return result;
}

std::error_code workqueue::wait_destroyed() {
  // Destroyed already; an async_destroy (or a refused destroy) may still be finishing it.
  detail::queue_core* core = core_;
  bool last_items = false;
  std::error_code result;
  {
    std::unique_lock lk(core->mu);
    // Finished already: what its destruction found (D19).
    if (core->id() != id_) return destroyed_result(core);
    result = destroyed_result(core);  // what the last item, below, is told
    // Its async_destroy has completed and nothing but the caller is in flight: the caller, if it
    // is the queue's own item, is that completion's handler run as the last item, and nothing
    // else of the queue will run (it accepts nothing more); what is left of the destruction
    // waits for this caller to return.
    last_items = core->lc.destroy_notified &&
                 detail::idle_but_caller_locked(core, detail::this_worker().core == core);
  }
  if (const errc why = blocked_wait(core); why != errc{}) {
    if (why == errc::wait_on_own_queue && last_items) return result;
    return refuse_wait(why, "destroy", name());
  }
  std::unique_lock lk(core->mu);
  const errc why = detail::wait_until(core, lk, {detail::wait_target::kind::queue, core, nullptr},
                                      detail::blocked_kind::other, "destroy",
                                      [this, core] { return core->id() != id_; });
  return why == errc{} ? destroyed_result(core) : make_error_code(why);
}

bool workqueue::destroy_now_if_idle() noexcept {
  detail::queue_core* core = core_;
  std::vector<work*> dropped;
  {
    std::unique_lock lk(core->mu);
    if (core->id() != id_) return false;
    // Everything on the intake counts; then idle means nothing in flight but the caller's own
    // item (if it is one), and nothing deferred by a drain.
    detail::close_intake_locked(core);
    if (!detail::idle_but_caller_locked(core, detail::this_worker().core == core)) {
      detail::open_intake_locked(core);
      return false;
    }
    try {
      dropped = detail::begin_destroy_locked(core);
    } catch (...) {
      // Out of memory listing its armed items: destroy it the slower way (orphan).
      detail::open_intake_locked(core);
      return false;
    }
    keep_final_stats();
  }
  destroyed_ = true;
  for (work* w : dropped) detail::work_access::ops(*w).load(std::memory_order_relaxed)->drop(w);
  if (!dropped.empty()) {
    detail::report(errc::armed_items_cancelled, "queue '%s': %zu armed item(s) cancelled",
                   name().c_str(), dropped.size());
  }
  add_cancelled_on_destroy(dropped.size());
  detail::done_list done;
  std::unique_lock lk(core->mu);
  detail::mark_orphaned_locked(core);
  // Retires it now; an owned pool is joined by a helper thread (this may be one of its).
  detail::finish_orphan_locked(core, lk, done);
  return true;
}

void workqueue::orphan(errc why) noexcept {
  destroyed_ = true;
  detail::report(why,
                 "queue '%s' destroyed %s: it cannot wait there, so it refuses outside queueing "
                 "now and finishes in the background once its items and their chains have run",
                 name().c_str(),
                 why == errc::wait_on_own_queue ? "from one of its own items"
                                                : "from a handler of the strand it runs on");
  try {
    (void)cancel_armed_for_destroy();
  } catch (...) {
    // Out of memory for the list of armed items: they stay armed and, when they fire, are
    // queued as chained work of the dying queue (which still runs them).
  }
  detail::done_list done;
  std::unique_lock lk(core_->mu);
  detail::orphan_locked(core_, lk, done);
}

void workqueue::begin_async_destroy(detail::async_waiter* w) noexcept {
  if (destroyed_) {
    // Destroyed already (by destroy() or an earlier async_destroy): completes when that
    // destruction has finished, with what it found (D19), as a destroy() would wait for it.
    detail::done_list done;
    std::unique_lock lk(core_->mu);
    if (core_->id() == id_ && core_->lc.destroy_notified && !core_->lc.orphan_busy) {
      // The earlier operations have completed and their handlers are the queue's last items,
      // still in flight (this may be one of them): this one completes now with the same result,
      // its handler let in as one more last item if it is bound to the queue.
      w->items_dropped = core_->lc.items_dropped;
      detail::done_list late;
      late.push(w);
      if (detail::complete_destroyers_locked(core_, lk, late))
        detail::finish_orphan_locked(core_, lk, done);
      return;
    }
    if (core_->id() == id_ && detail::register_async_destroy_locked(core_, w)) {
      // Still finishing: the registration completes it (finish_orphan_locked; or, while
      // another thread completes the earlier ones, complete_destroyers_locked as one more of
      // them). Safety (acq_rel, under mu): the registration holds a count too, so dropping the
      // initiator's cannot reach zero.
      w->remaining.fetch_sub(1, std::memory_order_acq_rel);
      return;
    }
    // Finished (or out of memory registering: completes now, as below).
    w->items_dropped = core_->lc.items_dropped;
    lk.unlock();
    w->complete(w);  // the initiator's count, the last
    return;
  }
  destroyed_ = true;
  try {
    add_cancelled_on_destroy(cancel_armed_for_destroy());
  } catch (...) {
    // Out of memory for the list of armed items: they stay armed and, when they fire, are
    // queued as chained work of the dying queue (which still runs them).
  }
  detail::done_list done;
  std::unique_lock lk(core_->mu);
  detail::mark_orphaned_locked(core_);
  // Out of memory registering: w completes at once; the queue still finishes in the background.
  if (!detail::register_async_destroy_locked(core_, w)) {
    lk.unlock();
    w->complete(w);  // the initiator's count, the last: completes now
    return;
  }
  // The initiator's count goes now, so that the registration's completion (by the thread that
  // finishes the queue, possibly just below) is the last one and posts the handler while a
  // handler bound to the queue itself is still accepted. Safety (acq_rel, under mu): the
  // registration holds a count too, so this cannot reach zero.
  w->remaining.fetch_sub(1, std::memory_order_acq_rel);
  detail::orphan_locked(core_, lk, done);
}

work* current_work() noexcept { return detail::this_worker().current; }

void set_worker_desc(const char* fmt, ...) noexcept {
  detail::worker_context& ctx = detail::this_worker();
  if (ctx.core == nullptr || ctx.slot == nullptr || ctx.current == nullptr) return;
  char desc[32];
  std::va_list args;
  va_start(args, fmt);
  std::vsnprintf(desc, sizeof desc, fmt, args);
  va_end(args);
  {
    std::lock_guard lk(ctx.core->mu);
    (void)detail::describe_locked(*ctx.slot, desc);  // out of memory: only the thread name
    // Cleared when the item finishes: the worker counts each item finished at its end while
    // the description is up (not after items it took ahead).
    detail::watch_locked(ctx.core);
  }
  detail::rename_thread(ctx, desc);
}

queue_stats workqueue::stats() const {
  std::lock_guard lk(core_->mu);
  if (core_->id() != id_) {
    // Destroyed: the snapshot destroy() took when the queue had drained.
    if (final_stats_) return *final_stats_;
    // Or retired in the background (async_destroy, an orphan): the core keeps the counters it
    // had when it retired, since nothing counts on a retired core and only a new queue made on
    // it clears them, which this object's reference prevents.
    return final_snapshot_locked();
  }
  detail::start_workers_locked(core_);  // count items on the intake as queued
  return detail::snapshot_stats_locked(core_, name());
}

void workqueue::keep_final_stats() noexcept {
  // A queue that never saw an item has all-zero statistics: stats() builds them from the name
  // (no allocation, which keeps a short-lived per-session queue as cheap as a strand).
  if (detail::stats_empty_locked(core_)) return;
  try {
    final_stats_ = std::make_unique<queue_stats>(final_snapshot_locked());
  } catch (...) {
    // Out of memory: stats() of the destroyed queue reads the retired core instead (stats()).
  }
}

queue_stats workqueue::final_snapshot_locked() const {
  queue_stats out = detail::snapshot_stats_locked(core_, name());
  // A mod_delayed_work may still hold an instance it took off the armed list (counted armed
  // while it moves). The queue is dying with nothing of it running, or retired, so that
  // instance can only be refused, which counts it cancelled (note_move_dropped), possibly once
  // the core has retired and no longer counts: count it so in the snapshot now.
  const std::uint64_t moving = core_->stats.moving;
  out.armed -= moving;
  out.cancelled += moving;
  return out;
}

std::string workqueue::dump(std::size_t limit) const {
  std::string out;
  std::lock_guard lk(core_->mu);
  if (core_->id() != id_) {
    out = "queue '" + name() + "': destroyed\n";
    return out;
  }
  detail::dump_locked(core_, name(), limit, out);
  return out;
}

void workqueue::set_observer(observer* obs) noexcept {
  std::lock_guard lk(core_->mu);
  if (core_->id() == id_) core_->obs.store(obs, std::memory_order_relaxed);
}

void workqueue::note_coalesced() const noexcept { detail::note_coalesced(core_->stats); }

queue_executor workqueue::get_executor() const noexcept { return queue_executor(core_, id_, true); }

}  // namespace wq
