// SPDX-License-Identifier: BSL-1.0
// src/engine/backoff.hpp: the spin-wait step of the engine's short in-transit windows (layer 0).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace wq::detail {

/// Effects: backs off in a spin-wait for a short in-transit window (an item being linked, a
/// timer wait being started): yields for the first spins, then sleeps briefly. Never blocks on
/// a lock. Thread safety: any thread.
void backoff(unsigned spins) noexcept;

/// Effects: one step of a busy-wait: tells the CPU this thread spins (x86 `pause`, AArch64
/// `yield`), so a sibling hyper-thread gets the core and leaving the loop costs no mis-speculated
/// memory order. Never blocks. Thread safety: any thread.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Returns: whether this machine has more than one CPU, so that a lock holder may run while
/// another thread spins for it. Thread safety: any thread; read once per process.
bool spinning_may_help() noexcept;

}  // namespace wq::detail
