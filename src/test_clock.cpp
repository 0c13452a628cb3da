// SPDX-License-Identifier: BSL-1.0
// wq::test_clock: installs virtual time, walks the queues' armed lists to queue due items, and
// hands the items still armed back to real timers when it goes.
#include <wq/test_clock.hpp>

#include <wq/impl/claim.hpp>

#include <algorithm>
#include <stdexcept>

#include "engine/engine.hpp"
#include "engine/lifecycle.hpp"
#include "engine/queue_core.hpp"
#include "engine/registry.hpp"
#include "engine/timers.hpp"
#include "virtual_time.hpp"

namespace wq {
namespace detail {

constinit std::atomic<clock_point> virtual_now{no_virtual_time};

namespace {

// Whether a test_clock object exists (from the start of its constructor to the end of its
// destructor, so a new clock cannot install itself while the old one hands items back).
constinit std::atomic<bool> clock_alive{false};

// The latest virtual time: a maximal delay armed then still fits in the clock's range.
constexpr clock_point latest_virtual_time =
    clock_point::max() - std::chrono::duration_cast<clock_point::duration>(max_delay);

delayed_work& as_delayed(work& w) noexcept {
  // Safety: only delayed_work items are ever linked on a queue's armed list (arm_claimed).
  return static_cast<delayed_work&>(w);
}

clock_point deadline_of(work& w) noexcept {
  return work_access::deadline(as_delayed(w)).load(std::memory_order_relaxed);
}

// The earliest deadline on a live queue's armed list, among those <= `limit`.
std::optional<clock_point> earliest_armed(clock_point limit) noexcept {
  std::optional<clock_point> first;
  for_each_core([&](queue_core* core) {
    std::lock_guard lk(core->mu);
    if (!core->reg.live) return;
    for (work& w : core->tm.armed) {
      const clock_point d = deadline_of(w);
      // clock_point::max() is "no deadline" (armed for max_delay): never due.
      if (d <= limit && d != clock_point::max() && (!first || d < *first)) first = d;
    }
  });
  return first;
}

}  // namespace
}  // namespace detail

test_clock::test_clock() {
  bool expected = false;
  // Safety (acq_rel): acquire pairs with the previous clock's release at the end of its
  // destructor, so its hand-back walk is complete before this clock installs itself.
  if (!detail::clock_alive.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
    throw std::logic_error("wq::test_clock: another test_clock is alive (at most one at a time)");
  // Safety (relaxed): arming reads it under a queue mutex (virtual_time.hpp); an arming that
  // races this store may use either clock, and both are handled.
  detail::virtual_now.store(std::chrono::steady_clock::now(), std::memory_order_relaxed);
}

test_clock::~test_clock() {
  using namespace detail;
  std::lock_guard guard(advance_mu_);
  const clock_point virtual_time = virtual_now.load(std::memory_order_relaxed);
  // From here on arming uses real time (virtual_time.hpp says why a relaxed store is enough);
  // then every item armed against virtual time gets a real wait for the virtual time it had
  // left. Items armed from now on, and those whose real wait is still outstanding, are not
  // VIRTUAL and keep their real deadlines.
  virtual_now.store(no_virtual_time, std::memory_order_relaxed);
  const clock_point real_time = std::chrono::steady_clock::now();
  for_each_core([&](queue_core* core) {
    std::lock_guard lk(core->mu);
    if (!core->reg.live) return;
    for (work& w : core->tm.armed) {
      auto& st = work_access::state(w);
      if ((st.load(std::memory_order_relaxed) & st_virtual) == 0) continue;
      st.fetch_and(~st_virtual, std::memory_order_relaxed);  // Safety: read under the mutex
      if (deadline_of(w) == clock_point::max()) {  // no deadline: a real wait that never ends
        arm_real_wait_locked(as_delayed(w), clock_point::max());
        continue;
      }
      const auto left = std::max(deadline_of(w) - virtual_time, clock_point::duration::zero());
      arm_real_wait_locked(as_delayed(w), real_time + left);
    }
  });
  // Safety (release): see the constructor.
  clock_alive.store(false, std::memory_order_release);
}

test_clock::time_point test_clock::now() const noexcept {
  // Safety (relaxed): a single value written by this object only; readers need no other data.
  return detail::virtual_now.load(std::memory_order_relaxed);
}

test_clock::time_point test_clock::later_by(std::chrono::nanoseconds d) const noexcept {
  const time_point from = now();
  const auto step = std::chrono::duration_cast<duration>(d);
  return detail::latest_virtual_time - from < step ? detail::latest_virtual_time : from + step;
}

std::size_t test_clock::advance_to(time_point t) noexcept {
  std::lock_guard guard(advance_mu_);
  return advance_locked(t);
}

std::size_t test_clock::advance_by(std::chrono::nanoseconds d) noexcept {
  std::lock_guard guard(advance_mu_);
  // now() is read here, under the mutex. Read before it, a call that waited there while another
  // advance ran would aim at a time already passed, and move nothing.
  return advance_locked(later_by(d));
}

std::size_t test_clock::advance_locked(time_point t) noexcept {
  using namespace detail;
  clock_point target = std::min(t, latest_virtual_time);
  // Time first (so nothing armed from now on is due in this call), then the due items.
  if (target > virtual_now.load(std::memory_order_relaxed)) {
    virtual_now.store(target, std::memory_order_relaxed);  // Safety: see virtual_time.hpp
  } else {
    target = virtual_now.load(std::memory_order_relaxed);
  }
  std::size_t queued = 0;
  // One round per distinct due deadline, earliest first, so items are queued in deadline
  // order across queues too; within a queue, items with one deadline go in arming order (the
  // armed list's order). A round re-reads every list: items may be cancelled meanwhile.
  while (const std::optional<clock_point> due = earliest_armed(target)) {
    for_each_core([&](queue_core* core) {
      std::lock_guard lk(core->mu);
      if (!core->reg.live) return;
      for (auto it = core->tm.armed.begin(); it != core->tm.armed.end();) {
        work& w = *it++;  // step first: queueing unlinks w from the armed list
        const clock_point d = deadline_of(w);
        // Moved later without the mutex meanwhile (move_armed): a later round looks again.
        if (d > *due || !commit_expiry(as_delayed(w), d)) continue;
        queue_expired_locked(core, as_delayed(w), false);
        ++queued;
      }
    });
  }
  return queued;
}

std::optional<test_clock::time_point> test_clock::next_deadline() const noexcept {
  return detail::earliest_armed(time_point::max());
}

std::size_t test_clock::armed_count() const noexcept {
  std::size_t n = 0;
  detail::for_each_core([&](detail::queue_core* core) {
    std::lock_guard lk(core->mu);
    if (core->reg.live) n += core->tm.armed.size();
  });
  return n;
}

}  // namespace wq
