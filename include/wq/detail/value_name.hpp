// SPDX-License-Identifier: BSL-1.0
// wq/detail/value_name.hpp: the source spelling of a constant template argument (a member
// pointer or a function), e.g. "app::session::flush", taken from __PRETTY_FUNCTION__ at
// compile time (g++ and clang spell it the same way). Names work items in diagnostics, dumps
// and observer events at no run-time cost. Nothing here is a user contract.
#pragma once

#include <wq/config.hpp>

#include <array>
#include <cstddef>
#include <string_view>

namespace wq::detail {

template <auto V>
constexpr std::string_view pretty_value() noexcept {
  return __PRETTY_FUNCTION__;  // "... [with auto V = &app::session::flush; ...]" or "[V = ...]"
}

template <auto V>
constexpr std::string_view value_name() noexcept {
  constexpr std::string_view s = pretty_value<V>();
  constexpr std::size_t key = s.find("V = ");
  if constexpr (key == std::string_view::npos) {
    return "?";
  } else {
    std::size_t b = key + 4;
    if (s[b] == '&') ++b;
    const std::size_t e = s.find_first_of(";]", b);
    return s.substr(b, e - b);
  }
}

/// `storage.data()` is the null-terminated name of V, with static storage duration.
template <auto V>
struct value_name_holder {
  static constexpr std::string_view view = value_name<V>();
  static constexpr std::array<char, view.size() + 1> storage = [] {
    std::array<char, view.size() + 1> a{};
    for (std::size_t i = 0; i < view.size(); ++i) a[i] = view[i];
    return a;
  }();
};

}  // namespace wq::detail
