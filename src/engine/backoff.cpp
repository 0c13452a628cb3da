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

}  // namespace wq::detail
