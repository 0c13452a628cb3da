// SPDX-License-Identifier: BSL-1.0
// Tests of the umbrella header wq/wq.hpp: it is self-contained and brings in the whole API.
#include <wq/wq.hpp>

#include <catch2/catch.hpp>

#include <memory>

#include "support/test_support.hpp"

namespace {
struct item {
  wq::work w;
  wq_test::latch* done = nullptr;
  static void run(std::unique_ptr<item> self, wq::id<&item::w>) noexcept {
    self->done->count_down();
  }
};
}  // namespace

TEST_CASE("wq.hpp: the whole API is reachable from the umbrella header", "[wq]") {
  using namespace wq::literals;
  wq_test::latch done(2);
  auto p = std::make_unique<item>();
  p->done = &done;
  REQUIRE(wq::system_wq().enqueue<&item::w>(std::move(p)));
  REQUIRE_FALSE(wq::try_spawn(wq::system_wq(), [&] { done.count_down(); }));
  REQUIRE(done.wait_for());
  STATIC_REQUIRE((5_jiffies).count() == 5);
  STATIC_REQUIRE(wq::clamp_max_active(0) == wq::default_max_active);
}
