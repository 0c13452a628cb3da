// SPDX-License-Identifier: BSL-1.0
// bench/lateness.hpp: how wq_bench and wq_scale report lateness, so that both read the same
// percentiles from the same samples.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

namespace wq_bench_support {

/// Effects: sorts `late` (nanoseconds after each item's deadline) and sets the p50_us and p99_us
/// counters of `state` from it. Requires: `late` not empty.
inline void report_lateness(benchmark::State& state, std::vector<std::int64_t>& late) {
  std::sort(late.begin(), late.end());
  auto pct = [&](double p) {
    const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(late.size() - 1));
    return static_cast<double>(late[i]) / 1000.0;
  };
  state.counters["p50_us"] = benchmark::Counter(pct(50));
  state.counters["p99_us"] = benchmark::Counter(pct(99));
}

}  // namespace wq_bench_support
