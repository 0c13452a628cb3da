// SPDX-License-Identifier: BSL-1.0
// wq/impl/cancel.hpp: template bodies of wq/cancel.hpp.
#pragma once

// Part of <wq/cancel.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_CANCEL_HPP_DECLARED
#error "<wq/impl/cancel.hpp> is part of <wq/cancel.hpp>: include <wq/cancel.hpp>"
#endif

#include <chrono>
#include <utility>

#include <wq/detail/diagnostics.hpp>
#include <wq/impl/claim.hpp>

namespace wq {
namespace detail {

/// Reaches a workqueue's engine for the free functions of cancel.hpp.
struct queue_access {
  static queue_core* core(const workqueue& q) noexcept { return q.core_; }
  static std::uint64_t id(const workqueue& q) noexcept { return q.id_; }
  static void begin_async_destroy(workqueue& q, async_waiter* w) noexcept {
    q.begin_async_destroy(w);
  }
  /// Marks one of the system queues (src/system_queues.cpp), before it is shared.
  static void mark_system(workqueue& q) noexcept { q.system_ = true; }
};

/// Takes the queue's reference out of a grabbed item queued with `Pointer`, then releases
/// PENDING. Returns the reference.
template <auto Member, class Pointer>
std::optional<Pointer> reclaim_grabbed(typename work_pointer_traits<Pointer>::element_type& obj,
                                       work& w) noexcept {
  using traits = work_pointer_traits<Pointer>;
  const work_ops* ops = work_access::ops(w).load(std::memory_order_relaxed);
  if (ops != &typed_ops<Member, Pointer>::value) {
    WQ_ASSERT(false, "wq: typed cancel with another pointer type than the item was queued with");
    ops->drop(&w);  // still release what the queue held, exactly once
    return std::nullopt;
  }
  auto& field = static_cast<member_parent_t<Member>&>(obj).*Member;
  std::optional<Pointer> out(traits::reclaim(&obj, field));
  unclaim_pending(w);
  return out;
}

/// The typed mod_delayed_work once its checks passed; `delay` already converted.
template <auto Member, class Pointer>
mod_result<Pointer> typed_mod(workqueue& queue, Pointer pointer,
                              std::chrono::nanoseconds delay) noexcept {
  using traits = work_pointer_traits<Pointer>;
  auto* obj = traits::get(pointer);
  if (obj == nullptr) {
    // Refused in every build type: there is no object whose member could be queued.
    report_null_pointer<Member>("mod_delayed_work", queue.name().c_str());
    return {false, queue_status::null_pointer, std::move(pointer)};
  }
  // Safety: an upcast; check_typed proved that the member's class is a base of the pointee's.
  auto& field = static_cast<member_parent_t<Member>&>(*obj).*Member;
  work& w = field;
  if (refuse_c_style<Member>(field, "mod_delayed_work", queue.name().c_str()))
    return {false, queue_status::rejected, std::move(pointer)};
  if constexpr (!traits::unique) {
    // Armed here already (the debounce case): the deadline moves in one critical section, and
    // the caller keeps its pointer, as below when the instance was pending.
    if (move_armed(queue_access::core(queue), queue_access::id(queue), field, delay))
      return {true, queue_status::queued, std::move(pointer)};
  }
  const mod_grab g = grab_for_mod(w, queue_access::id(queue));
  const bool was_pending = g.was_pending;
  WQ_ASSERT(!(was_pending && traits::unique),
            "wq: a uniquely owned item cannot be pending while its owner holds it");
  if (w.disable_count() != 0) {
    g.dropped();
    // Rule 20d: a pending instance is cancelled (its reference released), nothing re-queued.
    if (was_pending) {
      work_access::ops(w).load(std::memory_order_relaxed)->drop(&w);
    } else {
      unclaim_pending(w);
    }
    return {was_pending, queue_status::disabled, std::move(pointer)};
  }
  if (!was_pending) {
    work_access::ops(w).store(&typed_ops<Member, Pointer>::value, std::memory_order_relaxed);
    traits::release(std::move(pointer), field);
  }
  auto link = [&](bool as_chained) {
    return link_or_arm(queue_access::core(queue), queue_access::id(queue), w, delay, nullptr,
                       !g.moved, as_chained);
  };
  queue_status st = link(false);
  if (st != queue_status::queued &&
      work_access::ops(w).load(std::memory_order_relaxed) != &typed_ops<Member, Pointer>::value) {
    // A pending instance queued with another pointer type (asserted where the types meet):
    // release what the queue held, exactly once, as a cancel does.
    g.dropped();
    work_access::ops(w).load(std::memory_order_relaxed)->drop(&w);
    return {was_pending, st, std::move(pointer)};
  }
  // Refused: a call told already_pending while this call held the instance still gets its run
  // (settle_claim); otherwise the reference the item holds comes back in `back`: the caller's
  // own, or the dropped instance's (released when `back` goes out of scope, as by a cancel).
  Pointer back{};
  st = settle_claim(
      w, st, link, [&] { back = traits::reclaim(obj, field); },
      [&] { traits::release(std::move(back), field); });
  if (st != queue_status::queued) {
    g.dropped();
    if (was_pending) return {was_pending, st, std::move(pointer)};
    return {was_pending, st, std::move(back)};
  }
  if (was_pending) return {was_pending, st, std::move(pointer)};
  return {was_pending, st, Pointer{}};
}

}  // namespace detail

template <auto Member, class Pointer>
std::optional<Pointer> cancel_work(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    // Safety: an upcast; check_typed proved that the member's class is a base of the object's.
    work& w = static_cast<member_parent_t<Member>&>(obj).*Member;
    if (detail::grab_pending(w) == detail::grab_result::idle) {
      detail::unclaim_pending(w);
      return std::nullopt;
    }
    return detail::reclaim_grabbed<Member, Pointer>(obj, w);
  }
}

