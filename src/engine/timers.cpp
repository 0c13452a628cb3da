// SPDX-License-Identifier: BSL-1.0
// Delayed items' timers: see timers.hpp (the timer discipline is stated there).
#include "timers.hpp"

#include <array>
#include <cstddef>
#include <exception>
#include <new>
#include <unordered_map>
#include <utility>

#include <boost/asio/post.hpp>

#include "backoff.hpp"

namespace wq::detail {

namespace {

// Waits orphaned by destroyed items (orphan_wait), and what the timer thread is completing.
// Immortal: items are destroyed, and the timer thread completes waits, during static
// destruction too.
//   mu:         guards `addresses`.
//   addresses:  address of each destroyed item whose wait has not completed yet, with how many
//               such waits it has (items built at that address later may be orphaned too).
//               Its bucket array, grown by a spike, is freed when it empties (take_orphan).
// A completion is known by its item's address only, so completions at one address are
// interchangeable: while n orphaned waits and a live item's wait are outstanding there, the
// first n completions to run take the entries and the last one completes the live item's
// wait. That is the same step, run at most a moment later: the orphaned waits were cancelled
// when their items went, so their completions are already due. (The timer thread usually runs
// them first anyway: they were queued before the live item's wait existed.) The live item
// keeps IN_FLIGHT until then, so its arming, cancelling and destruction see one outstanding
// wait, as always.
//   count:      A (seq_cst), changed under mu only: the number of entries; completions look at
//               `addresses` only when it is not zero, so the common completion takes no lock.
//   completing: A (seq_cst): the item wq's timer thread is completing a wait of (or nullptr).
//               Written by the timer thread only.
struct orphans {
  std::mutex mu;
  std::unordered_map<const delayed_work*, std::uint32_t> addresses;
  std::atomic<std::uint64_t> count{0};
  std::atomic<const delayed_work*> completing{nullptr};
};

orphans& orphan_list() noexcept {
  static orphans* o = new orphans;  // Safety: intentionally leaked (see above).
  return *o;
}

// Bucket arrays up to this many buckets are kept when the list empties; a larger one (left by
// a spike of destroyed items, e.g. 10^5 timeouts torn down at once: 8 bytes per bucket) goes
// back to the heap, so that the memory returns after the destroy.
constexpr std::size_t orphan_buckets_kept = 1024;

// Takes one orphan entry of `dw` off the list. Returns: whether there was one. Frees the
// list's bucket array when it empties from a spike (the free happens after mu is released).
bool take_orphan(orphans& o, const delayed_work* dw) noexcept {
  std::unordered_map<const delayed_work*, std::uint32_t> spent;  // allocates nothing
  {
    std::lock_guard lk(o.mu);
    auto it = o.addresses.find(dw);
    if (it == o.addresses.end()) return false;
    if (--it->second == 0) o.addresses.erase(it);
    o.count.fetch_sub(1, std::memory_order_seq_cst);
    if (o.addresses.empty() && o.addresses.bucket_count() > orphan_buckets_kept)
      spent.swap(o.addresses);  // noexcept: the default allocator compares equal
  }
  return true;
}

// The completions of waits on wq's timer thread not handed to the engine yet, and whether a
// handler that hands them over is posted. Asio runs the completions of the timers that expired
// together back to back, each as its own handler; each appends here, and the first posts
// batch_handler, which Asio runs after them (a post from a running handler goes behind the
// handlers already queued), so the engine gets them in one call and takes a queue's mutex once
// for them instead of once per item. Touched by wq's timer thread only (the one thread that
// runs its io_context), never while the engine is handed a batch (it runs no Asio handler).
// Constant-initialised and trivially destructible: usable during static destruction too.
struct fired_batch {
  std::array<fired_wait, fired_batch_max> waits{};
  std::size_t n = 0;
  timer_fired_fn fn = nullptr;
  bool handler_posted = false;
};

constinit fired_batch timer_batch{};

// Hands every completion in `b` to the engine.
void hand_over(fired_batch& b) noexcept {
  const std::size_t n = std::exchange(b.n, 0);
  if (n != 0) b.fn(b.waits.data(), n);
}

// Runs the completions collected since it was posted (see fired_batch).
class batch_handler {
 public:
  using allocator_type = handler_allocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()() const noexcept {
    timer_batch.handler_posted = false;
    hand_over(timer_batch);
  }
};

// Runs on wq's timer thread: adds a completed wait of `item` to the batch (handing the batch
// over first if it came from another engine step, and at once if it is full), and posts the
// handler that hands it over unless one is posted. Out of memory for that handler, hands the
// batch over at once: nothing is left behind.
void defer_completion(delayed_work* item, timer_fired_fn fired, clock_point reached) noexcept {
  fired_batch& b = timer_batch;
  if (b.n != 0 && b.fn != fired) hand_over(b);
  b.fn = fired;
  b.waits[b.n++] = fired_wait{item, reached, true};
  if (b.n == b.waits.size()) {
    hand_over(b);
    return;
  }
  if (b.handler_posted) return;
  try {
    boost::asio::post(timer_context(), batch_handler{});
    b.handler_posted = true;
  } catch (...) {
    hand_over(b);
  }
}

// The completion handler of an item's timer wait. Allocates from wq's handler pool. For an
// item on an application io_context it holds one reference on the anchor, released when it
// runs or, if the io_context is destroyed without running it, when it is destroyed.
class timer_handler {
 public:
  using allocator_type = handler_allocator<void>;
  timer_handler(delayed_work* item, timer_anchor* anchor, timer_fired_fn fired,
                clock_point expiry) noexcept
      : item_(item), anchor_(anchor), fired_(fired), expiry_(expiry) {}
  timer_handler(timer_handler&& other) noexcept
      : item_(other.item_),
        anchor_(std::exchange(other.anchor_, nullptr)),
        fired_(other.fired_),
        expiry_(other.expiry_) {}
  timer_handler& operator=(timer_handler&&) = delete;
  ~timer_handler() {
    if (anchor_ != nullptr) anchor_->release();
  }
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(const boost::system::error_code& ec) noexcept {
    const clock_point reached = ec ? wait_unreached : expiry_;  // see timer_fired_fn
    if (anchor_ == nullptr) {
      defer_completion(item_, fired_, reached);
      return;
    }
    {
      std::lock_guard lk(anchor_->mu);  // the item cannot go while we hold it
      if (anchor_->item != nullptr) {
        const fired_wait one{anchor_->item, reached, false};
        fired_(&one, 1);
      }
    }
    std::exchange(anchor_, nullptr)->release();
  }

