// SPDX-License-Identifier: BSL-1.0
// wq/test_clock.hpp: `test_clock`, virtual time for tests of code that uses delayed work. While
// a test_clock exists, every delayed item in the process (queue_delayed_work, enqueue_delayed,
// mod_delayed_work, post_delayed) is armed against the clock's virtual time instead of a real
// timer, and fires only when the test moves that time forward with `advance()`: a Catch2 test
// proves timeouts, debounces and periodic work deterministically, with no sleeps, in
// microseconds of real time (see samples/05_testing_delayed_work.cpp).
//
// Thread safety: stated on the class.
//
// Lifetime: the clock is installed by its constructor and removed by its destructor (RAII).
// Items armed with real timers before it was installed are adopted (below); items still armed
// against virtual time when it is destroyed go back to real timers for the virtual time they had
// left. Nothing is lost and nothing fires early either way.
#pragma once

#include <wq/config.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <mutex>
#include <optional>

#include <wq/jiffies.hpp>

namespace wq {

/// Process-wide virtual time for delayed work: construct one in a test, arm items, `advance()`.
///
/// \code
///   wq::test_clock clock;                    // virtual time starts now, frozen
///   wq::workqueue q{"t"};
///   q.enqueue_delayed<&session::idle>(s, 30s);
///   clock.advance(29s);  q.flush();          // nothing due yet: the timeout has not run
///   clock.advance(1s);   q.flush();          // due: queued by advance(), run to completion
/// \endcode
///
/// Semantics while the clock is installed:
///   - Time stands still unless advance() or advance_to() moves it. `now()` starts at
///     `std::chrono::steady_clock::now()` read by the constructor, so virtual deadlines and
///     real ones share one axis; `delayed_work::deadline()` reports virtual deadlines.
///   - Arming computes the deadline from virtual now and starts no Asio wait: the item waits on
///     its queue's armed list (and counts in `queue_stats::armed`) until an advance reaches its
///     deadline. This holds whatever the item's timer context (`delayed_work{io}` too): the
///     expiry happens inside advance(), on the calling thread.
///   - An expiry is exactly the timer firing (rules 18-20, 53, 54): the item is queued on the
///     queue it was armed for, or held until a drain of that queue ends (rule 49). A delay of
///     zero still queues at once (rule 19); cancel, mod_delayed_work, flush_delayed_work,
///     disable and destroy behave exactly as with real timers.
///   - An item armed with a real timer before the clock was installed keeps its deadline and is
///     adopted: it fires when virtual time reaches that deadline (its real timer, when it
///     expires, only notices that virtual time has not). Arming that races the construction or
///     destruction of the clock uses one time base or the other, never neither.
///
/// "Run the queues to idle" after an advance is the queue's own business: `q.flush()` for a
/// queue on threads, or `io.restart(); io.poll();` for a queue on an io_context the test
/// drives. `advance(d, settle)` interleaves the two for periodic work.
///
/// Memory ordering: writes made before a call to advance() or advance_to() are visible inside
/// every item that call queued (it queues them under the queue's lock, as a firing timer does,
/// rule 6).
///
/// Thread safety: at most one exists at a time (a second one is refused). Every member function
/// may be called from any thread, including from work items; advance() and advance_to() calls
/// are serialised with each other, and each advance(d) reads now() inside that serialisation, so
/// concurrent calls add up (two threads each advancing by 1 us move time by 2 us).
/// advance(d, settle) is a sequence of advance_to() calls towards the time it read when it
/// began, so a concurrent advance may end inside its span rather than add to it. Not from an
/// observer or a diagnostic handler (they run under wq's locks).
/// Construction and destruction must not race with other calls on the object.
class test_clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;

  /// Installs virtual time for the whole process, starting at the real steady_clock's now.
  /// Throws: std::logic_error if another test_clock is alive: the clock is a process-wide
  /// resource that cannot be shared, like a port already bound (tests that run in one process
  /// must construct theirs one after another).
  test_clock();

  /// Removes virtual time. Effects: every item still armed against virtual time gets a real
  /// timer wait for the virtual time it had left (its `deadline()` becomes a real one), so it
  /// fires as if real time had been running from here on.
  ~test_clock();

