// SPDX-License-Identifier: BSL-1.0
// Delayed items' timers: see timers.hpp (the timer discipline is stated there).
#include "timers.hpp"

#include <exception>
#include <utility>

#include "backoff.hpp"

namespace wq::detail {

namespace {

// The completion handler of an item's timer wait. Allocates from wq's handler pool. For an
// item on an application io_context it holds one reference on the anchor, released when it
// runs or, if the io_context is destroyed without running it, when it is destroyed.
class timer_handler {
 public:
  using allocator_type = handler_allocator<void>;
  timer_handler(delayed_work* item, timer_anchor* anchor, timer_fired_fn fired) noexcept
      : item_(item), anchor_(anchor), fired_(fired) {}
  timer_handler(timer_handler&& other) noexcept
      : item_(other.item_), anchor_(std::exchange(other.anchor_, nullptr)), fired_(other.fired_) {}
  timer_handler& operator=(timer_handler&&) = delete;
  ~timer_handler() {
    if (anchor_ != nullptr) anchor_->release();
  }
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(const boost::system::error_code&) noexcept {
    if (anchor_ == nullptr) {
      fired_(item_);
      return;
    }
    {
      std::lock_guard lk(anchor_->mu);  // the item cannot go while we hold it
      if (anchor_->item != nullptr) fired_(anchor_->item);
    }
    std::exchange(anchor_, nullptr)->release();
  }

 private:
  delayed_work* item_;
  timer_anchor* anchor_;  // non-null for an item on an application io_context, until released
  timer_fired_fn fired_;  // the engine's completion step (engine.cpp)
};

}  // namespace

void start_wait(delayed_work& dw, clock_point deadline, timer_fired_fn fired) noexcept {
  auto& timer = work_access::timer(dw);
  timer_anchor* anchor = work_access::anchor(dw);
  try {
    timer.expires_at(deadline);
    if (anchor != nullptr) anchor->refs.fetch_add(1, std::memory_order_relaxed);
    timer.async_wait(timer_handler{&dw, anchor, fired});  // the handler owns that reference
  } catch (...) {
    // Out of memory for the wait's handler: the item is armed and nobody would ever queue it,
    // so losing it silently is worse than stopping. (The handler pool recycles its blocks, so
    // this needs the system to be out of memory.)
    std::terminate();
  }
}

void wait_timer_idle(delayed_work& dw) noexcept {
  // Safety (acquire): pairs with the starter's release clear, so its timer calls happen before
  // ours. The starter needs no lock to finish, so waiting here under a queue mutex is safe.
  auto& starting = work_access::wait_starting(dw);
  for (unsigned spins = 0; starting.load(std::memory_order_acquire); ++spins) backoff(spins);
}

bool arm_locked(queue_core* core, std::uint64_t id, delayed_work& dw, clock_point deadline,
                bool real) noexcept {
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
      // A fresh wait, started by the caller once it has released the mutex (discipline (c)).
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
  return start;
}

void disarm_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept {
  core->tm.armed.erase(core->tm.armed.iterator_to(dw));
  // The item leaves the armed state (and, for a completing wait, the wait ends) in one step.
  // Safety (acq_rel): an outstanding wait that acquires the state sees the item off the armed
  // list; the mutex publishes the rest.
  work_access::state(dw).fetch_and(wait_done ? ~(st_armed | st_in_flight) : ~st_armed,
                                   std::memory_order_acq_rel);
}

}  // namespace wq::detail
