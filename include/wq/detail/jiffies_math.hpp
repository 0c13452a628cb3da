// SPDX-License-Identifier: BSL-1.0
// wq/detail/jiffies_math.hpp: the arithmetic behind wq/jiffies.hpp's conversions: overflow-safe
// multiply-divide with the kernel's rounding and saturation. Every kernel rule is a template on
// the tick rate so the tests can check other HZ values without recompiling. Nothing here is a
// user contract.
#pragma once

#include <wq/config.hpp>

#include <chrono>
#include <climits>
#include <concepts>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

namespace wq::detail {

/// wq::max_jiffy_offset (wq/jiffies.hpp): `(LONG_MAX >> 1) - 1`.
inline constexpr unsigned long max_jiffy_offset = static_cast<unsigned long>((LONG_MAX >> 1) - 1);

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

}  // namespace wq::detail
