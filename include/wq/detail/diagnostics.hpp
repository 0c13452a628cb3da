// SPDX-License-Identifier: BSL-1.0
// wq/detail/diagnostics.hpp: how the library reports a notice or a misuse (defined in
// src/diagnostics.cpp). Nothing here is a user contract; the handler is (wq/diagnostics.hpp).
#pragma once

namespace wq {
enum class errc;  // wq/diagnostics.hpp
}  // namespace wq

namespace wq::detail {

/// Effects: formats a message (printf-style, truncated to 511 bytes) and passes it with `code`
/// to the diagnostic handler. Thread safety: any thread, with or without a queue's mutex held
/// (which is why a handler must not call back into wq, wq/diagnostics.hpp).
[[gnu::format(printf, 2, 3)]] void report(errc code, const char* fmt, ...) noexcept;

}  // namespace wq::detail
