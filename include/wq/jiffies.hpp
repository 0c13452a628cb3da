// SPDX-License-Identifier: BSL-1.0
// wq/jiffies.hpp: the tick type, the compile-time tick rate and the kernel's time conversions.
//
// This header defines `jiffies`, a strong type over an `unsigned long` tick count, the tick rate
// `hz` (from WQ_HZ), the "infinite timeout" `max_jiffy_offset`, the wrap-safe comparisons
// (`time_after` & co.), the kernel's millisecond/microsecond/second/nanosecond conversions with
// the kernel's rounding and saturation, `std::chrono` interop that never shortens a timeout, and
// the `delay` concept accepted by every delay parameter in wq.
//
// HZ is an ABI setting: `hz` feeds every conversion here and every delayed work item, so every
// translation unit of a program must see the same WQ_HZ (see config.hpp).
//
// A `jiffies` delay follows the kernel's modular arithmetic (§3.1): a delay computed as
// `deadline - now` after the deadline has passed wraps to a huge unsigned count, and the kernel's
// timer reads `expires - now` as `long` and treats a negative value as already due. So does wq:
// every jiffies delay whose count, read as `long`, is negative (>= 2^63 on LP64) means "due now"
// and queues the item at once, exactly like a zero delay (rule 19). Counts from
// `max_jiffy_offset` up to LONG_MAX are the "infinite" timeout and saturate to `max_delay`.
//
// Thread safety: everything here is a value type or a pure constexpr function; there is no state.
// Lifetime: nothing here owns resources.
#pragma once

#include <wq/config.hpp>

#include <chrono>
#include <climits>
#include <compare>
#include <concepts>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

#include <wq/detail/jiffies_math.hpp>

static_assert(WQ_HZ >= 1 && WQ_HZ <= 1'000'000,
              "WQ_HZ must be in 1..1000000 (the kernel's conversions require HZ <= 10^6)");

namespace wq {

/// The tick rate: jiffies per second, taken from WQ_HZ (default 1000).
///
/// Note: an ABI setting. Changing it changes the meaning of every `jiffies` value.
inline constexpr unsigned long hz = WQ_HZ;

/// The "infinite" timeout: the largest delay the kernel's conversions produce.
///
/// Note: `(LONG_MAX >> 1) - 1`, i.e. 2^62 - 2 with a 64-bit `long` and 2^30 - 2 with a 32-bit
/// one. It is chosen so that `now + max_jiffy_offset + 1` is still ahead of `now` when compared
/// with `time_after`.
inline constexpr unsigned long max_jiffy_offset = detail::max_jiffy_offset;

/// The value the kernel's tick counter starts at: `(unsigned int)(-300 * HZ)`.
///
/// Note: the low 32 bits wrap five minutes after boot, which flushes out code that compares tick
/// counts with `<` instead of `time_after`. With HZ = 1000 this is 2^32 - 300'000. wq's own
/// clocks do not start here; the constant is provided for code ported from the kernel.
inline constexpr unsigned long initial_jiffies =
    static_cast<unsigned int>(0ULL - 300ULL * static_cast<unsigned long long>(hz));

/// A count of ticks at `hz` per second: a delay, or a reading of a tick counter.
///
/// `jiffies` wraps an `unsigned long` and keeps the kernel's unsigned arithmetic: `+` and `-`
/// wrap modulo 2^N. The relational operators compare raw counts, which is right for delays; to
/// order two *readings* of a counter that may have wrapped, use `time_after` and friends.
///
/// Example: `queue_delayed_work(wq, item, wq::msecs_to_jiffies(50));` or, with the literal,
/// `using namespace wq::literals; ... 5_jiffies`.
///
/// Thread safety: a trivially copyable value type. Distinct objects: safe. Shared objects:
/// safe to read concurrently; writes need external synchronisation like any `unsigned long`.
class jiffies {
 public:
  /// The underlying count type, the kernel's `unsigned long`.
  using rep = unsigned long;

  /// A `std::chrono::duration` that counts ticks exactly (one unit = 1/hz s).
  ///
  /// Note: its `long long` count cannot hold counts above LLONG_MAX; use `to_jiffies` to convert
  /// one into `jiffies`, which rounds up and saturates.
  using duration = std::chrono::duration<long long, std::ratio<1, static_cast<std::intmax_t>(hz)>>;

  /// Constructs zero ticks.
  constexpr jiffies() noexcept = default;

  /// Constructs `count` ticks.
  constexpr explicit jiffies(rep count) noexcept : count_(count) {}

