// SPDX-License-Identifier: BSL-1.0
// wq/impl/workqueue.hpp: template bodies of wq/workqueue.hpp: the typed trampolines, the
// compile-time checks that turn misuse into readable errors, and enqueue / enqueue_delayed.
#pragma once

// Part of <wq/workqueue.hpp>, which includes it at its end (so it does not include that header
// back: no include cycle).
#ifndef WQ_DETAIL_WORKQUEUE_HPP_DECLARED
#error "<wq/impl/workqueue.hpp> is part of <wq/workqueue.hpp>: include <wq/workqueue.hpp>"
#endif

#include <algorithm>
#include <thread>
#include <utility>

#include <wq/detail/diagnostics.hpp>
#include <wq/detail/engine.hpp>
#include <wq/detail/run_pointer.hpp>
#include <wq/impl/claim.hpp>

namespace wq {
namespace detail {

/// The exact run signature the typed API calls: `static void run(P, wq::id<M>) noexcept`.
template <class T, class P, auto M>
concept has_run_for = requires {
  static_cast<void (*)(P, id<M>) noexcept>(&T::run);
};

// The compile-time checks of the typed API. Each is an `if constexpr` chain that stops at the
// first failed check, so a misuse gives one static_assert with a precise message instead of a
// cascade; each returns whether every check passed, so callers can skip their body (and the
// follow-on errors it would cause) with `if constexpr`.

/// The checks on the member pointer alone.
template <auto Member, bool Delayed>
constexpr bool check_member() {
  if constexpr (!is_data_member_pointer_v<decltype(Member)>) {
    static_assert(is_data_member_pointer_v<decltype(Member)>,
                  "wq: enqueue<Member>: Member must name a work member, as in &my_type::my_work");
    return false;
  } else if constexpr (!std::is_base_of_v<work, member_type_t<Member>>) {
    static_assert(std::is_base_of_v<work, member_type_t<Member>>,
                  "wq: enqueue<&T::m>: the member m is not a wq::work / wq::delayed_work "
                  "(wrong member type)");
    return false;
  } else if constexpr (Delayed && !std::is_base_of_v<delayed_work, member_type_t<Member>>) {
    static_assert(!Delayed || std::is_base_of_v<delayed_work, member_type_t<Member>>,
                  "wq: enqueue_delayed<&T::m>: the member m is a plain wq::work; delayed "
                  "queueing needs a wq::delayed_work (or wq::shared_delayed_work) member");
    return false;
  } else {
    return true;
  }
}

/// The checks on the object's class `Object` (the pointee, or the object a typed cancel, disable
/// or flush is given): it holds the member and declares a `run` for it.
template <auto Member, class Object>
constexpr bool check_object() {
  if constexpr (std::is_const_v<Object>) {
    static_assert(!std::is_const_v<Object>,
                  "wq: work items cannot be queued, cancelled or flushed through a pointer or "
                  "reference to const");
    return false;
  } else if constexpr (!std::is_base_of_v<member_parent_t<Member>, Object>) {
    static_assert(std::is_base_of_v<member_parent_t<Member>, Object>,
                  "wq: enqueue<&C::m>(pointer): the member belongs to another class than the "
                  "object the pointer points to (or the object you pass)");
    return false;
  } else if constexpr (!has_any_run<Object>) {
    static_assert(has_any_run<Object>,
                  "wq: the object's class has no `run` function: declare `static void "
                  "run(Pointer self, wq::id<&C::m>) noexcept` in it, AFTER the member m in the "
                  "class (C++ does not allow naming a member before its declaration in a member "
                  "function signature)");
    return false;
  } else if constexpr (!has_run_for_member<Object, Member>) {
    static_assert(has_run_for_member<Object, Member>,
                  "wq: no `run` for wq::id<&C::m>: declare exactly one `static void run(Pointer "
                  "self, wq::id<&C::m>) noexcept` for the member m, AFTER the member m in the "
                  "class (C++ does not allow naming a member before its declaration in a member "
                  "function signature: a `run` declared above m is an error where it is "
                  "declared, reported first, and does not count)");
    return false;
  } else {
    return true;
  }
}

/// The checks on the `run` for `Member` of class `Element` against the pointer type passed.
/// Preconditions: check_object<Member, Element>() passed.
template <auto Member, class Element, class Pointer>
constexpr bool check_run() {
  using run_takes = run_pointer_t<Element, Member>;
  if constexpr (!run_takes_the_pointer_you_pass<run_takes, Pointer>) {
    static_assert(run_takes_the_pointer_you_pass<run_takes, Pointer>,
                  "wq: the `run` for wq::id<&C::m> takes another pointer type than the one you "
                  "pass: pass exactly the type `run` takes (by value), or change `run`; "
                  "run_takes_the_pointer_you_pass<RunTakes, YouPass>, printed with this error, "
                  "names both types, run's first");
    return false;
  } else if constexpr (!has_noexcept_run_for_member<Element, Member>) {
    static_assert(has_noexcept_run_for_member<Element, Member>,
                  "wq: the `run` for wq::id<&C::m> is not noexcept: work functions are noexcept "
                  "by contract (an escaping exception would end in std::terminate); declare it "
                  "`static void run(Pointer self, wq::id<&C::m>) noexcept`");
    return false;
  } else if constexpr (!has_run_for<Element, Pointer, Member>) {
    // Not expected once the checks above passed; kept so that no other mismatch goes unnamed.
    static_assert(has_run_for<Element, Pointer, Member>,
                  "wq: the pointee must declare `static void run(Pointer self, wq::id<&C::m>) "
                  "noexcept` taking exactly the pointer type you pass");
    return false;
  } else {
    return true;
  }
}

/// The checks every typed call with a known pointer type makes, in the order a reader would
/// want them. Returns whether all passed.
template <auto Member, class Pointer, bool Delayed>
constexpr bool check_typed() {
  if constexpr (!check_member<Member, Delayed>()) {
    return false;
  } else if constexpr (!work_pointer<Pointer>) {
    static_assert(work_pointer<Pointer>,
                  "wq: the pointer type is not an owning pointer wq can carry: use T*, "
                  "std::unique_ptr<T>, std::shared_ptr<T>, boost::intrusive_ptr<T>, or "
                  "specialise wq::work_pointer_traits");
    return false;
  } else {
    using element = typename work_pointer_traits<Pointer>::element_type;
    if constexpr (!check_object<Member, element>()) {
      return false;
    } else {
      return check_run<Member, element, Pointer>();
    }
  }
}

/// The checks a typed cancel, disable or flush makes before deducing the pointer type from the
/// `run` of `Object` (the class of the object passed). Returns whether all passed; the form
/// with the deduced pointer type then makes the rest (check_typed).
template <auto Member, class Object, bool Delayed>
constexpr bool check_deduced() {
  if constexpr (!check_member<Member, Delayed>()) {
    return false;
  } else if constexpr (work_pointer<std::remove_const_t<Object>> &&
                       !std::is_base_of_v<member_parent_t<Member>, Object>) {
    static_assert(!work_pointer<std::remove_const_t<Object>>,
                  "wq: cancel_work<&T::m>(obj) and the other typed cancel, disable and flush "
                  "calls take the object (*pointer), not a pointer to it");
    return false;
  } else {
    return check_object<Member, Object>();
  }
}

/// The trampolines for member `Member` carried by pointer type `Pointer`.
template <auto Member, class Pointer>
struct typed_ops {
  using traits = work_pointer_traits<Pointer>;
  using element = typename traits::element_type;
  using field_type = member_type_t<Member>;