 private:
  delayed_work* item_;
  timer_anchor* anchor_;  // non-null for an item on an application io_context, until released
  timer_fired_fn fired_;  // the engine's completion step (engine.cpp)
  clock_point expiry_;    // the deadline this wait was started for
};

}  // namespace

bool begin_completion(const fired_wait& w) noexcept {
  if (!w.shared) return true;
  orphans& o = orphan_list();
  // Safety (seq_cst): store, then load: orphan_wait lists, then loads (see timers.hpp).
  o.completing.store(w.item, std::memory_order_seq_cst);
  if (o.count.load(std::memory_order_seq_cst) != 0 && take_orphan(o, w.item)) {
    o.completing.store(nullptr, std::memory_order_release);
    return false;  // the item is gone: its memory is not touched
  }
  return true;
}

void end_completion(const fired_wait& w) noexcept {
  // Safety (release): a destroyer that reads this (or a later value) sees every access of the
  // item before it.
  if (w.shared) orphan_list().completing.store(nullptr, std::memory_order_release);
}

void orphan_wait(delayed_work& dw) noexcept {
  auto& st = work_access::state(dw);
  // Safety (acquire): pairs with the completion's release clear, after which it never touches
  // the item again.
  if ((st.load(std::memory_order_acquire) & st_in_flight) == 0) return;
  orphans& o = orphan_list();
  bool listed = false;
  try {
    std::lock_guard lk(o.mu);
    ++o.addresses[&dw];
    // Safety (seq_cst): counted under mu, with the entry, so the count never falls below the
    // entries listed (a completion may take this entry as soon as mu is released). Then
    // `completing` is read below: the completion stores that, then reads the count.
    o.count.fetch_add(1, std::memory_order_seq_cst);
    listed = true;
  } catch (const std::bad_alloc&) {
    // No memory to list it: make the wait complete now and wait for that below.
  }
  if (!listed) {
    work_access::timer(dw).cancel();
    for (unsigned spins = 0; (st.load(std::memory_order_acquire) & st_in_flight) != 0; ++spins)
      backoff(spins);
    return;
  }
  // Either the completion saw the count above, or this sees it completing the item.
  for (unsigned spins = 0; o.completing.load(std::memory_order_seq_cst) == &dw; ++spins)
    backoff(spins);  // a completion touching the item now: it returns shortly
  // Safety (acquire): the completion cleared IN_FLIGHT: it let go of the item without seeing the
  // entry, which is then taken back here. Otherwise the entry stays for the completion to take.
  if ((st.load(std::memory_order_acquire) & st_in_flight) == 0) (void)take_orphan(o, &dw);
}

void start_wait(delayed_work& dw, clock_point deadline, timer_fired_fn fired) noexcept {
  auto& timer = work_access::timer(dw);
  timer_anchor* anchor = work_access::anchor(dw);
  try {
    timer.expires_at(deadline);
    if (anchor != nullptr) anchor->refs.fetch_add(1, std::memory_order_relaxed);
    timer.async_wait(
        timer_handler{&dw, anchor, fired, deadline});  // the handler owns that reference
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

bool commit_expiry(delayed_work& dw, clock_point seen) noexcept {
  // Safety (acq_rel): see timers.hpp; on failure the caller re-reads the deadline under mu.
  const clock_point mark(clock_point::duration(~seen.time_since_epoch().count()));
  return work_access::deadline(dw).compare_exchange_strong(seen, mark, std::memory_order_acq_rel,
                                                           std::memory_order_relaxed);
}

void disarm_locked(queue_core* core, delayed_work& dw, bool wait_done) noexcept {
  core->tm.armed.erase(core->tm.armed.iterator_to(dw));
  // On the application's io_context an outstanding wait is outstanding work: an item leaving
  // ARMED other than through that wait's completion (a cancel, a forced fire) must not keep the
  // context's run() from returning until its old deadline, as a cancelled steady_timer does
  // not. The wait then completes at once with operation_aborted and lets go of the item (or
  // re-arms it lazily if it is armed again by then). On wq's timer thread it is left
  // outstanding for a later arming to reuse, so a cancel costs no timer operation there.
  // Safety (relaxed): IN_FLIGHT of an ARMED item changes only under this mutex, held here;
  // timer calls are serialised by it and by wait_starting (timer discipline (b)).
  if (!wait_done && work_access::anchor(dw) != nullptr &&
      (work_access::state(dw).load(std::memory_order_relaxed) & st_in_flight) != 0) {
    wait_timer_idle(dw);
    work_access::timer(dw).cancel();
  }
  // The item leaves the armed state (and, for a completing wait, the wait ends) in one step,
  // and with it any COALESCED mark made while it was armed (as unlink_locked's: only a call
  // told already_pending during the transit that follows makes a refusal link it).
  // Safety (acq_rel): an outstanding wait that acquires the state sees the item off the armed
  // list; the mutex publishes the rest.
  work_access::state(dw).fetch_and(
      wait_done ? ~(st_armed | st_in_flight | st_coalesced) : ~(st_armed | st_coalesced),
      std::memory_order_acq_rel);
}

}  // namespace wq::detail
