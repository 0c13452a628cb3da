// SPDX-License-Identifier: BSL-1.0
// src/engine/backoff.hpp: the spin-wait step of the engine's short in-transit windows (layer 0).
#pragma once

namespace wq::detail {

/// Effects: backs off in a spin-wait for a short in-transit window (an item being linked, a
/// timer wait being started): yields for the first spins, then sleeps briefly. Never blocks on
/// a lock. Thread safety: any thread.
void backoff(unsigned spins) noexcept;

}  // namespace wq::detail
