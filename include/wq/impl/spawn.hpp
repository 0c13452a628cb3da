// SPDX-License-Identifier: BSL-1.0
// wq/impl/spawn.hpp: template bodies of wq/spawn.hpp: the heap box a spawned closure runs in,
// try_spawn and spawn.
#pragma once

// Part of <wq/spawn.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_SPAWN_HPP_DECLARED
#error "<wq/impl/spawn.hpp> is part of <wq/spawn.hpp>: include <wq/spawn.hpp>"
#endif

#include <memory>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#include <wq/work.hpp>
#include <wq/workqueue.hpp>

namespace wq {
namespace detail {

/// The heap box behind spawn: a work item and the closure it runs once.
template <class F>
struct closure_work {
  work item;
  F fn;
  explicit closure_work(F&& f) : fn(std::move(f)) {}
  static void run(std::unique_ptr<closure_work> self, id<&closure_work::item>) noexcept {
    self->fn();  // noexcept context: an escaping exception terminates (work.hpp)
  }
};

}  // namespace detail

template <class F>
requires std::is_invocable_v < std::decay_t<F>
& > [[nodiscard]] std::error_code try_spawn(workqueue& queue, F&& f) noexcept(
        std::is_nothrow_constructible_v<std::decay_t<F>, F&&>) {
  using box = detail::closure_work<std::decay_t<F>>;
  std::decay_t<F> fn(std::forward<F>(f));
  std::unique_ptr<box> p(new (std::nothrow) box(std::move(fn)));
  if (!p) return std::make_error_code(std::errc::not_enough_memory);
  auto r = queue.enqueue<&box::item>(std::move(p));
  if (!r) return make_error_code(spawn_errc::rejected);
  return {};
}

template <class F>
requires std::is_invocable_v < std::decay_t<F>
& > void spawn(workqueue& queue, F&& f) {
  const std::error_code ec = try_spawn(queue, std::forward<F>(f));
  if (ec == std::errc::not_enough_memory) throw std::bad_alloc();
  if (ec) throw std::system_error(ec, "wq::spawn");
}

}  // namespace wq
