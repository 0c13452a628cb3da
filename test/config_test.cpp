// SPDX-License-Identifier: BSL-1.0
// Tests of wq/config.hpp: version macros, the tick rate, and the overridable WQ_ASSERT.
#include <wq/config.hpp>

#include <catch2/catch.hpp>

#include <string>

static_assert(WQ_VERSION_MAJOR == 0 && WQ_VERSION_MINOR >= 1);
static_assert(WQ_HZ >= 1, "the tick rate is positive");

TEST_CASE("config: the default tick rate is 1000 Hz unless overridden", "[config]") {
#ifndef WQ_HZ_OVERRIDDEN
  REQUIRE(WQ_HZ == 1000);
#endif
  REQUIRE(WQ_VERSION_MAJOR == 0);
}

TEST_CASE("config: WQ_ASSERT evaluates its condition only where assertions are on", "[config]") {
  int evaluated = 0;
  [[maybe_unused]] auto touch = [&] {
    ++evaluated;
    return true;
  };
  WQ_ASSERT(touch(), "never fails");
#if defined(WQ_DISABLE_ASSERTS) || (defined(NDEBUG) && !defined(WQ_ENABLE_ASSERTS))
  REQUIRE(evaluated == 0);
#else
  REQUIRE(evaluated == 1);
#endif
}
