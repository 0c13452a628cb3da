// SPDX-License-Identifier: BSL-1.0
// Tests for wq/flags.hpp: the queue_flags operators and has_flag, and clamp_max_active, the
// max_active rule every queue applies (rule 37: 0 means 1024, otherwise clamped to [1, 2048]).
// Everything here is constexpr, so most checks are made at compile time as well.
#include <wq/flags.hpp>

#include <catch2/catch.hpp>

#include <cstdint>

#include <climits>
#include <type_traits>

namespace {

using wq::queue_flags;

constexpr unsigned bits(queue_flags f) { return static_cast<unsigned>(f); }

}  // namespace

TEST_CASE("flags: the limits are the kernel's WQ_DFL_ACTIVE and WQ_MAX_ACTIVE (rule 37)",
          "[flags][max_active][rule37]") {
  STATIC_REQUIRE(wq::default_max_active == 1024);
  STATIC_REQUIRE(wq::max_max_active == 2048);
}

TEST_CASE("flags: clamp_max_active maps 0 to 1024 and clamps to [1, 2048] (rule 37)",
          "[flags][max_active][rule37]") {
  struct row {
    int requested;
    int expected;
  };
  constexpr row rows[] = {{0, 1024},    {1, 1},          {2, 2},       {7, 7},       {1023, 1023},
                          {1024, 1024}, {1025, 1025},    {2047, 2047}, {2048, 2048}, {2049, 2048},
                          {4096, 2048}, {INT_MAX, 2048}, {-1, 1},      {-2048, 1},   {INT_MIN, 1}};
  for (const row& r : rows) {
    INFO("requested " << r.requested);
    CHECK(wq::clamp_max_active(r.requested) == r.expected);
  }
  STATIC_REQUIRE(wq::clamp_max_active(0) == wq::default_max_active);
  STATIC_REQUIRE(wq::clamp_max_active(INT_MIN) == 1);
  STATIC_REQUIRE(wq::clamp_max_active(INT_MAX) == wq::max_max_active);
  STATIC_REQUIRE(noexcept(wq::clamp_max_active(5)));
}

TEST_CASE("flags: every flag is a distinct bit and none is zero", "[flags]") {
  STATIC_REQUIRE(std::is_same_v<std::underlying_type_t<queue_flags>, std::uint8_t>);
  STATIC_REQUIRE(bits(queue_flags::none) == 0);
  constexpr queue_flags all[] = {queue_flags::unbound, queue_flags::highpri,
                                 queue_flags::long_running};
  unsigned seen = 0;
  for (queue_flags f : all) {
    const unsigned b = bits(f);
    CHECK(b != 0);
    CHECK((b & (b - 1)) == 0);  // a single bit
    CHECK((seen & b) == 0);     // not shared with another flag
    seen |= b;
  }
}

TEST_CASE("flags: operator| combines and operator& intersects", "[flags]") {
  constexpr queue_flags both = queue_flags::unbound | queue_flags::highpri;
  STATIC_REQUIRE(bits(both) == (bits(queue_flags::unbound) | bits(queue_flags::highpri)));
  STATIC_REQUIRE((both & queue_flags::unbound) == queue_flags::unbound);
  STATIC_REQUIRE((both & queue_flags::long_running) == queue_flags::none);
  STATIC_REQUIRE((queue_flags::none | queue_flags::long_running) == queue_flags::long_running);
  STATIC_REQUIRE((queue_flags::long_running | queue_flags::long_running) ==
                 queue_flags::long_running);
  STATIC_REQUIRE((both | queue_flags::none) == both);
  STATIC_REQUIRE((both & both) == both);
  STATIC_REQUIRE(noexcept(queue_flags::unbound | queue_flags::highpri));
  STATIC_REQUIRE(noexcept(queue_flags::unbound & queue_flags::highpri));
  CHECK((queue_flags::long_running | queue_flags::unbound) ==
        (queue_flags::unbound | queue_flags::long_running));
}

TEST_CASE("flags: has_flag is true only when every flag asked for is set", "[flags]") {
  constexpr queue_flags set = queue_flags::unbound | queue_flags::long_running;
  STATIC_REQUIRE(wq::has_flag(set, queue_flags::unbound));
  STATIC_REQUIRE(wq::has_flag(set, queue_flags::long_running));
  STATIC_REQUIRE(wq::has_flag(set, set));
  STATIC_REQUIRE_FALSE(wq::has_flag(set, queue_flags::highpri));
  STATIC_REQUIRE_FALSE(wq::has_flag(set, queue_flags::unbound | queue_flags::highpri));
  STATIC_REQUIRE(wq::has_flag(set, queue_flags::none));  // the empty set is in every set
  STATIC_REQUIRE(wq::has_flag(queue_flags::none, queue_flags::none));
  STATIC_REQUIRE_FALSE(wq::has_flag(queue_flags::none, queue_flags::long_running));
  STATIC_REQUIRE(noexcept(wq::has_flag(set, queue_flags::highpri)));
  CHECK(wq::has_flag(queue_flags::long_running | queue_flags::highpri, queue_flags::highpri));
}