  /// Returns: the tick count.
  [[nodiscard]] constexpr rep count() const noexcept { return count_; }

  /// Returns: zero ticks.
  [[nodiscard]] static constexpr jiffies zero() noexcept { return jiffies{}; }

  /// Returns: `max_jiffy_offset` ticks, the kernel's "infinite" timeout.
  [[nodiscard]] static constexpr jiffies max() noexcept { return jiffies{max_jiffy_offset}; }

  /// Converts to real time for `std::chrono` clocks and Asio timers.
  ///
  /// Returns: `count() * 10^9 / hz` nanoseconds, rounded up (a timeout is never shortened) and
  /// saturated to `std::chrono::nanoseconds::max()`.
  /// Note: to arm a timer use `delay_to_nanoseconds`, which also caps the result at `max_delay`.
  [[nodiscard]] constexpr std::chrono::nanoseconds to_duration() const noexcept {
    return std::chrono::nanoseconds{
        static_cast<std::chrono::nanoseconds::rep>(detail::jiffies_to_chrono_nsecs_hz<hz>(count_))};
  }

  /// Effects: adds `rhs`, wrapping modulo 2^N. Returns: `*this`.
  constexpr jiffies& operator+=(jiffies rhs) noexcept {
    count_ += rhs.count_;
    return *this;
  }

  /// Effects: subtracts `rhs`, wrapping modulo 2^N. Returns: `*this`.
  constexpr jiffies& operator-=(jiffies rhs) noexcept {
    count_ -= rhs.count_;
    return *this;
  }

  /// Returns: the sum, wrapping modulo 2^N.
  [[nodiscard]] friend constexpr jiffies operator+(jiffies a, jiffies b) noexcept { return a += b; }

  /// Returns: the difference, wrapping modulo 2^N (the kernel's `b - a` on tick readings).
  [[nodiscard]] friend constexpr jiffies operator-(jiffies a, jiffies b) noexcept { return a -= b; }

  /// Compares raw counts. Note: not wrap-safe for counter readings; see `time_after`.
  friend constexpr bool operator==(jiffies, jiffies) noexcept = default;
  /// Orders raw counts. Note: not wrap-safe for counter readings; see `time_after`.
  friend constexpr std::strong_ordering operator<=>(jiffies, jiffies) noexcept = default;

