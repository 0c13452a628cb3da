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

// The steady_clock reading the counter starts from (initial_jiffies): the first reading.
std::chrono::steady_clock::time_point origin() noexcept {
  static const std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  return t0;
}

}  // namespace

std::uint64_t get_jiffies_64() noexcept {
  const auto t0 = origin();
  // Safety (relaxed): the test clock's virtual time is read as every other wq reader does
  // (virtual_time.hpp): one load says whether it is installed and what time it is.
  const auto virt = detail::virtual_now.load(std::memory_order_relaxed);
  const auto now = virt != detail::no_virtual_time ? virt : std::chrono::steady_clock::now();
  // A virtual time set before the first reading counts as that reading (no negative ticks).
  const auto since = now > t0 ? std::chrono::floor<tick>(now - t0).count() : 0;
  return std::uint64_t{initial_jiffies} + static_cast<std::uint64_t>(since);
}

jiffies jiffies_now() noexcept { return jiffies{static_cast<unsigned long>(get_jiffies_64())}; }

}  // namespace wq
