// SPDX-License-Identifier: BSL-1.0
// The Catch2 main of the consumer's copy of sample 05 (as any Catch2 test program has one).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
