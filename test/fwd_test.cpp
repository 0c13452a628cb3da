// SPDX-License-Identifier: BSL-1.0
// Tests of wq/fwd.hpp: the forward declarations agree with the definitions (a mismatch, such as
// a class declared as a struct or a wrong underlying type, fails to compile here).
#include <wq/fwd.hpp>

#include <catch2/catch.hpp>

#include <cstdint>

#include <type_traits>

namespace {
// Names only: usable with nothing but fwd.hpp.
struct uses_only_declarations {
  wq::work* item = nullptr;
  wq::delayed_work* delayed = nullptr;
  wq::workqueue* queue = nullptr;
};
}  // namespace

#include <wq/wq.hpp>

TEST_CASE("fwd: forward declarations name the real types", "[fwd]") {
  uses_only_declarations u;
  REQUIRE(u.item == nullptr);
  STATIC_REQUIRE(std::is_same_v<std::underlying_type_t<wq::queue_flags>, std::uint8_t>);
  STATIC_REQUIRE(std::is_enum_v<wq::queue_status>);
  STATIC_REQUIRE(std::is_base_of_v<wq::workqueue, wq::ordered_workqueue>);
  STATIC_REQUIRE(std::is_base_of_v<wq::work, wq::delayed_work>);
}
