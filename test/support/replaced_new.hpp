// SPDX-License-Identifier: BSL-1.0
// test/support/replaced_new.hpp: what a test executable that replaces the global operator new
// (with malloc/free underneath) needs. Include it from exactly one translation unit of that
// executable, since it defines the AddressSanitizer options hook.
//
// GCC cannot see that the replacements pair operator new with malloc and operator delete with
// free, and under AddressSanitizer allocations made inside the sanitizer runtime's interceptors
// still reach its own operator new while frees go through the replacement: the pairing is the
// test's to keep, so ASan's mismatch check is turned off for that executable only.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define WQ_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WQ_TEST_ASAN 1
#endif
#endif
#ifdef WQ_TEST_ASAN
extern "C" const char* __asan_default_options() { return "alloc_dealloc_mismatch=0"; }
#endif
