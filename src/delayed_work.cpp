// SPDX-License-Identifier: BSL-1.0
// Delayed items: the library's timer thread, arming, and the timer completion that moves an
// expired item onto its queue.
//
// Timer discipline: an item's timer object is touched only (a) by the thread that owns the
// item's PENDING bit while the item is in transit (not ARMED), or (b) while holding the mutex of
// the queue named in the state word with ARMED set. At most one Asio wait is outstanding per
// item (IN_FLIGHT); the arming path starts one only if none is, and the completion re-arms
// itself lazily when the deadline moved later, so moving a deadline costs no timer operation.
#include <wq/delayed_work.hpp>

#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

#include "queue_core.hpp"

namespace wq {
namespace detail {

namespace {

// wq's internal timer thread. Immortal: delayed items may be destroyed (and wait for their
// outstanding waits) during static destruction, so the thread must outlive them; it is never
// joined and runs only wq's own short, non-blocking completions.
struct timer_thread {
  boost::asio::io_context ctx{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      ctx.get_executor()};
  std::thread thread{[this] { ctx.run(); }};
  timer_thread() { thread.detach(); }
};

void timer_fired(delayed_work* dw) noexcept;

}  // namespace

// An item on an application io_context and its outstanding wait share this block: the wait's
// completion may run after the item is gone (the item cannot wait for it: that context may not
// be running, or may be run by the destroying thread). `item` is guarded by `mu`; the block is
// freed by whichever of the two lets go last.
struct timer_anchor {
  std::mutex mu;
  delayed_work* item = nullptr;
  std::atomic<int> refs{1};  // the item's, plus one while a wait is outstanding

