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
inline constexpr unsigned long max_jiffy_offset = static_cast<unsigned long>((LONG_MAX >> 1) - 1);

/// The value the kernel's tick counter starts at: `(unsigned int)(-300 * HZ)`.
///
/// Note: the low 32 bits wrap five minutes after boot, which flushes out code that compares tick
/// counts with `<` instead of `time_after`. With HZ = 1000 this is 2^32 - 300'000. wq's own
/// clocks do not start here; the constant is provided for code ported from the kernel.
inline constexpr unsigned long initial_jiffies =
    static_cast<unsigned int>(0ULL - 300ULL * static_cast<unsigned long long>(hz));

// Helpers behind the public conversions. Every kernel rule is a template on the tick rate so
// the tests can check other HZ values without recompiling. Nothing in detail is a user contract.
namespace detail {

inline constexpr unsigned long long msec_per_sec = 1'000;
inline constexpr unsigned long long usec_per_sec = 1'000'000;
inline constexpr unsigned long long nsec_per_sec = 1'000'000'000;

struct quot_rem {
  unsigned long long quot;
  unsigned long long rem;
};

// r * b == quot * d + rem for r < d, without overflow (quot < b then fits).
constexpr quot_rem frac_mul_div(unsigned long long r, unsigned long long b,
                                unsigned long long d) noexcept {
  if (b == 0 || r <= ULLONG_MAX / b) return {r * b / d, r * b % d};
  // Shift-and-add long multiplication kept reduced modulo d; each step keeps rem < d and
  // rewrites "x + y >= d" as "y >= d - x" so no intermediate exceeds d.
  quot_rem acc{0, 0};
  for (int bit = std::numeric_limits<unsigned long long>::digits - 1; bit >= 0; --bit) {
    acc.quot <<= 1;
    if (acc.rem >= d - acc.rem) {
      acc.rem -= d - acc.rem;
      acc.quot += 1;
    } else {
      acc.rem += acc.rem;
    }
    if ((b >> bit) & 1U) {
      if (r >= d - acc.rem) {
        acc.rem = r - (d - acc.rem);
        acc.quot += 1;
      } else {
        acc.rem += r;
      }
    }
  }
  return acc;
}

// floor(a * b / d), exact modulo 2^64 (the low bits are right even if the quotient overflows).
constexpr unsigned long long mul_div_floor(unsigned long long a, unsigned long long b,
                                           unsigned long long d) noexcept {
  return (a / d) * b + frac_mul_div(a % d, b, d).quot;
}

// ceil(a * b / d), exact modulo 2^64.
constexpr unsigned long long mul_div_ceil(unsigned long long a, unsigned long long b,
                                          unsigned long long d) noexcept {
  const quot_rem f = frac_mul_div(a % d, b, d);
  return (a / d) * b + f.quot + (f.rem != 0 ? 1U : 0U);
}

// min(ceil(a * b / d), cap), without overflow: a * b / d = (a / d) * b + (a % d) * b / d, and
// each of the two terms is checked against what is left of cap before it is added.
constexpr unsigned long long mul_div_ceil_sat(unsigned long long a, unsigned long long b,
                                              unsigned long long d,
                                              unsigned long long cap) noexcept {
  const unsigned long long q = a / d;
  if (b != 0 && q > cap / b) return cap;
  const unsigned long long whole = q * b;
  const quot_rem f = frac_mul_div(a % d, b, d);
  const unsigned long long part = f.quot + (f.rem != 0 ? 1U : 0U);
  return part > cap - whole ? cap : whole + part;
}

// §3.6: exact when HZ divides 1000, otherwise rounded up; truncated to unsigned int.
template <unsigned long Hz>
constexpr unsigned int jiffies_to_msecs_hz(unsigned long j) noexcept {
  if constexpr (Hz <= msec_per_sec && msec_per_sec % Hz == 0) {
    return static_cast<unsigned int>((msec_per_sec / Hz) * j);
  } else {
    return static_cast<unsigned int>(mul_div_ceil(j, msec_per_sec, Hz));
  }
}

// §3.6: exact when HZ divides 10^6, otherwise truncated (as the kernel does); unsigned int.
template <unsigned long Hz>
constexpr unsigned int jiffies_to_usecs_hz(unsigned long j) noexcept {
  if constexpr (usec_per_sec % Hz == 0) {
    return static_cast<unsigned int>((usec_per_sec / Hz) * j);
  } else {
    return static_cast<unsigned int>(mul_div_floor(j, usec_per_sec, Hz));
  }
}

// §3.3: bit 31 means infinite; round up; saturate above jiffies_to_msecs(MAX) when HZ > 1000.
template <unsigned long Hz>
constexpr unsigned long msecs_to_jiffies_hz(unsigned int m) noexcept {
  if ((m & 0x8000'0000U) != 0) return max_jiffy_offset;
  if constexpr (Hz > msec_per_sec) {
    if (m > jiffies_to_msecs_hz<Hz>(max_jiffy_offset)) return max_jiffy_offset;
  }
  if constexpr (Hz <= msec_per_sec && msec_per_sec % Hz == 0) {
    constexpr unsigned long long per_tick = msec_per_sec / Hz;
    return static_cast<unsigned long>((m + per_tick - 1) / per_tick);
  } else if constexpr (Hz % msec_per_sec == 0) {
    return static_cast<unsigned long>(m * (Hz / msec_per_sec));
  } else {
    // m < 2^31 and Hz <= 10^6, so the product fits in 64 bits.
    return static_cast<unsigned long>((m * static_cast<unsigned long long>(Hz) + msec_per_sec - 1) /
                                      msec_per_sec);
  }
}

// §3.4: saturate above jiffies_to_usecs(MAX), otherwise round up.
template <unsigned long Hz>
constexpr unsigned long usecs_to_jiffies_hz(unsigned int u) noexcept {
  if (u > jiffies_to_usecs_hz<Hz>(max_jiffy_offset)) return max_jiffy_offset;
  if constexpr (usec_per_sec % Hz == 0) {
    constexpr unsigned long long per_tick = usec_per_sec / Hz;
    return static_cast<unsigned long>((u + per_tick - 1) / per_tick);
  } else {
    // u < 2^32 and Hz <= 10^6, so the product fits in 64 bits.
    return static_cast<unsigned long>((u * static_cast<unsigned long long>(Hz) + usec_per_sec - 1) /
                                      usec_per_sec);
  }
}

// §3.5: plain multiply, wrapping modulo 2^N like the kernel macro.
template <unsigned long Hz>
constexpr unsigned long secs_to_jiffies_hz(unsigned long s) noexcept {
  return s * Hz;
}

// §3.5: truncate, no clamp.
template <unsigned long Hz>
constexpr unsigned long nsecs_to_jiffies_hz(unsigned long long n) noexcept {
  return static_cast<unsigned long>(mul_div_floor(n, Hz, nsec_per_sec));
}

// §3.6: the microsecond value (already truncated to unsigned int) times 1000.
template <unsigned long Hz>
constexpr unsigned long long jiffies_to_nsecs_hz(unsigned long j) noexcept {
  return static_cast<unsigned long long>(jiffies_to_usecs_hz<Hz>(j)) * 1000U;
}

// Ticks to nanoseconds, rounded up, saturated to cap (default: the largest nanoseconds).
template <unsigned long Hz>
constexpr unsigned long long jiffies_to_chrono_nsecs_hz(
    unsigned long j, unsigned long long cap = static_cast<unsigned long long>(
                         std::chrono::nanoseconds::max().count())) noexcept {
  using r = std::ratio<static_cast<std::intmax_t>(nsec_per_sec), static_cast<std::intmax_t>(Hz)>;
  return mul_div_ceil_sat(j, static_cast<unsigned long long>(r::num),
                          static_cast<unsigned long long>(r::den), cap);
}

template <class T>
struct is_chrono_duration : std::false_type {};
template <class Rep, class Period>
struct is_chrono_duration<std::chrono::duration<Rep, Period>> : std::true_type {};

// The representations the chrono conversions handle: built-in numbers other than bool. A
// class-type rep (a checked or a big integer) would need its own overflow rules, so it is
// rejected at the concept rather than converted through a possibly lossy cast.
template <class Rep>
concept arithmetic_rep = std::is_arithmetic_v<Rep> && !std::same_as<Rep, bool>;

// A std::chrono::duration that the conversions below accept.
template <class T>
concept chrono_delay = is_chrono_duration<T>::value && arithmetic_rep<typename T::rep>;

// A duration counted in ToPeriod units, rounded up, clamped to [0, cap]. Negative, zero and NaN
// give 0; +infinity and overflow give cap. Floating reps compute in Rep, as std::chrono does.
template <class ToPeriod, class Rep, class Period>
constexpr unsigned long long ceil_count_sat(std::chrono::duration<Rep, Period> d,
                                            unsigned long long cap) noexcept {
  using r = std::ratio_divide<Period, ToPeriod>;
  constexpr auto num = static_cast<unsigned long long>(r::num);
  constexpr auto den = static_cast<unsigned long long>(r::den);
  const Rep c = d.count();
  if constexpr (std::is_floating_point_v<Rep>) {
    // Written as negated comparisons so that NaN takes the first exit and +inf the second.
    if (!(c > Rep(0))) return 0;
    const Rep x = c * static_cast<Rep>(num) / static_cast<Rep>(den);
    if (!(x < static_cast<Rep>(cap))) return cap;
    auto t = static_cast<unsigned long long>(x);
    if (static_cast<Rep>(t) < x) ++t;
    return t < cap ? t : cap;
  } else {
    if constexpr (std::is_signed_v<Rep>) {
      if (c <= 0) return 0;
    }
    if constexpr (sizeof(Rep) > sizeof(unsigned long long)) {
      if (c > static_cast<Rep>(ULLONG_MAX)) return cap;
    }
    // c is now positive and fits in 64 bits; the ratio terms are positive by std::ratio rules.
    return mul_div_ceil_sat(static_cast<unsigned long long>(c), num, den, cap);
  }
}

// A chrono duration to ticks at Hz: rounded up, clamped to [0, max_jiffy_offset].
template <unsigned long Hz, class Rep, class Period>
constexpr unsigned long to_jiffies_hz(std::chrono::duration<Rep, Period> d) noexcept {
  using tick = std::ratio<1, static_cast<std::intmax_t>(Hz)>;
  return static_cast<unsigned long>(ceil_count_sat<tick>(d, max_jiffy_offset));
}

// Reached only when a _jiffies literal does not fit in unsigned long; not constexpr on purpose.
inline void jiffies_literal_out_of_range() noexcept {}

}  // namespace detail

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
