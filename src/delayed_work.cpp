// SPDX-License-Identifier: BSL-1.0
// Delayed items: the library's timer thread, arming, and the timer completion that moves an
// expired item onto its queue.
//
// Timer discipline: an item's timer object is touched only (a) by the thread that owns the
// item's PENDING bit while the item is in transit (not ARMED), (b) while holding the mutex of
// the queue named in the state word with ARMED set, after waiting for wait_starting to clear,
// or (c) by the arming thread that set wait_starting (under that mutex), until it clears it.
// (c) lets arming start a fresh wait after releasing the queue's mutex: the Asio call takes the
// timer context's own lock, and holding the queue's mutex across it made the timer thread,
// completing other items of that queue, queue up behind every arming call (p99 lateness of
// milliseconds while a thread armed many items). At most one Asio wait is outstanding per item
// (IN_FLIGHT); the arming path starts one only if none is, and the completion re-arms itself
// lazily when the deadline moved later, so moving a deadline costs no timer operation.
//
// Under a wq::test_clock (virtual_time.hpp) deadlines are virtual and no wait is started: the
// item is ARMED and VIRTUAL, without IN_FLIGHT, and the clock queues it when its deadline comes.
// A wait still outstanding from real time only ends there (the item then counts as VIRTUAL).
// When the clock goes it gives every VIRTUAL item a real wait; ARMED items without VIRTUAL
// always have a wait outstanding (IN_FLIGHT).
#include <wq/delayed_work.hpp>

#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>

#include "queue_core.hpp"
#include "trace.hpp"
#include "virtual_time.hpp"

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

// The completion handler of an item's timer wait. Allocates from wq's handler pool. For an
// item on an application io_context it holds one reference on the anchor, released when it
// runs or, if the io_context is destroyed without running it, when it is destroyed.
class timer_handler {
 public:
  using allocator_type = handler_allocator<void>;
  timer_handler(delayed_work* item, timer_anchor* anchor) noexcept : item_(item), anchor_(anchor) {}
  timer_handler(timer_handler&& other) noexcept
      : item_(other.item_), anchor_(std::exchange(other.anchor_, nullptr)) {}
  timer_handler& operator=(timer_handler&&) = delete;
  ~timer_handler() {
    if (anchor_ != nullptr) anchor_->release();
  }
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(const boost::system::error_code&) noexcept {
    if (anchor_ == nullptr) {
      timer_fired(item_);
      return;
    }
    {
      std::lock_guard lk(anchor_->mu);  // the item cannot go while we hold it
      if (anchor_->item != nullptr) timer_fired(anchor_->item);
    }
    std::exchange(anchor_, nullptr)->release();
  }

 private:
  delayed_work* item_;
  timer_anchor* anchor_;  // non-null for an item on an application io_context, until released
};

void start_wait(delayed_work& dw, std::chrono::steady_clock::time_point deadline) noexcept {
  auto& timer = work_access::timer(dw);
  timer_anchor* anchor = work_access::anchor(dw);
  try {
    timer.expires_at(deadline);
    if (anchor != nullptr) anchor->refs.fetch_add(1, std::memory_order_relaxed);
    timer.async_wait(timer_handler{&dw, anchor});  // the handler owns that reference
  } catch (...) {
    // Out of memory for the wait's handler: the item is armed and nobody would ever queue it,
    // so losing it silently is worse than stopping. (The handler pool recycles its blocks, so
    // this needs the system to be out of memory.)
    std::terminate();
  }
}

}  // namespace

