// SPDX-License-Identifier: BSL-1.0
// The out-of-line part of wq/config.hpp: the assertion handler.
#include <wq/config.hpp>

#include <cstdio>
#include <cstdlib>

namespace wq::detail {

void assertion_failed(const char* expr, const char* msg, const char* file, int line) noexcept {
  std::fprintf(stderr, "wq: assertion failed: %s: %s (%s:%d)\n", expr, msg, file, line);
  std::abort();
}

}  // namespace wq::detail