template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> cancel_work(T& obj) noexcept {
  if constexpr (!detail::check_deduced<Member, T, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    return cancel_work<Member, detail::deduced_run_pointer_t<T, Member>>(obj);
  }
}

template <auto Member, class Pointer>
std::optional<Pointer> cancel_work_sync(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    // Safety: an upcast, as in cancel_work.
    work& w = static_cast<member_parent_t<Member>&>(obj).*Member;
    // Disabled while waiting, so a self-requeue of the running instance fails (rule 29).
    detail::disable_inc(w);
    std::optional<Pointer> out = cancel_work<Member, Pointer>(obj);
    detail::wait_not_running(w);
    detail::disable_dec(w);
    return out;
  }
}

template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> cancel_work_sync(T& obj) noexcept {
  if constexpr (!detail::check_deduced<Member, T, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    return cancel_work_sync<Member, detail::deduced_run_pointer_t<T, Member>>(obj);
  }
}

template <auto Member, class Pointer>
std::optional<Pointer> disable_work(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    // Safety: an upcast; check_typed proved that the member's class is a base of the object's.
    work& w = static_cast<member_parent_t<Member>&>(obj).*Member;
    detail::disable_inc(w);  // before the cancel, as disable_work: nothing can queue it again
    return cancel_work<Member, Pointer>(obj);
  }
}

template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> disable_work(T& obj) noexcept {
  if constexpr (!detail::check_deduced<Member, T, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    return disable_work<Member, detail::deduced_run_pointer_t<T, Member>>(obj);
  }
}

template <auto Member, class Pointer>
std::optional<Pointer> disable_work_sync(
    typename work_pointer_traits<Pointer>::element_type& obj) noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    std::optional<Pointer> out = disable_work<Member, Pointer>(obj);
    // Safety: an upcast, as in disable_work.
    detail::wait_not_running(static_cast<member_parent_t<Member>&>(obj).*Member);
    return out;
  }
}

template <auto Member, class T>
std::optional<detail::deduced_run_pointer_t<T, Member>> disable_work_sync(T& obj) noexcept {
  if constexpr (!detail::check_deduced<Member, T, false>()) {
    return std::nullopt;  // a check failed to compile
  } else {
    return disable_work_sync<Member, detail::deduced_run_pointer_t<T, Member>>(obj);
  }
}

template <class Delay>
requires wq::delay<Delay>
bool mod_delayed_work(workqueue& queue, delayed_work& item, Delay delay) noexcept {
  const work_ops* ops = detail::work_access::ops(item).load(std::memory_order_relaxed);
  if (ops == nullptr || ops->owning) {
    if (ops == nullptr) {
      detail::report(errc::no_work_function, "mod_delayed_work refused");
    } else {
      detail::report(errc::untyped_on_owning_item,
                     "mod_delayed_work refused: use the typed form, which hands the reference "
                     "back");
    }
    return false;
  }
  const auto span = delay_to_nanoseconds(delay);
  // Armed here already (the debounce case): the deadline moves in one critical section.
  if (detail::move_armed(detail::queue_access::core(queue), detail::queue_access::id(queue), item,
                         span))
    return true;
  const detail::mod_grab g = detail::grab_for_mod(item, detail::queue_access::id(queue));
  if (item.disable_count() != 0) {
    g.dropped();
    detail::unclaim_pending(item);  // rule 20d: cancelled, not re-queued
    return g.was_pending;
  }
  auto link = [&](bool as_chained) {
    return detail::link_or_arm(detail::queue_access::core(queue), detail::queue_access::id(queue),
                               item, span, nullptr, !g.moved, as_chained);
  };
  // Refused: a call told already_pending meanwhile still gets its run (settle_claim).
  if (detail::settle_claim(
          item, link(false), link, [] {}, [] {}) != queue_status::queued)
    g.dropped();
  return g.was_pending;
}

template <class Item, class Delay>
requires detail::shared_item<Item> && wq::delay<Delay>
bool mod_delayed_work(workqueue&, Item&, Delay) noexcept {
  static_assert(detail::dependent_false<Item>,
                "wq: mod_delayed_work(q, item, delay) on a wq::shared_work or "
                "wq::shared_delayed_work: the item holds a std::shared_ptr that only the typed "
                "form hands over; use mod_delayed_work<&T::m>(q, ptr, delay)");
  return false;
}

template <class Item>
requires detail::shared_item<Item>
bool enable_and_queue_work(workqueue&, Item&) noexcept {
  static_assert(detail::dependent_false<Item>,
                "wq: enable_and_queue_work on a wq::shared_work or wq::shared_delayed_work: "
                "the item holds a std::shared_ptr that only the typed form hands over; use "
                "enable_work(item), then q.enqueue<&T::m>(ptr)");
  return false;
}

template <auto Member, class Pointer, class Delay>
requires wq::delay<Delay> mod_result<Pointer> mod_delayed_work(workqueue& queue, Pointer pointer,
                                                               Delay delay)
noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, true>()) {
    return {false, queue_status::rejected, std::move(pointer)};  // a check failed to compile
  } else {
    return detail::typed_mod<Member>(queue, std::move(pointer), delay_to_nanoseconds(delay));
  }
}

}  // namespace wq