void wait_timer_idle(delayed_work& dw) noexcept {
  // Safety (acquire): pairs with the starter's release clear, so its timer calls happen before
  // ours. The starter needs no lock to finish, so waiting here under a queue mutex is safe.
  auto& starting = work_access::wait_starting(dw);
  for (unsigned spins = 0; starting.load(std::memory_order_acquire); ++spins) backoff(spins);
}

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
  const auto span = std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay);
  auto deadline = std::chrono::steady_clock::now() + span;
  std::unique_lock lk(core->mu);
  if (core->id() != id || !core->reg.live) return queue_status::rejected;
  // A dying queue refuses even chained arming: a timer cannot be allowed to fire into it.
  if (core->lc.dying) return queue_status::rejected;
  if (core->lc.draining > 0 && this_worker().core != core) return queue_status::rejected;
  // Safety (relaxed, under the mutex): see virtual_time.hpp. The test clock keeps virtual time
  // at most max_delay before the clock's end, so the sum cannot overflow.
  const clock_point virtual_time = virtual_now.load(std::memory_order_relaxed);
  const bool real = virtual_time == no_virtual_time;
  if (!real) [[unlikely]]
    deadline = virtual_time + span;
  work_access::deadline(dw).store(deadline, std::memory_order_relaxed);
  core->tm.armed.push_back(dw);
  if (core->tm.armed.size() == 1) note_work_locked(core);  // an armed item is outstanding work
  auto& st = work_access::state(dw);
  state_t s = st.load(std::memory_order_relaxed);
  state_t ns;
  do {
    // Under virtual time no wait is started (an outstanding one keeps its IN_FLIGHT bit).
    ns = (with_queue_id(s, id) & ~st_virtual) | st_armed | (real ? st_in_flight : st_virtual);
    // Safety (acq_rel): acquire pairs with the completion's release clear of IN_FLIGHT, so if we
    // start a new wait we see that the previous one is finished with the timer object.
  } while (!st.compare_exchange_weak(s, ns, std::memory_order_acq_rel, std::memory_order_relaxed));
  bool start = false;
  if (real) {
    // Whoever started the previous wait may not have let go of the timer yet (its wait can
    // complete, and the item run and be armed again, before it does).
    wait_timer_idle(dw);
    if ((s & st_in_flight) == 0) {
      // A fresh wait, started below once the mutex is released (timer discipline (c)).
      work_access::wait_starting(dw).store(true, std::memory_order_relaxed);  // under the mutex
      start = true;
    } else if (work_access::timer(dw).expiry() > deadline) {
      // The outstanding wait would complete too late for the new, earlier deadline: cut it
      // short; its completion finds ARMED and re-arms for the new deadline. (A later deadline
      // needs nothing: the completion re-arms lazily when it comes early.) Safety: timer calls
      // are serialised by this queue's mutex, held here, while ARMED names this queue.
      work_access::timer(dw).cancel();
    }
  }
  // Under virtual time nothing more: the test clock queues the item (an outstanding real wait,
  // if any, only finds that virtual time has not reached the deadline).
  if (count) {
    ++core->stats.queued;
    if (observer* o = core->obs.load(std::memory_order_relaxed))
      o->on_queued(core->name, dw, true, where != nullptr ? *where : location{});
  }
  if (start) {
    lk.unlock();
    // Safety: from here the item may be cancelled, re-armed or destroyed by other threads, but
    // each of them waits for wait_starting to clear before touching the timer (the destructor
    // before the timer goes), so `dw` is alive and its timer ours until the store below.
    start_wait(dw, deadline);
    // Safety (release): publishes the timer calls above to the next thread that touches it.
    work_access::wait_starting(dw).store(false, std::memory_order_release);
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
    // Safety (relaxed, under the mutex): see virtual_time.hpp.
    const clock_point virtual_time = virtual_now.load(std::memory_order_relaxed);
    if (virtual_time != no_virtual_time || (s & st_virtual) != 0) [[unlikely]] {
      // A real wait meets virtual time: armed before the test clock was installed, or left
      // over from an earlier arming. While the clock is installed and has not reached the
      // deadline, the wait ends here and the clock queues the item (it is VIRTUAL from now on).
      // With VIRTUAL set and the clock gone, the clock's destructor has yet to reach this
      // queue (it clears VIRTUAL under this mutex) and gives the item a real wait for the
      // virtual time it had left: comparing a virtual deadline with real time here could fire
      // it early. Safety (release): as the cancelled case above.
      if (virtual_time == no_virtual_time || virtual_time < deadline) {
        st.fetch_or(st_virtual, std::memory_order_relaxed);  // Safety: read under the mutex
        st.fetch_and(~st_in_flight, std::memory_order_release);
        return;
      }
    } else if (std::chrono::steady_clock::now() < deadline) {
      // Fired early relative to a postponed deadline: re-arm lazily. (This completion may
      // have come before the thread that started its wait let go of the timer.)
      wait_timer_idle(*dw);
      start_wait(*dw, deadline);
      return;
    }
    queue_expired_locked(core, *dw, true);
    return;
  }
}

}  // namespace

void queue_expired_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept {
  auto& st = work_access::state(dw);
  core->tm.armed.erase(core->tm.armed.iterator_to(dw));
  // Queued now, as the kernel's delayed_work_timer_fn queues (arming was not a queueing).
  WQ_TRACE_QUEUE_WORK(&dw, trace_name(dw), core->name.c_str(), core->id());
  // The item leaves the armed state (and, for a completing wait, the wait ends) in one step;
  // from here on the item is QUEUED (set by insert_locked) and may run and be freed once the
  // mutex is released. Safety (release): an outstanding wait that acquires the state sees the
  // item off the armed list; the mutex publishes the rest.
  st.fetch_and(wait_done ? ~(st_armed | st_in_flight) : ~st_armed, std::memory_order_acq_rel);
  if (core->lc.draining > 0) {
    core->lc.deferred.push_back(dw);  // queued when the drain ends
    st.fetch_or(st_queued, std::memory_order_release);
    set_list(dw, list_kind::deferred);
  } else {
    post_worker(core, insert_locked(core, dw));
  }
}

void arm_real_wait_locked(delayed_work& dw, clock_point deadline) noexcept {
  work_access::deadline(dw).store(deadline, std::memory_order_relaxed);
  // Safety (acq_rel): acquire pairs with a completion's release clear of IN_FLIGHT, as in
  // arm_claimed: a new wait is started only once the previous one is done with the timer.
  const state_t s = work_access::state(dw).fetch_or(st_in_flight, std::memory_order_acq_rel);
  wait_timer_idle(dw);
  if ((s & st_in_flight) == 0) {
    start_wait(dw, deadline);
  } else if (work_access::timer(dw).expiry() > deadline) {
    // Safety: timer calls are serialised by the mutex of the queue ARMED names, held here.
    work_access::timer(dw).cancel();  // its completion re-arms for `deadline`
  }
}
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
  // An arming thread may still be starting a wait (the item was cancelled meanwhile): let it
  // finish with the timer first.
  detail::wait_timer_idle(*this);
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
