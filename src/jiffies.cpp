// SPDX-License-Identifier: BSL-1.0
// The out-of-line part of wq/jiffies.hpp: the tick counter (get_jiffies_64, jiffies_now).
#include <wq/jiffies.hpp>

#include <chrono>
#include <cstdint>
#include <ratio>

#include "virtual_time.hpp"

namespace wq {

namespace {

using tick = std::chrono::duration<std::int64_t, std::ratio<1, static_cast<std::intmax_t>(hz)>>;

// The time the counter starts from (initial_jiffies): the first reading's `now`, a test
// clock's virtual time or the steady clock's. (Taking the steady clock here while a test clock
// was installed put the origin after the virtual time it had started from: the first virtual
// second then counted hz - 1 ticks.) Thread safety: any thread (a function-local static).
std::chrono::steady_clock::time_point origin(std::chrono::steady_clock::time_point now) noexcept {
  static const std::chrono::steady_clock::time_point t0 = now;
  return t0;
}

}  // namespace

std::uint64_t get_jiffies_64() noexcept {
  // Safety (relaxed): the test clock's virtual time is read as every other wq reader does
  // (virtual_time.hpp): one load says whether it is installed and what time it is.
  const auto virt = detail::virtual_now.load(std::memory_order_relaxed);
  const auto now = virt != detail::no_virtual_time ? virt : std::chrono::steady_clock::now();
  const auto t0 = origin(now);
  // A virtual time set before the first reading counts as that reading (no negative ticks).
  const auto since = now > t0 ? std::chrono::floor<tick>(now - t0).count() : 0;
  return std::uint64_t{initial_jiffies} + static_cast<std::uint64_t>(since);
}

jiffies jiffies_now() noexcept { return jiffies{static_cast<unsigned long>(get_jiffies_64())}; }

}  // namespace wq