  static field_type& field_of(work* w) noexcept {
    // Safety: these ops are installed only on the `field_type` member named by Member (see
    // enqueue), and work is a non-virtual base of field_type, so the downcast is exact.
    return *static_cast<field_type*>(w);
  }
  static element* object_of(field_type& f) noexcept {
    // Safety: container_of_as checks at compile time that element is derived (non-virtually)
    // from the member's class; enqueue took this field from an element object.
    return container_of_as<element, Member>(&f);
  }
  static void run(work* w) noexcept {
    field_type& f = field_of(w);
    element* obj = object_of(f);
    Pointer self = traits::reclaim(obj, f);
    begin_run_inline(*w);  // only now may a new instance be queued (and store its reference)
    element::run(std::move(self), id<Member>{});
  }
  static void drop(work* w) noexcept {
    field_type& f = field_of(w);
    [[maybe_unused]] Pointer released = traits::reclaim(object_of(f), f);
    unclaim_pending(*w);
    // `released` goes out of scope here, releasing the queue's reference (possibly the last).
  }
  static constexpr work_ops value{&run, &drop, value_name_holder<Member>::storage.data(),
                                  !std::is_pointer_v<Pointer>, !std::is_pointer_v<Pointer>};
};

/// Reports a typed queueing call given a null or moved-from pointer (errc::null_pointer).
/// `call` names the call ("enqueue", ...), `queue` the queue's name.
template <auto Member>
void report_null_pointer(const char* call, const char* queue) noexcept {
  report(errc::null_pointer,
         "%s<&%s> on queue '%s' given a null (or moved-from) pointer: refused, nothing queued, "
         "pointer handed back",
         call, value_name_holder<Member>::storage.data(), queue);
}

/// Returns: whether `field` was built with a C-style work function (work_ops::c_style), which a
/// typed call would replace with the class's run(); if so, reports errc::typed_on_c_style_item
/// for `call` on `queue`, and the caller refuses (queue_status::rejected, pointer handed back).
/// Memory ordering: relaxed; a C-style item's ops never change (only the typed calls, which
/// refuse it, store ops).
template <auto Member>
bool refuse_c_style(const work& field, const char* call, const char* queue) noexcept {
  const work_ops* ops = work_access::ops(field).load(std::memory_order_relaxed);
  if (ops == nullptr || !ops->c_style) return false;
  report(errc::typed_on_c_style_item,
         "%s<&%s> on queue '%s' refused: the item was built with the C-style work function %s "
         "(wq::fn_ops), which the typed call would replace with the class's run(); queue it "
         "with queue_work / queue_delayed_work, or build it without a function; pointer handed "
         "back",
         call, value_name_holder<Member>::storage.data(), queue, ops->name);
  return true;
}

/// The typed queueing algorithm shared by enqueue and enqueue_delayed. A null pointer is
/// refused here, in every build type: there is no object whose member could be queued; so is
/// an item built with a C-style work function (refuse_c_style). `link(w, as_chained)` links or
/// arms the claimed item (see claim_and_link for `as_chained`).
template <auto Member, class Pointer, class Link>
enqueue_result<Pointer> typed_queue(Pointer pointer, const char* call, const workqueue& queue,
                                    Link&& link) noexcept {
  using traits = work_pointer_traits<Pointer>;
  using element = typename traits::element_type;
  element* obj = traits::get(pointer);
  if (obj == nullptr) {
    report_null_pointer<Member>(call, queue.name().c_str());
    return {queue_status::null_pointer, std::move(pointer)};
  }
  auto& field = static_cast<member_parent_t<Member>&>(*obj).*Member;
  if (refuse_c_style<Member>(field, call, queue.name().c_str()))
    return {queue_status::rejected, std::move(pointer)};
  Pointer back{};
  const queue_status st = claim_and_link(
      field,
      [&](bool as_chained) {
        if (!as_chained) {  // the second call links what the first one handed over
          // Safety (relaxed): the ops pointer is published to workers by the queue mutex taken
          // in link.
          work_access::ops(field).store(&typed_ops<Member, Pointer>::value,
                                        std::memory_order_relaxed);
          traits::release(std::move(pointer), field);
        }
        return link(field, as_chained);
      },
      [&] { back = traits::reclaim(obj, field); },
      [&] { traits::release(std::move(back), field); });
  switch (st) {
    case queue_status::queued: return {st, Pointer{}};
    case queue_status::already_pending:
      WQ_ASSERT(!traits::unique,
                "wq: a uniquely owned item cannot already be pending (was it queued through a "
                "raw pointer too?)");
      return {st, std::move(pointer)};
    case queue_status::disabled: return {st, std::move(pointer)};
    default: return {st, std::move(back)};  // refused by the queue: the pointer comes back
  }
}

}  // namespace detail

template <class Executor>
requires boost::asio::execution::executor<Executor> workqueue::workqueue(
    const Executor& ex, std::string_view name, const queue_options& options, bool is_ordered)
    : flags_(options.flags), ordered_(is_ordered) {
  if (options.threads != 0) refuse_threads_on_executor(name);
  // The queue's work is outstanding work on `ex` (Asio's convention: run() does not return
  // while it has queued, running or armed items).
  auto box = std::make_unique<detail::executor_box>();
  if (is_ordered) {
    if constexpr (detail::is_strand<Executor>::value) {
      box->emplace(ex, true);
    } else if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>) {
      // A strand behind the type erasure (e.g. a socket's executor) is used as it is, so the
      // queue's items serialise with that strand's handlers, as with the strand itself.
      if (!detail::visit_strand(ex, [&box](const auto& s) { box->emplace(s, true); }))
        box->emplace(boost::asio::make_strand(ex), true);
    } else {
      box->emplace(boost::asio::make_strand(ex), true);
    }
  } else {
    box->emplace(ex, true);
  }
  // The executor's thread count is unknown: a bound queue runs as many items at once as the
  // machine has cores; an unbound one up to max_active (rule 41).
  const unsigned hw = std::max(2u, std::thread::hardware_concurrency());
  init(name, options.max_active, boost::asio::query(ex, boost::asio::execution::context),
       std::move(box),
       has_flag(flags_, queue_flags::unbound) ? max_max_active : static_cast<int>(hw));
}

