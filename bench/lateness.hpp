// SPDX-License-Identifier: BSL-1.0
// bench/lateness.hpp: how wq_bench and wq_scale report lateness, so that both read the same
// percentiles from the same samples.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace wq_bench_support {

/// Effects: sorts `late` (nanoseconds after each item's deadline) and sets the p50_us and p99_us
/// counters of `state` from it. Requires: `late` not empty.
/// `system`, if not empty, names the counters p50_<system>_us and p99_<system>_us instead (a
/// benchmark that measures several systems).
inline void report_lateness(benchmark::State& state, std::vector<std::int64_t>& late,
                            const std::string& system = {}) {
  std::sort(late.begin(), late.end());
  auto pct = [&](double p) {
    // Safety (static_cast): p is in [0, 100], so the index is in [0, size - 1].
    const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(late.size() - 1));
    return static_cast<double>(late[i]) / 1000.0;
  };
  const std::string mid = system.empty() ? "" : system + "_";
  state.counters["p50_" + mid + "us"] = benchmark::Counter(pct(50));
  state.counters["p99_" + mid + "us"] = benchmark::Counter(pct(99));
}

}  // namespace wq_bench_support
