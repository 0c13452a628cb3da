// SPDX-License-Identifier: BSL-1.0
// wq/detail/kernel.hpp: what wq/kernel.hpp's forwarders ask of the library: checking the CPU
// and NUMA-node hints they ignore (defined in src/kernel.cpp). Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <climits>

namespace wq::detail {

/// The value of wq::WORK_CPU_UNBOUND: no CPU.
inline constexpr int work_cpu_unbound = INT_MAX;

/// Effects: reports errc::bad_cpu_hint (naming `call`) if `cpu` is neither work_cpu_unbound nor
/// a CPU of this machine (0 <= cpu < the number of CPUs the kernel may bring online).
/// Thread safety: any thread. Cost: a comparison (the CPU count is read once).
void check_cpu_hint(int cpu, const char* call) noexcept;

/// Effects: reports errc::bad_cpu_hint if `node` is neither -1 (NUMA_NO_NODE) nor a NUMA node
/// of this machine. Thread safety: any thread. Cost: a comparison (the node count is read once).
void check_node_hint(int node, const char* call) noexcept;

}  // namespace wq::detail