template <auto Member, class Pointer>
enqueue_result<Pointer> workqueue::enqueue(Pointer pointer, const location& where) noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, false>()) {
    return {queue_status::rejected, std::move(pointer)};  // a check failed to compile
  } else {
    return enqueue_after<Member>(std::move(pointer), std::chrono::nanoseconds(0), "enqueue", where);
  }
}

template <auto Member, class Pointer, class Delay>
requires wq::delay<Delay> enqueue_result<Pointer> workqueue::enqueue_delayed(Pointer pointer,
                                                                             Delay delay,
                                                                             const location& where)
noexcept {
  if constexpr (!detail::check_typed<Member, Pointer, true>()) {
    return {queue_status::rejected, std::move(pointer)};  // a check failed to compile
  } else {
    return enqueue_after<Member>(std::move(pointer), delay_to_nanoseconds(delay), "enqueue_delayed",
                                 where);
  }
}

template <auto Member, class Pointer>
enqueue_result<Pointer> workqueue::enqueue_after(Pointer pointer, std::chrono::nanoseconds delay,
                                                 const char* call, const location& where) noexcept {
  auto r = detail::typed_queue<Member, Pointer>(
      std::move(pointer), call, *this, [this, delay, &where](work& w, bool as_chained) {
        return detail::link_or_arm(core_, id_, w, delay, &where, true, as_chained);
      });
  if (r.status == queue_status::already_pending) note_coalesced();
  return r;
}

template <class Delay>
requires wq::delay<Delay> queue_status workqueue::queue_delayed(delayed_work& item, Delay delay,
                                                                const location& where)
noexcept { return queue_untyped(item, delay_to_nanoseconds(delay), where); }

template <class Item>
requires detail::shared_item<Item> queue_status workqueue::queue(Item&, const location&)
noexcept {
  static_assert(detail::dependent_false<Item>,
                "wq: queue_work / workqueue::queue on a wq::shared_work or "
                "wq::shared_delayed_work: the item holds a std::shared_ptr that only the typed "
                "form hands over; use q.enqueue<&T::m>(ptr)");
  return queue_status::rejected;
}

template <class Item, class Delay>
requires detail::shared_item<Item> && wq::delay<Delay> queue_status
workqueue::queue_delayed(Item&, Delay, const location&)
noexcept {
  static_assert(detail::dependent_false<Item>,
                "wq: queue_delayed_work / workqueue::queue_delayed on a wq::shared_work or "
                "wq::shared_delayed_work: the item holds a std::shared_ptr that only the typed "
                "form hands over; use q.enqueue_delayed<&T::m>(ptr, delay)");
  return queue_status::rejected;
}

}  // namespace wq
