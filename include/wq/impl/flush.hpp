// SPDX-License-Identifier: BSL-1.0
// wq/impl/flush.hpp: template bodies of wq/flush.hpp (the typed flush_work and
// flush_delayed_work). It includes wq/workqueue.hpp for the typed API's compile-time checks,
// which flush.hpp itself does not need.
#pragma once

// Part of <wq/flush.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_FLUSH_HPP_DECLARED
#error "<wq/impl/flush.hpp> is part of <wq/flush.hpp>: include <wq/flush.hpp>"
#endif

#include <wq/container_of.hpp>
#include <wq/workqueue.hpp>

namespace wq {

template <auto Member, class Pointer>
bool flush_work(typename work_pointer_traits<Pointer>::element_type& obj) noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, false>()) {
    return false;  // a check failed to compile
  } else {
    // Safety: an upcast; check_typed proved that the member's class is a base of the object's.
    work& w = static_cast<member_parent_t<Member>&>(obj).*Member;
    return flush_work(w);
  }
}

template <auto Member, class T>
bool flush_work(T& obj) noexcept {
  if constexpr (!detail::check_deduced<Member, T, false>()) {
    return false;  // a check failed to compile
  } else {
    return flush_work<Member, detail::deduced_run_pointer_t<T, Member>>(obj);
  }
}

template <auto Member, class Pointer>
bool flush_delayed_work(typename work_pointer_traits<Pointer>::element_type& obj) noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, true>()) {
    return false;  // a check failed to compile
  } else {
    // Safety: an upcast, as in flush_work above.
    delayed_work& d = static_cast<member_parent_t<Member>&>(obj).*Member;
    return flush_delayed_work(d);
  }
}

template <auto Member, class T>
bool flush_delayed_work(T& obj) noexcept {
  if constexpr (!detail::check_deduced<Member, T, true>()) {
    return false;  // a check failed to compile
  } else {
    return flush_delayed_work<Member, detail::deduced_run_pointer_t<T, Member>>(obj);
  }
}

}  // namespace wq
