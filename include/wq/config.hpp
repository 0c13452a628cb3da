// SPDX-License-Identifier: BSL-1.0
// wq/config.hpp: version macros, the compile-time tick rate and the overridable assertion hook.
//
// Every wq header includes this file first. It defines:
//   - WQ_VERSION_{MAJOR,MINOR,PATCH}: the library version;
//   - WQ_HZ: jiffies per second (default 1000). Define it before including any wq header, or set
//     the CMake cache variable WQ_HZ, to change it for the whole program (it is an ABI setting:
//     every translation unit must agree);
//   - WQ_ASSERT(cond, msg): reports misuse the kernel would WARN about. By default it is active
//     in debug builds (NDEBUG undefined) and calls wq::detail::assertion_failed, which prints
//     the message and aborts. Define WQ_ASSERT yourself before including wq to route misuse to
//     your own handler (it must not return if the condition is false and your program relies on
//     the check), or define WQ_DISABLE_ASSERTS to compile the checks out.
//
// Thread safety: everything here is a macro or a stateless function.
#pragma once

#define WQ_VERSION_MAJOR 0
#define WQ_VERSION_MINOR 1
#define WQ_VERSION_PATCH 0

#ifndef WQ_HZ
#define WQ_HZ 1000
#endif

namespace wq::detail {
/// Prints "wq: assertion failed: <expr>: <msg> (<file>:<line>)" to stderr and aborts.
[[noreturn]] void assertion_failed(const char* expr, const char* msg, const char* file,
                                   int line) noexcept;
}  // namespace wq::detail

#ifndef WQ_ASSERT
#if defined(WQ_DISABLE_ASSERTS) || (defined(NDEBUG) && !defined(WQ_ENABLE_ASSERTS))
#define WQ_ASSERT(cond, msg) ((void)0)
#else
#define WQ_ASSERT(cond, msg) \
  ((cond) ? (void)0 : ::wq::detail::assertion_failed(#cond, (msg), __FILE__, __LINE__))
#endif
#endif
