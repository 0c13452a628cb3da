// SPDX-License-Identifier: BSL-1.0
// Tests for wq/jiffies.hpp: the kernel's conversion rules (semantics.md §3), wrap-safe
// comparisons, and std::chrono interop. Expected values are hand-worked or come from the
// reference formulas below, which use 128-bit arithmetic and never call the code under test.
#include <wq/jiffies.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <climits>
#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>
#include <vector>

#include <wq/test_clock.hpp>

namespace {

using namespace std::chrono_literals;
using wq::jiffies;

__extension__ typedef unsigned __int128 u128;

// The hand-worked constants below assume a 64-bit unsigned long (LP64 Linux).
#define LP64_LONG (ULONG_MAX == 0xFFFF'FFFF'FFFF'FFFFULL)

// ---- Reference formulas, written straight from the rules with exact 128-bit math ----------

constexpr u128 ceil_div(u128 a, u128 b) { return (a + b - 1) / b; }

constexpr unsigned long ref_max = static_cast<unsigned long>((LONG_MAX >> 1) - 1);

// §3.6: ceil(j * 1000 / HZ) (exact when HZ divides 1000), kept modulo 2^32.
constexpr unsigned int ref_jiffies_to_msecs(u128 hz, unsigned long j) {
  return static_cast<unsigned int>(ceil_div(u128{j} * 1000, hz) & 0xFFFF'FFFFU);
}

// §3.6 (kernel fact): floor(j * 10^6 / HZ) (exact when HZ divides 10^6), kept modulo 2^32.
constexpr unsigned int ref_jiffies_to_usecs(u128 hz, unsigned long j) {
  return static_cast<unsigned int>((u128{j} * 1'000'000 / hz) & 0xFFFF'FFFFU);
}

// §3.3
constexpr unsigned long ref_msecs_to_jiffies(u128 hz, unsigned int m) {
  if (m >= 0x8000'0000U) return ref_max;
  if (hz > 1000 && m > ref_jiffies_to_msecs(hz, ref_max)) return ref_max;
  return static_cast<unsigned long>(ceil_div(u128{m} * hz, 1000));
}

// §3.4
constexpr unsigned long ref_usecs_to_jiffies(u128 hz, unsigned int u) {
  if (u > ref_jiffies_to_usecs(hz, ref_max)) return ref_max;
  return static_cast<unsigned long>(ceil_div(u128{u} * hz, 1'000'000));
}

// §3.5
constexpr unsigned long ref_nsecs_to_jiffies(u128 hz, unsigned long long n) {
  return static_cast<unsigned long>(u128{n} * hz / 1'000'000'000);
}

// A deterministic spread of 64-bit values (splitmix64), plus every small value.
std::vector<unsigned long long> sample_values(unsigned long long limit) {
  std::vector<unsigned long long> v;
  for (unsigned long long i = 0; i <= 3000 && i <= limit; ++i) v.push_back(i);
  unsigned long long state = 0x1234'5678'9ABC'DEF0ULL;
  for (int i = 0; i < 20000; ++i) {
    state += 0x9E37'79B9'7F4A'7C15ULL;
    unsigned long long z = state;
    z = (z ^ (z >> 30)) * 0xBF58'476D'1CE4'E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D0'49BB'1331'11EBULL;
    z ^= z >> 31;
    // Spread over magnitudes too, not just over the top bits.
    const unsigned long long shifted = z >> (static_cast<unsigned>(i) % 64U);
    v.push_back(limit == ULLONG_MAX ? shifted : shifted % (limit + 1));
  }
  for (unsigned long long d = 0; d < 3; ++d) {
    v.push_back(limit - d);
    v.push_back(limit / 2 - d);
    v.push_back(limit / 2 + 1 + d);
  }
  return v;
}

}  // namespace

// ---- Constants ------------------------------------------------------------------------------

TEST_CASE("jiffies: max_jiffy_offset is (LONG_MAX >> 1) - 1 (§3.2)", "[jiffies]") {
  STATIC_REQUIRE(wq::max_jiffy_offset == static_cast<unsigned long>(LONG_MAX / 2 - 1));
  STATIC_REQUIRE(jiffies::max().count() == wq::max_jiffy_offset);
#if LP64_LONG
  STATIC_REQUIRE(wq::max_jiffy_offset == (1ULL << 62) - 2);
#else
  STATIC_REQUIRE(wq::max_jiffy_offset == (1UL << 30) - 2);
#endif
  // "now + max + 1" is still after "now", even across the wrap.
  const jiffies now{ULONG_MAX - 3};
  CHECK(wq::time_after(now + jiffies::max() + jiffies{1}, now));
}

TEST_CASE("jiffies: hz and initial_jiffies follow WQ_HZ (§3.1)", "[jiffies]") {
  STATIC_REQUIRE(wq::hz == WQ_HZ);
  STATIC_REQUIRE(wq::initial_jiffies == (1ULL << 32) - 300ULL * WQ_HZ);
#if WQ_HZ == 1000
  STATIC_REQUIRE(wq::initial_jiffies == 4'294'667'296UL);
#endif
  // Five minutes of ticks later the low 32 bits wrap to zero.
  STATIC_REQUIRE(static_cast<unsigned int>(wq::initial_jiffies + 300UL * wq::hz) == 0U);
}

// ---- The strong type ------------------------------------------------------------------------

TEST_CASE("jiffies: value type, comparisons, wrapping arithmetic and the literal", "[jiffies]") {
  using namespace wq::literals;
  STATIC_REQUIRE(std::is_trivially_copyable_v<jiffies>);
  STATIC_REQUIRE(sizeof(jiffies) == sizeof(unsigned long));
  STATIC_REQUIRE(!std::is_convertible_v<unsigned long, jiffies>);  // explicit
  STATIC_REQUIRE(!std::is_convertible_v<jiffies, unsigned long>);
  STATIC_REQUIRE(jiffies{}.count() == 0);
  STATIC_REQUIRE(jiffies::zero() == jiffies{0});
  STATIC_REQUIRE(42_jiffies == jiffies{42});
  STATIC_REQUIRE(std::is_same_v<decltype(42_jiffies), jiffies>);
  STATIC_REQUIRE(jiffies{1} < jiffies{2});
  STATIC_REQUIRE(jiffies{2} >= jiffies{2});
  STATIC_REQUIRE(jiffies{3} != jiffies{2});
  STATIC_REQUIRE((jiffies{1} <=> jiffies{2}) == std::strong_ordering::less);
  STATIC_REQUIRE(3_jiffies + 4_jiffies == 7_jiffies);
  STATIC_REQUIRE(10_jiffies - 4_jiffies == 6_jiffies);
  STATIC_REQUIRE(jiffies{ULONG_MAX} + jiffies{1} == jiffies{0});
  STATIC_REQUIRE(jiffies{0} - jiffies{1} == jiffies{ULONG_MAX});

  jiffies j{5};
  j += 3_jiffies;
  CHECK(j.count() == 8);
  j -= 10_jiffies;
  CHECK(j.count() == ULONG_MAX - 1);
  STATIC_REQUIRE(std::is_same_v<jiffies::rep, unsigned long>);
  STATIC_REQUIRE(std::is_same_v<jiffies::duration::period, std::ratio<1, WQ_HZ>>);
}

// ---- Wrap-safe comparisons ------------------------------------------------------------------

TEST_CASE("jiffies: time_after and friends are wrap-safe (§3.1)", "[jiffies]") {
  constexpr jiffies a{5};
  constexpr jiffies b{ULONG_MAX - 5};  // 11 ticks before a, across the wrap
  STATIC_REQUIRE(wq::time_after(a, b));
  STATIC_REQUIRE(!wq::time_before(a, b));
  STATIC_REQUIRE(wq::time_before(b, a));
  STATIC_REQUIRE(wq::time_after_eq(a, b));
  STATIC_REQUIRE(wq::time_before_eq(b, a));
  STATIC_REQUIRE(!wq::time_after(b, a));
  STATIC_REQUIRE(b > a);  // the raw ordering gets it wrong, which is the point

  // Equality.
  STATIC_REQUIRE(!wq::time_after(a, a));
  STATIC_REQUIRE(!wq::time_before(a, a));
  STATIC_REQUIRE(wq::time_after_eq(a, a));
  STATIC_REQUIRE(wq::time_before_eq(a, a));

  // Plain order without wrapping.
  STATIC_REQUIRE(wq::time_after(jiffies{100}, jiffies{99}));
  STATIC_REQUIRE(wq::time_before(jiffies{99}, jiffies{100}));

  // Half the counter range apart: LONG_MAX ahead is after, LONG_MAX + 1 ahead reads as before.
  constexpr jiffies base{7};
  STATIC_REQUIRE(wq::time_after(base + jiffies{LONG_MAX}, base));
  STATIC_REQUIRE(wq::time_before(base + jiffies{static_cast<unsigned long>(LONG_MAX) + 1}, base));
}

TEST_CASE("jiffies: time_in_range is closed, time_in_range_open is half-open (§3.1)", "[jiffies]") {
  constexpr jiffies lo{ULONG_MAX - 2};
  constexpr jiffies hi{2};  // the range [lo, hi] spans the wrap: 6 readings
  STATIC_REQUIRE(wq::time_in_range(lo, lo, hi));
  STATIC_REQUIRE(wq::time_in_range(jiffies{0}, lo, hi));
  STATIC_REQUIRE(wq::time_in_range(hi, lo, hi));
  STATIC_REQUIRE(!wq::time_in_range(jiffies{3}, lo, hi));
  STATIC_REQUIRE(!wq::time_in_range(jiffies{ULONG_MAX - 3}, lo, hi));
  STATIC_REQUIRE(wq::time_in_range_open(lo, lo, hi));
  STATIC_REQUIRE(wq::time_in_range_open(jiffies{1}, lo, hi));
  STATIC_REQUIRE(!wq::time_in_range_open(hi, lo, hi));
}

// ---- HZ = 1000, public API ------------------------------------------------------------------

#if WQ_HZ == 1000
TEST_CASE("jiffies: at HZ=1000 milliseconds are ticks (§3.3, §3.6)", "[jiffies]") {
  STATIC_REQUIRE(wq::msecs_to_jiffies(0) == jiffies{0});
  STATIC_REQUIRE(wq::msecs_to_jiffies(1) == jiffies{1});
  STATIC_REQUIRE(wq::msecs_to_jiffies(1234) == jiffies{1234});
  STATIC_REQUIRE(wq::msecs_to_jiffies(0x7FFF'FFFFU) == jiffies{0x7FFF'FFFFUL});
  STATIC_REQUIRE(wq::jiffies_to_msecs(jiffies{0}) == 0U);
  STATIC_REQUIRE(wq::jiffies_to_msecs(jiffies{1234}) == 1234U);
  STATIC_REQUIRE(wq::jiffies_to_usecs(jiffies{1234}) == 1'234'000U);
  STATIC_REQUIRE(wq::jiffies_to_nsecs(jiffies{1234}) == 1'234'000'000ULL);
  STATIC_REQUIRE(wq::secs_to_jiffies(3) == jiffies{3000});
  STATIC_REQUIRE(wq::jiffies_delta_to_msecs(250) == 250U);
}

TEST_CASE("jiffies: msecs_to_jiffies with bit 31 set is infinite (§3.3)", "[jiffies]") {
  STATIC_REQUIRE(wq::msecs_to_jiffies(0x8000'0000U) == jiffies::max());
  STATIC_REQUIRE(wq::msecs_to_jiffies(0xFFFF'FFFFU) == jiffies::max());
  // A negative int passed by a kernel-style caller, e.g. -1.
  constexpr int minus_one = -1;
  STATIC_REQUIRE(wq::msecs_to_jiffies(static_cast<unsigned int>(minus_one)) == jiffies::max());
}

TEST_CASE("jiffies: usecs_to_jiffies rounds up and saturates (§3.4)", "[jiffies]") {
  STATIC_REQUIRE(wq::usecs_to_jiffies(0) == jiffies{0});
  STATIC_REQUIRE(wq::usecs_to_jiffies(1) == jiffies{1});
  STATIC_REQUIRE(wq::usecs_to_jiffies(999) == jiffies{1});
  STATIC_REQUIRE(wq::usecs_to_jiffies(1000) == jiffies{1});
  STATIC_REQUIRE(wq::usecs_to_jiffies(1001) == jiffies{2});
  STATIC_REQUIRE(wq::usecs_to_jiffies(1500) == jiffies{2});
#if LP64_LONG
  // jiffies_to_usecs(MAX) = 1000 * (2^62 - 2) mod 2^32 = 2^32 - 2000 = 4294965296.
  STATIC_REQUIRE(wq::jiffies_to_usecs(jiffies::max()) == 4'294'965'296U);
  STATIC_REQUIRE(wq::usecs_to_jiffies(4'294'965'296U) == jiffies{4'294'966});
  STATIC_REQUIRE(wq::usecs_to_jiffies(4'294'965'297U) == jiffies::max());
  STATIC_REQUIRE(wq::usecs_to_jiffies(0xFFFF'FFFFU) == jiffies::max());
#endif
}

TEST_CASE("jiffies: secs_to_jiffies multiplies without an overflow check (§3.5)", "[jiffies]") {
  STATIC_REQUIRE(wq::secs_to_jiffies(0) == jiffies{0});
  STATIC_REQUIRE(wq::secs_to_jiffies(86'400) == jiffies{86'400'000});
  // ULONG_MAX * 1000 wraps to -1000 modulo 2^N: no saturation to max.
  STATIC_REQUIRE(wq::secs_to_jiffies(ULONG_MAX) == jiffies{0UL - 1000UL});
}

TEST_CASE("jiffies: nsecs_to_jiffies truncates and does not clamp (§3.5)", "[jiffies]") {
  STATIC_REQUIRE(wq::nsecs_to_jiffies(0) == jiffies{0});
  STATIC_REQUIRE(wq::nsecs_to_jiffies(999'999) == jiffies{0});
  STATIC_REQUIRE(wq::nsecs_to_jiffies(1'000'000) == jiffies{1});
  STATIC_REQUIRE(wq::nsecs_to_jiffies(1'999'999) == jiffies{1});
#if LP64_LONG
  // (2^64 - 1) / 10^6 = 18446744073709, far below max: no clamp was needed, none applied.
  STATIC_REQUIRE(wq::nsecs_to_jiffies(ULLONG_MAX) == jiffies{18'446'744'073'709UL});
#endif
}

TEST_CASE("jiffies: jiffies_to_msecs and friends truncate to unsigned int (§3.6)", "[jiffies]") {
#if LP64_LONG
  // (2^62 - 2) mod 2^32 = 2^32 - 2.
  STATIC_REQUIRE(wq::jiffies_to_msecs(jiffies::max()) == 4'294'967'294U);
  // 2^32 ticks are 2^32 ms, which wraps to 0.
  STATIC_REQUIRE(wq::jiffies_to_msecs(jiffies{1UL << 32}) == 0U);
  // 4'294'968 ms = 4'294'968'000 us, 2^32 = 4'294'967'296, difference 704.
  STATIC_REQUIRE(wq::jiffies_to_usecs(jiffies{4'294'968}) == 704U);
  STATIC_REQUIRE(wq::jiffies_to_nsecs(jiffies{4'294'968}) == 704'000ULL);
#endif
  STATIC_REQUIRE(wq::jiffies_to_nsecs(jiffies{4'294'967}) == 4'294'967'000'000ULL);
}

TEST_CASE("jiffies: jiffies_delta_to_msecs clamps negatives to zero (§3.6)", "[jiffies]") {
  STATIC_REQUIRE(wq::jiffies_delta_to_msecs(-1) == 0U);
  STATIC_REQUIRE(wq::jiffies_delta_to_msecs(LONG_MIN) == 0U);
  STATIC_REQUIRE(wq::jiffies_delta_to_msecs(0) == 0U);
  STATIC_REQUIRE(wq::jiffies_delta_to_msecs(17) == 17U);
}

TEST_CASE("jiffies: chrono durations round up to ticks at HZ=1000", "[jiffies][chrono]") {
  STATIC_REQUIRE(wq::to_jiffies(0ns) == jiffies{0});
  STATIC_REQUIRE(wq::to_jiffies(1ns) == jiffies{1});
  STATIC_REQUIRE(wq::to_jiffies(999'999ns) == jiffies{1});
  STATIC_REQUIRE(wq::to_jiffies(1'000'000ns) == jiffies{1});
  STATIC_REQUIRE(wq::to_jiffies(1'000'001ns) == jiffies{2});
  STATIC_REQUIRE(wq::to_jiffies(1500us) == jiffies{2});
  STATIC_REQUIRE(wq::to_jiffies(2ms) == jiffies{2});
  STATIC_REQUIRE(wq::to_jiffies(3s) == jiffies{3000});
  STATIC_REQUIRE(wq::to_jiffies(2min) == jiffies{120'000});
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<unsigned, std::milli>{7}) == jiffies{7});
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<short, std::centi>{3}) == jiffies{30});
  STATIC_REQUIRE(wq::to_jiffies(jiffies::duration{42}) == jiffies{42});
  STATIC_REQUIRE(wq::to_jiffies(jiffies{42}) == jiffies{42});
  // A period that is neither a multiple nor a divisor of the tick: 1/3 s = 333.33 ms.
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<int, std::ratio<1, 3>>{1}) == jiffies{334});
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<int, std::ratio<1, 3>>{3}) == jiffies{1000});
}
#endif

TEST_CASE("jiffies: chrono negatives give zero, huge values saturate", "[jiffies][chrono]") {
  STATIC_REQUIRE(wq::to_jiffies(-1ns) == jiffies{0});
  STATIC_REQUIRE(wq::to_jiffies(-5ms) == jiffies{0});
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::nanoseconds::min()) == jiffies{0});
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::hours::max()) == jiffies::max());
  // A billion years in hours: at HZ=1000, 8.76e12 h * 3600 s * 1000 is about 3.2e19 ticks, which
  // overflows 64 bits on the way to saturating; a trillion years saturates at any HZ >= 1.
  constexpr std::chrono::hours billion_years{24LL * 365 * 1'000'000'000};
  constexpr std::chrono::hours trillion_years{24LL * 365 * 1'000'000'000'000};
  STATIC_REQUIRE(wq::to_jiffies(trillion_years) == jiffies::max());
#if WQ_HZ == 1000
  STATIC_REQUIRE(wq::to_jiffies(billion_years) == jiffies::max());
#endif
  const u128 billion_ticks = u128{24ULL * 365 * 1'000'000'000} * 3600 * wq::hz;
  CHECK(wq::to_jiffies(billion_years).count() ==
        (billion_ticks > ref_max ? ref_max : static_cast<unsigned long>(billion_ticks)));
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<unsigned long long, std::ratio<3600>>{
                     ULLONG_MAX}) == jiffies::max());
  // Half-tick units at HZ=1000: 2*max + 1 halves round up to max + 1 ticks, one past the cap.
  using half_tick = std::chrono::duration<unsigned long long, std::ratio<1, 2000>>;
  constexpr unsigned long long two_max = 2ULL * wq::max_jiffy_offset;
  STATIC_REQUIRE(wq::detail::to_jiffies_hz<1000>(half_tick{two_max - 2}) ==
                 wq::max_jiffy_offset - 1);
  STATIC_REQUIRE(wq::detail::to_jiffies_hz<1000>(half_tick{two_max - 1}) == wq::max_jiffy_offset);
  STATIC_REQUIRE(wq::detail::to_jiffies_hz<1000>(half_tick{two_max}) == wq::max_jiffy_offset);
  STATIC_REQUIRE(wq::detail::to_jiffies_hz<1000>(half_tick{two_max + 1}) == wq::max_jiffy_offset);
  // A period that needs the overflow-free fraction path: both terms of the ratio are large.
  using odd = std::ratio<1'000'000'007, 999'999'937>;
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<long long, odd>{0}) == jiffies{0});
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<long long, odd>::max()) == jiffies::max());
}

TEST_CASE("jiffies: chrono conversion of integer reps matches a 128-bit reference",
          "[jiffies][chrono]") {
  using odd = std::ratio<1'000'000'007, 999'999'937>;
  using odd_duration = std::chrono::duration<long long, odd>;
  const u128 hz = wq::hz;
  for (const unsigned long long v : sample_values(LLONG_MAX)) {
    const auto c = static_cast<long long>(v);
    // ns: ceil(c * hz / 10^9)
    const u128 ns_ref = ceil_div(u128{v} * hz, 1'000'000'000);
    const unsigned long ns_expected =
        ns_ref > ref_max ? ref_max : static_cast<unsigned long>(ns_ref);
    REQUIRE(wq::to_jiffies(std::chrono::nanoseconds{c}).count() == ns_expected);
    // odd period: ceil(c * 1000000007 * hz / 999999937), exact in 128 bits for c < 2^63.
    const u128 odd_ref = ceil_div(u128{v} * 1'000'000'007U * hz, 999'999'937U);
    const unsigned long odd_expected =
        odd_ref > ref_max ? ref_max : static_cast<unsigned long>(odd_ref);
    REQUIRE(wq::to_jiffies(odd_duration{c}).count() == odd_expected);
    REQUIRE(wq::to_jiffies(odd_duration{-c}).count() == 0);
  }
}

TEST_CASE("jiffies: chrono floating-point reps round up, NaN gives zero", "[jiffies][chrono]") {
  using fms = std::chrono::duration<double, std::milli>;
  const double tick_ms = 1000.0 / static_cast<double>(wq::hz);
  CHECK(wq::to_jiffies(fms{0.0}) == jiffies{0});
  CHECK(wq::to_jiffies(fms{-1.5}) == jiffies{0});
  CHECK(wq::to_jiffies(fms{std::numeric_limits<double>::quiet_NaN()}) == jiffies{0});
  CHECK(wq::to_jiffies(fms{std::numeric_limits<double>::infinity()}) == jiffies::max());
  CHECK(wq::to_jiffies(fms{1e300}) == jiffies::max());
  CHECK(wq::to_jiffies(fms{tick_ms * 1.5}) == jiffies{2});
  CHECK(wq::to_jiffies(fms{tick_ms * 0.001}) == jiffies{1});
  CHECK(wq::to_jiffies(std::chrono::duration<float>{2.0F}) == jiffies{2 * wq::hz});
  STATIC_REQUIRE(wq::to_jiffies(std::chrono::duration<double>{0.5}) == jiffies{(wq::hz + 1) / 2});
}

TEST_CASE("jiffies: to_duration rounds up and saturates", "[jiffies][chrono]") {
  // One tick is 10^9 / hz ns, rounded up.
  const u128 one_tick = ceil_div(1'000'000'000, wq::hz);
  CHECK(static_cast<u128>(jiffies{1}.to_duration().count()) == one_tick);
  STATIC_REQUIRE(jiffies{0}.to_duration() == 0ns);
  STATIC_REQUIRE(jiffies{wq::hz}.to_duration() == 1s);
#if LP64_LONG
  STATIC_REQUIRE(jiffies{ULONG_MAX}.to_duration() == std::chrono::nanoseconds::max());
#endif
#if WQ_HZ == 1000
  STATIC_REQUIRE(jiffies{1}.to_duration() == 1ms);
  STATIC_REQUIRE(jiffies{1234}.to_duration() == 1234ms);
#if LP64_LONG
  STATIC_REQUIRE(jiffies::max().to_duration() == std::chrono::nanoseconds::max());
#endif
#endif
}

TEST_CASE("jiffies: delay_to_nanoseconds clamps to [0, max_delay]", "[jiffies][chrono]") {
  // max_delay: the real length of jiffies::max(), capped at 100 Gregorian years.
  const u128 max_real = ceil_div(u128{ref_max} * 1'000'000'000, wq::hz);
  const u128 hundred_years = u128{100} * 31'556'952 * 1'000'000'000;
  const u128 expected_max = max_real < hundred_years ? max_real : hundred_years;
  CHECK(static_cast<u128>(wq::max_delay.count()) == expected_max);
#if LP64_LONG
  STATIC_REQUIRE(wq::max_delay == std::chrono::years{100});
#endif

  STATIC_REQUIRE(wq::delay_to_nanoseconds(0ns) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(-1ns) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(-3h) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(std::chrono::hours::min()) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(1500us) == 1'500'000ns);  // not rounded to ticks
  STATIC_REQUIRE(wq::delay_to_nanoseconds(std::chrono::duration<long long, std::pico>{1}) == 1ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(std::chrono::duration<long long, std::pico>{1001}) ==
                 2ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(std::chrono::hours::max()) == wq::max_delay);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(std::chrono::nanoseconds::max()) == wq::max_delay);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{0}) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{wq::hz}) == 1s);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies::max()) == wq::max_delay);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{static_cast<unsigned long>(LONG_MAX)}) ==
                 wq::max_delay);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{ULONG_MAX}) == 0ns);  // -1: due (§3.1)
  CHECK(wq::delay_to_nanoseconds(std::chrono::duration<double, std::nano>{1.5}) == 2ns);
  CHECK(wq::delay_to_nanoseconds(std::chrono::duration<double>{-0.5}) == 0ns);
  CHECK(wq::delay_to_nanoseconds(std::chrono::duration<double>{1e30}) == wq::max_delay);

  // The cap leaves room to add it to the current time without overflow.
  const auto since_epoch = std::chrono::steady_clock::now().time_since_epoch();
  CHECK(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch).count() <=
        std::chrono::nanoseconds::max().count() - wq::max_delay.count());
}

TEST_CASE(
    "jiffies: a delay that is negative as a long is already due, as the kernel's timer "
    "reads expires - now (§3.1, rule 19)",
    "[jiffies][chrono][rule19]") {
  constexpr unsigned long long_max = static_cast<unsigned long>(LONG_MAX);

  // The wrap: LONG_MAX is the last count read as a positive long, LONG_MAX + 1 the first read
  // as a negative one (LONG_MIN), ULONG_MAX is -1.
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{long_max}) == wq::max_delay);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{long_max - 1}) == wq::max_delay);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{long_max + 1}) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{long_max + 2}) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{ULONG_MAX}) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{ULONG_MAX - 4}) == 0ns);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{ULONG_MAX - ref_max}) == 0ns);

  // [max_jiffy_offset, LONG_MAX] is the "infinite" timeout: saturated, not due.
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies::max()) == wq::max_delay);
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{wq::max_jiffy_offset + 1}) == wq::max_delay);
  // Small positive delays are unchanged.
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{1}) == jiffies{1}.to_duration());
  STATIC_REQUIRE(wq::delay_to_nanoseconds(jiffies{0}) == 0ns);

  SECTION("deadline - now, read after the deadline, across the counter's wrap") {
    // Readings of a wrapping tick counter, as the kernel computes a timeout: the deadline was
    // set 10 ticks before the counter wrapped, and now is 5 ticks after it.
    const jiffies set_at{ULONG_MAX - 20};
    const jiffies deadline = set_at + jiffies{10};
    const jiffies now = deadline + jiffies{15};
    REQUIRE(now.count() == 4);  // the counter wrapped between the deadline and now
    REQUIRE(wq::time_after(now, deadline));
    const jiffies delay = deadline - now;  // -15, an unsigned count near ULONG_MAX
    CHECK(delay.count() == ULONG_MAX - 14);
    CHECK(wq::delay_to_nanoseconds(delay) == 0ns);
    // Before the deadline the same subtraction is the time left.
    const jiffies earlier = deadline - jiffies{3};
    CHECK(wq::delay_to_nanoseconds(deadline - earlier) == jiffies{3}.to_duration());
  }
  SECTION("deadline - now, read after the deadline, from initial_jiffies") {
    const jiffies boot{wq::initial_jiffies};
    const jiffies deadline = boot + wq::msecs_to_jiffies(100);
    const jiffies now = deadline + wq::msecs_to_jiffies(1);
    REQUIRE(wq::time_after(now, deadline));
    CHECK(wq::delay_to_nanoseconds(deadline - now) == 0ns);
    CHECK(wq::delay_to_nanoseconds(deadline - boot) == wq::msecs_to_jiffies(100).to_duration());
  }
  SECTION("every count read as a negative long is due") {
    for (unsigned long c : {long_max + 1, long_max + 1000, ULONG_MAX / 4 * 3, ULONG_MAX - 1}) {
      INFO(c);
      CHECK(static_cast<long>(c) < 0);
      CHECK(wq::delay_to_nanoseconds(jiffies{c}) == 0ns);
    }
  }
}