 private:
  rep count_ = 0;  // the tick count; any value is valid
};

inline namespace literals {

/// Makes a `jiffies` from an integer literal: `42_jiffies`.
///
/// Note: `consteval`; a literal that does not fit in `unsigned long` does not compile.
consteval jiffies operator""_jiffies(unsigned long long count) noexcept {
  if (count > ULONG_MAX) detail::jiffies_literal_out_of_range();
  return jiffies{static_cast<unsigned long>(count)};
}

}  // namespace literals

// ---- Wrap-safe comparisons (§3.1) ------------------------------------------------------------
//
// Each compares two readings of a wrapping tick counter by converting the unsigned difference to
// `long`, exactly as the kernel does; C++20 defines that conversion as modular. The answer is
// right while the readings are less than LONG_MAX ticks apart.

/// Returns: true if tick reading `a` is later than `b`, i.e. `long(b - a) < 0`.
[[nodiscard]] constexpr bool time_after(jiffies a, jiffies b) noexcept {
  return static_cast<long>(b.count() - a.count()) < 0;
}

/// Returns: true if tick reading `a` is earlier than `b`, i.e. `time_after(b, a)`.
[[nodiscard]] constexpr bool time_before(jiffies a, jiffies b) noexcept { return time_after(b, a); }

/// Returns: true if `a` is later than or equal to `b`, i.e. `long(a - b) >= 0`.
[[nodiscard]] constexpr bool time_after_eq(jiffies a, jiffies b) noexcept {
  return static_cast<long>(a.count() - b.count()) >= 0;
}

/// Returns: true if `a` is earlier than or equal to `b`, i.e. `time_after_eq(b, a)`.
[[nodiscard]] constexpr bool time_before_eq(jiffies a, jiffies b) noexcept {
  return time_after_eq(b, a);
}

/// Returns: true if `a` lies in the closed interval [`b`, `c`] of tick readings.
[[nodiscard]] constexpr bool time_in_range(jiffies a, jiffies b, jiffies c) noexcept {
  return time_after_eq(a, b) && time_before_eq(a, c);
}

/// Returns: true if `a` lies in the half-open interval [`b`, `c`) of tick readings.
[[nodiscard]] constexpr bool time_in_range_open(jiffies a, jiffies b, jiffies c) noexcept {
  return time_after_eq(a, b) && time_before(a, c);
}

/// The 64-bit forms (`time_after64` & co.) compare readings of get_jiffies_64(), which does not
/// wrap in practice but may still be compared only this way (§3.1).
/// Returns: true if `a` is later than `b`, i.e. `int64(b - a) < 0`.
[[nodiscard]] constexpr bool time_after64(std::uint64_t a, std::uint64_t b) noexcept {
  return static_cast<std::int64_t>(b - a) < 0;
}
/// Returns: true if `a` is earlier than `b`, i.e. `time_after64(b, a)`.
[[nodiscard]] constexpr bool time_before64(std::uint64_t a, std::uint64_t b) noexcept {
  return time_after64(b, a);
}
/// Returns: true if `a` is later than or equal to `b`, i.e. `int64(a - b) >= 0`.
[[nodiscard]] constexpr bool time_after_eq64(std::uint64_t a, std::uint64_t b) noexcept {
  return static_cast<std::int64_t>(a - b) >= 0;
}
/// Returns: true if `a` is earlier than or equal to `b`.
[[nodiscard]] constexpr bool time_before_eq64(std::uint64_t a, std::uint64_t b) noexcept {
  return time_after_eq64(b, a);
}
/// Returns: true if `a` lies in the closed interval [`b`, `c`].
[[nodiscard]] constexpr bool time_in_range64(std::uint64_t a, std::uint64_t b,
                                             std::uint64_t c) noexcept {
  return time_after_eq64(a, b) && time_before_eq64(a, c);
}

// ---- The tick counter (§3.1) -----------------------------------------------------------------
//
// The kernel's `jiffies` variable and get_jiffies_64(). Here the counter is derived from
// std::chrono::steady_clock (or, while a wq::test_clock is installed, from its virtual time, so
// tests control it): `hz` ticks per second, starting at `initial_jiffies` at the first reading,
// so that its low 32 bits wrap five minutes in, as the kernel's do, and code comparing
// readings with `<` instead of time_after fails early. The kernel's `jiffies` is a variable;
// `wq::jiffies` is the tick type, so the reading is the function jiffies_now().

/// Returns: the 64-bit tick count now: initial_jiffies plus the whole ticks since the first
/// reading in the process (kernel `get_jiffies_64()`). Monotonic, except that while a
/// wq::test_clock is installed it follows the virtual time, and after that clock goes it follows
/// real time again, which may be behind the virtual time reached. Thread safety: any thread.
/// Cost: one clock read.
[[nodiscard]] std::uint64_t get_jiffies_64() noexcept;

/// Returns: the tick counter now, wrapping modulo 2^N for an N-bit `unsigned long` (the kernel's
/// `jiffies`). Compare readings only with time_after and friends.
[[nodiscard]] jiffies jiffies_now() noexcept;

/// Returns: true if tick reading `a` is in the past (kernel `time_is_before_jiffies(a)`, i.e.
/// `time_after(jiffies, a)`).
[[nodiscard]] inline bool time_is_before_jiffies(jiffies a) noexcept {
  return time_after(jiffies_now(), a);
}
/// Returns: true if tick reading `a` is in the future (`time_before(jiffies, a)`).
[[nodiscard]] inline bool time_is_after_jiffies(jiffies a) noexcept {
  return time_before(jiffies_now(), a);
}
/// Returns: true if `a` is now or in the past (`time_after_eq(jiffies, a)`).
[[nodiscard]] inline bool time_is_before_eq_jiffies(jiffies a) noexcept {
  return time_after_eq(jiffies_now(), a);
}
/// Returns: true if `a` is now or in the future (`time_before_eq(jiffies, a)`).
[[nodiscard]] inline bool time_is_after_eq_jiffies(jiffies a) noexcept {
  return time_before_eq(jiffies_now(), a);
}
/// 64-bit forms of the above, on get_jiffies_64() readings.
[[nodiscard]] inline bool time_is_before_jiffies64(std::uint64_t a) noexcept {
  return time_after64(get_jiffies_64(), a);
}
[[nodiscard]] inline bool time_is_after_jiffies64(std::uint64_t a) noexcept {
  return time_before64(get_jiffies_64(), a);
}
[[nodiscard]] inline bool time_is_before_eq_jiffies64(std::uint64_t a) noexcept {
  return time_after_eq64(get_jiffies_64(), a);
}
[[nodiscard]] inline bool time_is_after_eq_jiffies64(std::uint64_t a) noexcept {
  return time_before_eq64(get_jiffies_64(), a);
}

// ---- Kernel conversions (§3.3-§3.6) ----------------------------------------------------------
//
// Same argument types, rounding and saturation as the kernel's helpers of the same names. The
// kernel's 32-bit multiply/shift approximations for HZ values that do not divide 1000 or 10^6
// are replaced by exact integer arithmetic with the same rounding direction.

/// Converts milliseconds to ticks for use as a timeout.
///
/// Returns: `ceil(m * hz / 1000)` (a timeout is never shortened; 0 gives 0).
/// Note: `m` with bit 31 set (a negative `int`) means "infinite" and gives `jiffies::max()`.
/// When hz > 1000, an `m` above `jiffies_to_msecs(jiffies::max())` also gives `jiffies::max()`;
/// that threshold is truncated to `unsigned int` as in the kernel, so with some HZ (e.g. 3000 on
/// 64-bit) large finite values already saturate.
[[nodiscard]] constexpr jiffies msecs_to_jiffies(unsigned int m) noexcept {
  return jiffies{detail::msecs_to_jiffies_hz<hz>(m)};
}

/// Converts microseconds to ticks for use as a timeout.
///
/// Returns: `ceil(u * hz / 10^6)` (never shorter; 0 gives 0), or `jiffies::max()` when `u`
/// exceeds `jiffies_to_usecs(jiffies::max())` (a threshold truncated to `unsigned int`: with
/// HZ = 1000 and a 64-bit `long` it is 2^32 - 2000).
/// Note: there is no "negative means infinite" rule for microseconds.
[[nodiscard]] constexpr jiffies usecs_to_jiffies(unsigned int u) noexcept {
  return jiffies{detail::usecs_to_jiffies_hz<hz>(u)};
}

/// Converts whole seconds to ticks.
///
/// Returns: `s * hz`, exact while it fits.
/// Note: like the kernel macro there is no overflow check: a product above ULONG_MAX wraps and
/// nothing saturates to `jiffies::max()`. Prefer `to_jiffies(std::chrono::seconds{s})` for
/// untrusted values.
[[nodiscard]] constexpr jiffies secs_to_jiffies(unsigned long s) noexcept {
  return jiffies{detail::secs_to_jiffies_hz<hz>(s)};
}

/// Converts nanoseconds to ticks for accounting (not for timeouts).
///
/// Returns: `floor(n * hz / 10^9)`, truncated to `unsigned long`.
/// Note: rounds *down* and does not clamp to `jiffies::max()` (the kernel designed it for the
/// scheduler). Use `to_jiffies(std::chrono::nanoseconds{n})` for a timeout.
[[nodiscard]] constexpr jiffies nsecs_to_jiffies(unsigned long long n) noexcept {
  return jiffies{detail::nsecs_to_jiffies_hz<hz>(n)};
}

/// Converts ticks to milliseconds.
///
/// Returns: `j * (1000 / hz)` when hz divides 1000, otherwise `ceil(j * 1000 / hz)`; the result
/// is truncated to `unsigned int` (kept modulo 2^32) like the kernel's.
[[nodiscard]] constexpr unsigned int jiffies_to_msecs(jiffies j) noexcept {
  return detail::jiffies_to_msecs_hz<hz>(j.count());
}

/// Converts ticks to microseconds.
///
/// Returns: `j * (10^6 / hz)` when hz divides 10^6, otherwise `floor(j * 10^6 / hz)`; the
/// result is truncated to `unsigned int` (kept modulo 2^32) like the kernel's.
/// Note: the kernel rounds this one down, unlike `jiffies_to_msecs`.
[[nodiscard]] constexpr unsigned int jiffies_to_usecs(jiffies j) noexcept {
  return detail::jiffies_to_usecs_hz<hz>(j.count());
}

/// Converts ticks to nanoseconds.
///
/// Returns: `jiffies_to_usecs(j) * 1000`.
/// Note: inherits the `unsigned int` truncation of `jiffies_to_usecs`, so it wraps for delays
/// of 2^32 us (about 71.6 minutes) or more. `j.to_duration()` does not.
[[nodiscard]] constexpr unsigned long long jiffies_to_nsecs(jiffies j) noexcept {
  return detail::jiffies_to_nsecs_hz<hz>(j.count());
}

/// Converts a signed tick difference to milliseconds.
///
/// Returns: `jiffies_to_msecs(jiffies{delta})`, with negative deltas clamped to 0.
[[nodiscard]] constexpr unsigned int jiffies_delta_to_msecs(long delta) noexcept {
  return jiffies_to_msecs(jiffies{delta > 0 ? static_cast<unsigned long>(delta) : 0UL});
}

// ---- std::chrono interop ---------------------------------------------------------------------

/// Converts a `std::chrono` duration to ticks for use as a timeout.
///
/// Returns: the duration in ticks **rounded up** (a timeout is never shortened: 1 ns gives one
/// tick), with zero, negative and NaN durations giving 0 and anything at or above
/// `jiffies::max()` (including +infinity) giving `jiffies::max()`. Integer reps are converted
/// exactly without overflow; floating reps compute in `Rep`, as `std::chrono::ceil` would.
template <class Rep, class Period>
requires detail::arithmetic_rep<Rep>
[[nodiscard]] constexpr jiffies to_jiffies(std::chrono::duration<Rep, Period> d) noexcept {
  return jiffies{detail::to_jiffies_hz<hz>(d)};
}

/// Returns: `j` unchanged, so generic code can call `to_jiffies` on any `delay`.
[[nodiscard]] constexpr jiffies to_jiffies(jiffies j) noexcept { return j; }

/// The longest wait wq hands to a timer: the real-time length of `jiffies::max()`, capped at
/// 100 years (100 Gregorian years; with any HZ and a 64-bit `long` the cap applies).
///
/// Note: the cap keeps `std::chrono::steady_clock::now() + max_delay` far from overflow (the
/// clock's range is about 292 years) while staying "infinite" for any real program.
inline constexpr std::chrono::nanoseconds max_delay{
    static_cast<std::chrono::nanoseconds::rep>(detail::jiffies_to_chrono_nsecs_hz<hz>(
        max_jiffy_offset,
        static_cast<unsigned long long>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::years{100})
                .count())))};