  test_clock(const test_clock&) = delete;
  test_clock& operator=(const test_clock&) = delete;

  /// Returns: the current virtual time.
  [[nodiscard]] time_point now() const noexcept;

  /// Moves virtual time forward by `d` (a `wq::jiffies` or any `std::chrono` duration,
  /// converted as delays are: rounded up; negative and NaN mean zero) and queues every armed
  /// item whose deadline has come.
  ///
  /// Effects: sets now() to the new time first, then queues the due items in deadline order
  /// (ties in arming order). Items armed while it runs, including by the items it queues (which
  /// may start running on their queues at once), are measured from the new time, so they are
  /// never due in the same call: the result does not depend on how fast workers are.
  /// Returns: the number of items queued (or held by a drain, rule 49).
  /// Complexity: linear in the number of armed items, times the number of distinct deadlines
  /// that came due. Note: virtual time saturates about `max_delay` before the end of the
  /// steady_clock's range, so even a maximal delay armed afterwards cannot overflow. A `d` longer
  /// than the longest delay (`max_delay`, about 100 years) moves time by that much, as a delay
  /// that long is clamped. Once virtual time has saturated (an `advance_to(time_point::max())`,
  /// or enough advances), it cannot move again: an item armed afterwards never comes due under
  /// this clock, and fires only once the clock is destroyed (then as if real time ran on).
  template <class Delay>
  requires wq::delay<Delay> std::size_t advance(Delay d)
  noexcept { return advance_by(delay_to_nanoseconds(d)); }

  /// Moves virtual time forward by `d` one due deadline at a time, calling `settle()` once after
  /// each step; the last step ends at `now() + d` (whether or not a deadline falls there), so
  /// `settle` runs at least once. `settle` runs the queues to idle (`q.flush()`, or
  /// `io.restart(); io.poll();`), so items re-armed by the items that ran are due within the same
  /// call. This is how a test steps periodic work: a 1 s heartbeat runs 10 times in
  /// `advance(10s, [&] { q.flush(); })`, once in `advance(10s)`.
  /// Returns: the number of items queued. Throws: whatever `settle` throws.
  template <class Delay, class Settle>
  requires wq::delay<Delay> && std::invocable<Settle&> std::size_t advance(Delay d,
                                                                           Settle&& settle);

  /// Moves virtual time forward to `t` (an earlier `t` moves nothing but still queues what is
  /// due) and queues every armed item whose deadline has come, as advance() does.
  /// Returns: the number of items queued.
  std::size_t advance_to(time_point t) noexcept;

  /// Returns: the earliest deadline of any item armed on a live queue, or nullopt if none is.
  /// Advisory: other threads may arm or cancel items meanwhile.
  [[nodiscard]] std::optional<time_point> next_deadline() const noexcept;

  /// Returns: the number of items armed on live queues (the sum of their stats().armed).
  /// Advisory, as next_deadline().
  [[nodiscard]] std::size_t armed_count() const noexcept;

 private:
  // now() + d, saturating at the latest virtual time (see advance()).
  [[nodiscard]] time_point later_by(std::chrono::nanoseconds d) const noexcept;

  // advance(d): takes advance_mu_, then moves to later_by(d) as advance_to() does. Reading
  // now() under the mutex is what makes concurrent advances add up.
  std::size_t advance_by(std::chrono::nanoseconds d) noexcept;

  // advance_to()'s body. Requires: advance_mu_ held.
  std::size_t advance_locked(time_point t) noexcept;

  std::mutex advance_mu_;  // serialises advance_to() and advance(d); held while queueing
};

template <class Delay, class Settle>
requires wq::delay<Delay> && std::invocable<Settle&> std::size_t test_clock::advance(
    Delay d, Settle&& settle) {
  const time_point target = later_by(delay_to_nanoseconds(d));
  std::size_t queued = 0;
  for (;;) {
    const std::optional<time_point> next = next_deadline();
    const time_point step = next && *next < target ? *next : target;
    queued += advance_to(step);
    settle();
    if (step >= target) return queued;
  }
}

}  // namespace wq
