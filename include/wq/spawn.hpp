// SPDX-License-Identifier: BSL-1.0
// wq/spawn.hpp: `try_spawn` and `spawn`, which run a closure on a queue by boxing it in a
// heap-allocated work item (Rust's `Queue::try_spawn`).
//
// This is the one queueing path that allocates, by nature: one block per closure, freed after
// the closure has run. `try_spawn` reports failure as an error code instead of throwing:
// std::errc::not_enough_memory if the box cannot be allocated (the closure is then destroyed
// without running), wq::spawn_errc::rejected if the queue refuses it (draining or destroyed).
//
// Thread safety: callable from any thread, including from work items.
// Lifetime: the closure is destroyed on the worker right after it runs.
#pragma once

#include <wq/config.hpp>

#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#include <wq/work.hpp>
#include <wq/workqueue.hpp>

namespace wq {

/// Errors of try_spawn besides std::errc::not_enough_memory.
enum class spawn_errc { rejected = 1 };

}  // namespace wq

/// Lets `ec == wq::spawn_errc::rejected` compare an error_code with the enum.
template <>
struct std::is_error_code_enum<wq::spawn_errc> : std::true_type {};

namespace wq {

/// The error category of spawn_errc ("wq.spawn").
const std::error_category& spawn_category() noexcept;

inline std::error_code make_error_code(spawn_errc e) noexcept {
  return {static_cast<int>(e), spawn_category()};
}

/// Queues `f` to run once on `queue`, allocating its box with `new (std::nothrow)`.
/// Returns: an empty error_code on success; std::errc::not_enough_memory or
/// spawn_errc::rejected otherwise (the closure is then destroyed without running).
/// Effects: writes made before the call are visible to `f` (rule 6).
template <class F>
requires std::is_invocable_v < std::decay_t<F>
& > [[nodiscard]] std::error_code try_spawn(workqueue& queue, F&& f) noexcept(
        std::is_nothrow_constructible_v<std::decay_t<F>, F&&>);

/// As try_spawn, but reports failure by throwing.
/// Throws: std::bad_alloc if the box cannot be allocated; std::system_error (spawn_errc) if the
/// queue refuses the closure.
template <class F>
requires std::is_invocable_v < std::decay_t<F>
& > void spawn(workqueue& queue, F&& f);

}  // namespace wq

#define WQ_DETAIL_SPAWN_HPP_DECLARED  // impl/spawn.hpp checks it
#include <wq/impl/spawn.hpp>