TEST_CASE("jiffies: the delay concept accepts jiffies and chrono durations", "[jiffies]") {
  STATIC_REQUIRE(wq::delay<jiffies>);
  STATIC_REQUIRE(wq::delay<const jiffies&>);
  STATIC_REQUIRE(wq::delay<std::chrono::seconds>);
  STATIC_REQUIRE(wq::delay<std::chrono::nanoseconds&>);
  STATIC_REQUIRE(wq::delay<std::chrono::duration<double, std::milli>>);
  STATIC_REQUIRE(wq::delay<jiffies::duration>);
  STATIC_REQUIRE(!wq::delay<int>);
  STATIC_REQUIRE(!wq::delay<unsigned long>);
  STATIC_REQUIRE(!wq::delay<double>);
  STATIC_REQUIRE(!wq::delay<std::chrono::steady_clock::time_point>);
  STATIC_REQUIRE(!wq::delay<std::chrono::duration<bool>>);
}

// ---- Other HZ values, through the detail templates ------------------------------------------

TEST_CASE("jiffies: HZ=250 rounds milliseconds up in 4 ms steps (§3.3)", "[jiffies][hz]") {
  using wq::detail::msecs_to_jiffies_hz;
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(0) == 0);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(1) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(2) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(3) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(4) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(5) == 2);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(8) == 2);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(9) == 3);
  STATIC_REQUIRE(msecs_to_jiffies_hz<250>(0x8000'0000U) == wq::max_jiffy_offset);
  STATIC_REQUIRE(wq::detail::jiffies_to_msecs_hz<250>(3) == 12);
  STATIC_REQUIRE(wq::detail::jiffies_to_usecs_hz<250>(3) == 12'000);
  STATIC_REQUIRE(wq::detail::usecs_to_jiffies_hz<250>(4000) == 1);
  STATIC_REQUIRE(wq::detail::usecs_to_jiffies_hz<250>(4001) == 2);
  STATIC_REQUIRE(wq::detail::secs_to_jiffies_hz<250>(2) == 500);
  STATIC_REQUIRE(wq::detail::nsecs_to_jiffies_hz<250>(3'999'999) == 0);
  STATIC_REQUIRE(wq::detail::nsecs_to_jiffies_hz<250>(4'000'000) == 1);
#if LP64_LONG
  // jiffies_to_usecs(MAX) = 4000 * (2^62 - 2) mod 2^32 = 2^32 - 8000 = 4294959296.
  STATIC_REQUIRE(wq::detail::usecs_to_jiffies_hz<250>(4'294'959'296U) == 1'073'740);
  STATIC_REQUIRE(wq::detail::usecs_to_jiffies_hz<250>(4'294'959'297U) == wq::max_jiffy_offset);
#endif
}

TEST_CASE("jiffies: HZ=100 gives ceil(m / 10) (§3.3)", "[jiffies][hz]") {
  using wq::detail::msecs_to_jiffies_hz;
  STATIC_REQUIRE(msecs_to_jiffies_hz<100>(0) == 0);
  STATIC_REQUIRE(msecs_to_jiffies_hz<100>(1) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<100>(10) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<100>(11) == 2);
  STATIC_REQUIRE(msecs_to_jiffies_hz<100>(0x7FFF'FFFFU) == 214'748'365);
  STATIC_REQUIRE(wq::detail::jiffies_to_msecs_hz<100>(7) == 70);
  STATIC_REQUIRE(wq::detail::to_jiffies_hz<100>(1ns) == 1);
  STATIC_REQUIRE(wq::detail::to_jiffies_hz<100>(10ms) == 1);
  STATIC_REQUIRE(wq::detail::to_jiffies_hz<100>(10'001us) == 2);
  STATIC_REQUIRE(wq::detail::jiffies_to_chrono_nsecs_hz<100>(3) == 30'000'000);
}

TEST_CASE("jiffies: HZ=300 uses exact rounding up (§3.3, §3.4, §3.6)", "[jiffies][hz]") {
  using namespace wq::detail;
  // 1 ms = 0.3 ticks; 3 ms = 0.9; 4 ms = 1.2; 10 ms = 3.
  STATIC_REQUIRE(msecs_to_jiffies_hz<300>(0) == 0);
  STATIC_REQUIRE(msecs_to_jiffies_hz<300>(1) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<300>(3) == 1);
  STATIC_REQUIRE(msecs_to_jiffies_hz<300>(4) == 2);
  STATIC_REQUIRE(msecs_to_jiffies_hz<300>(10) == 3);
  STATIC_REQUIRE(msecs_to_jiffies_hz<300>(11) == 4);
  STATIC_REQUIRE(msecs_to_jiffies_hz<300>(0x8000'0000U) == wq::max_jiffy_offset);
  // 1 tick = 3.33 ms, rounded up to 4; 3 ticks = 10 ms exactly.
  STATIC_REQUIRE(jiffies_to_msecs_hz<300>(1) == 4);
  STATIC_REQUIRE(jiffies_to_msecs_hz<300>(3) == 10);
  // Microseconds: 1 tick = 3333.33 us, truncated to 3333 by jiffies_to_usecs.
  STATIC_REQUIRE(jiffies_to_usecs_hz<300>(1) == 3333);
  STATIC_REQUIRE(jiffies_to_usecs_hz<300>(3) == 10'000);
  STATIC_REQUIRE(jiffies_to_nsecs_hz<300>(1) == 3'333'000);
  STATIC_REQUIRE(usecs_to_jiffies_hz<300>(1) == 1);
  STATIC_REQUIRE(usecs_to_jiffies_hz<300>(3333) == 1);
  STATIC_REQUIRE(usecs_to_jiffies_hz<300>(3334) == 2);
  // Nanoseconds truncate: 3333333 ns = 0.9999999 ticks.
  STATIC_REQUIRE(nsecs_to_jiffies_hz<300>(3'333'333) == 0);
  STATIC_REQUIRE(nsecs_to_jiffies_hz<300>(3'333'334) == 1);
  STATIC_REQUIRE(to_jiffies_hz<300>(3'333'333ns) == 1);
  STATIC_REQUIRE(to_jiffies_hz<300>(3'333'334ns) == 2);
  STATIC_REQUIRE(jiffies_to_chrono_nsecs_hz<300>(1) == 3'333'334);
}

TEST_CASE("jiffies: HZ=2000 and HZ=3000 multiply and saturate (§3.3)", "[jiffies][hz]") {
  using namespace wq::detail;
  STATIC_REQUIRE(msecs_to_jiffies_hz<2000>(0) == 0);
  STATIC_REQUIRE(msecs_to_jiffies_hz<2000>(1) == 2);
#if LP64_LONG
  STATIC_REQUIRE(msecs_to_jiffies_hz<2000>(0x7FFF'FFFFU) == 0xFFFF'FFFEUL);
#endif
  STATIC_REQUIRE(msecs_to_jiffies_hz<2000>(0x8000'0000U) == wq::max_jiffy_offset);
  STATIC_REQUIRE(jiffies_to_msecs_hz<2000>(1) == 1);  // half a millisecond, rounded up
  STATIC_REQUIRE(jiffies_to_msecs_hz<2000>(3) == 2);
  STATIC_REQUIRE(jiffies_to_usecs_hz<2000>(3) == 1500);
  STATIC_REQUIRE(usecs_to_jiffies_hz<2000>(501) == 2);
#if LP64_LONG
  // HZ=3000: jiffies_to_msecs(MAX) = ceil((2^62 - 2) / 3) = 0x1555555555555555, which is
  // 0x55555555 = 1431655765 once truncated to unsigned int. Above it msecs saturate.
  STATIC_REQUIRE(jiffies_to_msecs_hz<3000>(wq::max_jiffy_offset) == 1'431'655'765U);
  STATIC_REQUIRE(msecs_to_jiffies_hz<3000>(1'431'655'765U) == 4'294'967'295UL);
  STATIC_REQUIRE(msecs_to_jiffies_hz<3000>(1'431'655'766U) == wq::max_jiffy_offset);
#endif
}

namespace {
template <unsigned long Hz>
using hz_t = std::integral_constant<unsigned long, Hz>;
}

TEMPLATE_TEST_CASE("jiffies: kernel conversions match the 128-bit reference (§3.3-§3.6)",
                   "[jiffies][hz]", hz_t<1>, hz_t<24>, hz_t<100>, hz_t<250>, hz_t<300>, hz_t<1000>,
                   hz_t<1024>, hz_t<1200>, hz_t<2000>, hz_t<3000>, hz_t<48'000>, hz_t<1'000'000>) {
  constexpr unsigned long hz = TestType::value;
  using namespace wq::detail;
  for (const unsigned long long v : sample_values(UINT_MAX)) {
    const auto m = static_cast<unsigned int>(v);
    REQUIRE(msecs_to_jiffies_hz<hz>(m) == ref_msecs_to_jiffies(hz, m));
    REQUIRE(usecs_to_jiffies_hz<hz>(m) == ref_usecs_to_jiffies(hz, m));
  }
  for (const unsigned long long v : sample_values(ULONG_MAX)) {
    const auto j = static_cast<unsigned long>(v);
    REQUIRE(jiffies_to_msecs_hz<hz>(j) == ref_jiffies_to_msecs(hz, j));
    REQUIRE(jiffies_to_usecs_hz<hz>(j) == ref_jiffies_to_usecs(hz, j));
    REQUIRE(jiffies_to_nsecs_hz<hz>(j) ==
            static_cast<unsigned long long>(ref_jiffies_to_usecs(hz, j)) * 1000U);
    REQUIRE(secs_to_jiffies_hz<hz>(j) == static_cast<unsigned long>(u128{j} * hz));
    const u128 ns = ceil_div(u128{j} * 1'000'000'000, hz);
    const u128 ns_cap = static_cast<u128>(LLONG_MAX);
    REQUIRE(static_cast<u128>(jiffies_to_chrono_nsecs_hz<hz>(j)) == (ns < ns_cap ? ns : ns_cap));
  }
  for (const unsigned long long n : sample_values(ULLONG_MAX)) {
    REQUIRE(nsecs_to_jiffies_hz<hz>(n) == ref_nsecs_to_jiffies(hz, n));
    if (n <= static_cast<unsigned long long>(LLONG_MAX)) {
      const u128 ticks = ceil_div(u128{n} * hz, 1'000'000'000);
      const u128 expected = ticks > ref_max ? ref_max : ticks;
      REQUIRE(to_jiffies_hz<hz>(std::chrono::nanoseconds{static_cast<long long>(n)}) == expected);
    }
  }
}

TEST_CASE("jiffies: the public functions are the detail rules at WQ_HZ", "[jiffies]") {
  using namespace wq::detail;
  for (const unsigned long long v : sample_values(UINT_MAX)) {
    const auto m = static_cast<unsigned int>(v);
    REQUIRE(wq::msecs_to_jiffies(m).count() == ref_msecs_to_jiffies(wq::hz, m));
    REQUIRE(wq::usecs_to_jiffies(m).count() == ref_usecs_to_jiffies(wq::hz, m));
    REQUIRE(wq::jiffies_to_msecs(jiffies{m}) == ref_jiffies_to_msecs(wq::hz, m));
    REQUIRE(wq::jiffies_to_usecs(jiffies{m}) == ref_jiffies_to_usecs(wq::hz, m));
    REQUIRE(wq::nsecs_to_jiffies(v).count() == ref_nsecs_to_jiffies(wq::hz, v));
  }
}

// ---- constexpr-ness -------------------------------------------------------------------------

namespace {
// Every public function is usable in a constant expression (checked by instantiation here).
constexpr bool all_constexpr() {
  using namespace wq::literals;
  const jiffies j = wq::msecs_to_jiffies(10) + wq::usecs_to_jiffies(10) + wq::secs_to_jiffies(1) +
                    wq::nsecs_to_jiffies(10) + 1_jiffies +
                    wq::to_jiffies(std::chrono::milliseconds{3}) + wq::to_jiffies(jiffies{1});
  const unsigned long long sum = wq::jiffies_to_msecs(j) + wq::jiffies_to_usecs(j) +
                                 wq::jiffies_to_nsecs(j) + wq::jiffies_delta_to_msecs(-4);
  const bool cmp = wq::time_after(j, jiffies{0}) && wq::time_before(jiffies{0}, j) &&
                   wq::time_after_eq(j, j) && wq::time_before_eq(j, j) &&
                   wq::time_in_range(j, j, j) && !wq::time_in_range_open(j, j, j);
  const auto ns = wq::delay_to_nanoseconds(j) + wq::delay_to_nanoseconds(std::chrono::seconds{1}) +
                  j.to_duration();
  return sum > 0 && cmp && ns.count() > 0 && jiffies::max() > jiffies::zero();
}
static_assert(all_constexpr());
}  // namespace

// ---- the 64-bit comparisons and the tick counter (§3.1) ------------------------------------

TEST_CASE("jiffies: time_after64 and friends are wrap-safe at 2^64 (§3.1)", "[jiffies]") {
  constexpr std::uint64_t before_wrap = std::numeric_limits<std::uint64_t>::max() - 1;
  constexpr std::uint64_t after_wrap = 3;  // five ticks later, past the wrap
  STATIC_REQUIRE(wq::time_after64(after_wrap, before_wrap));
  STATIC_REQUIRE(wq::time_before64(before_wrap, after_wrap));
  STATIC_REQUIRE_FALSE(wq::time_after64(before_wrap, after_wrap));
  STATIC_REQUIRE(wq::time_after_eq64(after_wrap, after_wrap));
  STATIC_REQUIRE(wq::time_before_eq64(before_wrap, after_wrap));
  STATIC_REQUIRE_FALSE(wq::time_before_eq64(after_wrap, before_wrap));
  STATIC_REQUIRE(wq::time_in_range64(0, before_wrap, after_wrap));  // 0 lies across the wrap
  STATIC_REQUIRE(wq::time_in_range64(after_wrap, before_wrap, after_wrap));
  STATIC_REQUIRE_FALSE(wq::time_in_range64(after_wrap + 1, before_wrap, after_wrap));
  // A plain `<` gets the wrap wrong: the reason these exist.
  STATIC_REQUIRE(after_wrap < before_wrap);
}

TEST_CASE("jiffies: the tick counter starts at initial_jiffies and never runs backwards (§3.1)",
          "[jiffies][clock]") {
  const std::uint64_t first = wq::get_jiffies_64();
  CHECK(first >= std::uint64_t{wq::initial_jiffies});
  std::uint64_t last = first;
  for (int i = 0; i < 100'000; ++i) {
    const std::uint64_t now = wq::get_jiffies_64();
    REQUIRE(now >= last);
    last = now;
  }
  // jiffies_now() is the same reading in an unsigned long (it wraps with it).
  const wq::jiffies j = wq::jiffies_now();
  CHECK(wq::time_after_eq(j, wq::jiffies{static_cast<unsigned long>(last)}));
  // The low 32 bits start five minutes before their wrap (initial_jiffies), as the kernel's do.
  CHECK(static_cast<std::uint32_t>(first) >= static_cast<std::uint32_t>(wq::initial_jiffies));
}

TEST_CASE(
    "jiffies: with a test_clock the counter follows virtual time, time_is_* compare "
    "with now (§3.1)",
    "[jiffies][clock]") {
  using namespace std::chrono_literals;
  wq::test_clock clock;
  const std::uint64_t t0 = wq::get_jiffies_64();
  CHECK(wq::get_jiffies_64() == t0);  // time stands still
  clock.advance(1s);
  CHECK(wq::get_jiffies_64() - t0 == wq::hz);  // exactly hz ticks per virtual second
  const wq::jiffies now = wq::jiffies_now();
  const wq::jiffies past = now - wq::jiffies{1};
  const wq::jiffies future = now + wq::msecs_to_jiffies(10);
  CHECK(wq::time_is_before_jiffies(past));
  CHECK_FALSE(wq::time_is_before_jiffies(now));
  CHECK(wq::time_is_before_eq_jiffies(now));
  CHECK(wq::time_is_after_jiffies(future));
  CHECK_FALSE(wq::time_is_after_jiffies(now));
  CHECK(wq::time_is_after_eq_jiffies(now));
  const std::uint64_t n64 = wq::get_jiffies_64();
  CHECK(wq::time_is_before_jiffies64(n64 - 1));
  CHECK(wq::time_is_after_jiffies64(n64 + 1));
  CHECK(wq::time_is_before_eq_jiffies64(n64));
  CHECK(wq::time_is_after_eq_jiffies64(n64));
  clock.advance(10ms);
  CHECK(wq::time_is_before_eq_jiffies(future));  // its moment has come
  CHECK_FALSE(wq::time_is_after_jiffies(future));
}