/// Converts a tick delay to the real time a timer should wait, with the kernel's modular reading
/// of a delay (§3.1): a delay is `expires - now`, and a deadline that has already passed makes
/// that unsigned difference wrap.
///
/// Returns: zero if `long(j.count()) < 0` (the deadline has passed: due now, queued at once like
/// a zero delay, rule 19; e.g. `jiffies{ULONG_MAX}`, which is -1, or `deadline - now` read after
/// `deadline`); otherwise `j.to_duration()` (rounded up), capped at `max_delay`, so counts from
/// `max_jiffy_offset` up to LONG_MAX, the "infinite" timeout, saturate to `max_delay`.
/// Note: this is the kernel's `time_after` test applied to the delay itself: it is right while
/// the deadline and the reading are less than LONG_MAX ticks apart. `j.to_duration()` does not
/// apply it (it converts a count, not a delay).
[[nodiscard]] constexpr std::chrono::nanoseconds delay_to_nanoseconds(jiffies j) noexcept {
  // Safety: unsigned-to-signed conversion is modular in C++20, the kernel's `(long)` cast.
  if (static_cast<long>(j.count()) < 0) return std::chrono::nanoseconds::zero();
  const std::chrono::nanoseconds ns = j.to_duration();
  return ns < max_delay ? ns : max_delay;
}

/// Converts a `std::chrono` delay to the real time a timer should wait.
///
/// Returns: `d` in nanoseconds rounded up, clamped to [0, `max_delay`]; negative and NaN give 0.
/// Note: the delay is *not* rounded to whole ticks; the timer waits at least `d`.
template <class Rep, class Period>
requires detail::arithmetic_rep<Rep>
[[nodiscard]] constexpr std::chrono::nanoseconds delay_to_nanoseconds(
    std::chrono::duration<Rep, Period> d) noexcept {
  const auto cap = static_cast<unsigned long long>(max_delay.count());
  return std::chrono::nanoseconds{
      static_cast<std::chrono::nanoseconds::rep>(detail::ceil_count_sat<std::nano>(d, cap))};
}

/// What every wq delay parameter accepts: `jiffies`, or a `std::chrono::duration` whose
/// representation is a built-in arithmetic type other than `bool` (cv/ref-qualified or not).
///
/// Note: pass a delay through `delay_to_nanoseconds` to arm a timer, or `to_jiffies` for ticks.
template <class T>
concept delay =
    std::same_as<std::remove_cvref_t<T>, jiffies> || detail::chrono_delay<std::remove_cvref_t<T>>;

}  // namespace wq