  void release() noexcept {
    // Safety (acq_rel): the last releaser sees every access of the other.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

namespace {

// The completion handler of an item's timer wait. Allocates from wq's handler pool.
struct timer_handler {
  delayed_work* item;
  timer_anchor* anchor;  // non-null for an item on an application io_context
  using allocator_type = handler_allocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(const boost::system::error_code&) const noexcept {
    if (anchor == nullptr) {
      timer_fired(item);
      return;
    }
    {
      std::lock_guard lk(anchor->mu);  // the item cannot go while we hold it
      if (anchor->item != nullptr) timer_fired(anchor->item);
    }
    anchor->release();
  }
};

void start_wait(delayed_work& dw, std::chrono::steady_clock::time_point deadline) noexcept {
  auto& timer = work_access::timer(dw);
  timer_anchor* anchor = work_access::anchor(dw);
  try {
    timer.expires_at(deadline);
    if (anchor != nullptr) anchor->refs.fetch_add(1, std::memory_order_relaxed);
    timer.async_wait(timer_handler{&dw, anchor});
  } catch (...) {
    // Out of memory for the wait's handler: the item is armed and nobody would ever queue it,
    // so losing it silently is worse than stopping. (The handler pool recycles its blocks, so
    // this needs the system to be out of memory.)
    std::terminate();
  }
}

}  // namespace

boost::asio::io_context& timer_context() {
  static timer_thread* t = new timer_thread;  // Safety: intentionally leaked (see above).
  return t->ctx;
}

void clear_pending(work* item) noexcept {
  work_access::state(*item).fetch_and(~st_pending, std::memory_order_release);
}

void begin_run(work* item) noexcept { begin_run_inline(*item); }

queue_status arm_claimed(queue_core* core, std::uint64_t id, delayed_work& dw,
                         std::chrono::nanoseconds delay, const location* where,
                         bool count) noexcept {
  const auto now = std::chrono::steady_clock::now();
  const auto deadline = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay);
  std::unique_lock lk(core->mu);
  if (core->id() != id || !core->live) return queue_status::rejected;
  // A dying queue refuses even chained arming: a timer cannot be allowed to fire into it.
  if (core->dying) return queue_status::rejected;
  if (core->draining > 0 && this_worker().core != core) return queue_status::rejected;
  work_access::deadline(dw).store(deadline, std::memory_order_relaxed);
  core->armed.push_back(dw);
  auto& st = work_access::state(dw);
  state_t s = st.load(std::memory_order_relaxed);
  state_t ns;
  do {
    ns = with_queue_id(s, id) | st_armed | st_in_flight;
    // Safety (acq_rel): acquire pairs with the completion's release clear of IN_FLIGHT, so if we
    // start a new wait we see that the previous one is finished with the timer object.
  } while (!st.compare_exchange_weak(s, ns, std::memory_order_acq_rel,
                                     std::memory_order_relaxed));
  if ((s & st_in_flight) == 0) {
    start_wait(dw, deadline);
  } else if (work_access::timer(dw).expiry() > deadline) {
    // The outstanding wait would complete too late for the new, earlier deadline: cut it short;
    // its completion finds ARMED and re-arms for the new deadline. (A later deadline needs
    // nothing: the completion re-arms lazily when it comes early.) Safety: timer calls are
    // serialised by this queue's mutex, held here, while ARMED names this queue.
    work_access::timer(dw).cancel();
  }
  if (count) {
    ++core->stats.queued;
    if (observer* o = core->obs.load(std::memory_order_relaxed))
      o->on_queued(core->name, dw, true, where != nullptr ? *where : location{});
  }
  return queue_status::queued;
}

namespace {

void timer_fired(delayed_work* dw) noexcept {
  auto& st = work_access::state(*dw);
  for (;;) {
    state_t s = st.load(std::memory_order_acquire);
    if ((s & st_armed) == 0) {
      // Cancelled (or in transit to a new deadline): this wait is over. Safety (release): the
      // next arming thread acquires this and may then use the timer object.
      if (st.compare_exchange_weak(s, s & ~st_in_flight, std::memory_order_release,
                                   std::memory_order_relaxed))
        return;
      continue;
    }
    queue_core* core = lookup_core(queue_id_of(s));
    WQ_ASSERT(core != nullptr, "wq: armed item names no queue");
    std::unique_lock lk(core->mu);
    s = st.load(std::memory_order_relaxed);
    if ((s & st_armed) == 0 || queue_id_of(s) != core->id()) continue;  // changed under us
    const auto deadline = work_access::deadline(*dw).load(std::memory_order_relaxed);
    if (std::chrono::steady_clock::now() < deadline) {
      start_wait(*dw, deadline);  // fired early relative to a postponed deadline: re-arm lazily
      return;
    }
    core->armed.erase(core->armed.iterator_to(*dw));
    // The wait is done and the item leaves the armed state in one step; from here on the item
    // is QUEUED (set by insert_locked) and may run and be freed once the mutex is released.
    st.fetch_and(~(st_armed | st_in_flight), std::memory_order_acq_rel);
    if (core->draining > 0) {
      core->deferred.push_back(*dw);  // queued when the drain ends
      st.fetch_or(st_queued, std::memory_order_release);
      set_list(*dw, list_kind::deferred);
    } else {
      post_worker(core, insert_locked(core, *dw));
    }
    return;
  }
}

}  // namespace
}  // namespace detail

delayed_work::delayed_work() : timer_(detail::timer_context()) {}

delayed_work::delayed_work(const work_ops& ops) : work(ops), timer_(detail::timer_context()) {}

delayed_work::delayed_work(boost::asio::io_context& timer_context)
    : timer_(timer_context), anchor_(new detail::timer_anchor) {
  anchor_->item = this;
}

delayed_work::delayed_work(const work_ops& ops, boost::asio::io_context& timer_context)
    : work(ops), timer_(timer_context), anchor_(new detail::timer_anchor) {
  anchor_->item = this;
}

delayed_work::~delayed_work() {
  // Before the timer goes: an armed instance is cancelled here (its wait then completes below).
  detail::check_destroy(*this);
  if (anchor_ != nullptr) {
    {
      // Waits for a completion that is running now; later ones find the item gone.
      std::lock_guard lk(anchor_->mu);
      anchor_->item = nullptr;
    }
    anchor_->release();
    return;  // the timer's destructor cancels an outstanding wait
  }
  auto& st = detail::work_access::state(*this);
  // Safety (acquire): pairs with the completion's release clear, after which it never touches
  // this object again.
  if ((st.load(std::memory_order_acquire) & detail::st_in_flight) == 0) return;
  // The item is idle, so no completion will touch the timer object: cancelling makes the
  // outstanding wait complete now; then wait for that completion to let go of the item.
  timer_.cancel();
  for (unsigned spins = 0; (st.load(std::memory_order_acquire) & detail::st_in_flight) != 0;
       ++spins)
    detail::backoff(spins);
}

}  // namespace wq
