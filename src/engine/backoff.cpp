// SPDX-License-Identifier: BSL-1.0
// The spin-wait step: see backoff.hpp.
#include "backoff.hpp"

#include <chrono>
#include <thread>

namespace wq::detail {

void backoff(unsigned spins) noexcept {
  if (spins < 64) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

bool spinning_may_help() noexcept {
  static const bool several = std::thread::hardware_concurrency() > 1;  // once: it reads sysfs
  return several;
}

}  // namespace wq::detail
