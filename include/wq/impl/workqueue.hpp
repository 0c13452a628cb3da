// SPDX-License-Identifier: BSL-1.0
// wq/impl/workqueue.hpp: template bodies of wq/workqueue.hpp: the typed trampolines, the
// compile-time checks that turn misuse into readable errors, and enqueue / enqueue_delayed.
#pragma once

#include <wq/workqueue.hpp>  // normally this file is included from there, at its end

#include <algorithm>
#include <thread>
#include <utility>

namespace wq {
namespace detail {

/// The exact run signature the typed API calls: `static void run(P, wq::id<M>) noexcept`.
template <class T, class P, auto M>
concept has_run_for = requires { static_cast<void (*)(P, id<M>) noexcept>(&T::run); };

/// The checks every typed queueing call makes, in the order a reader would want them.
template <auto Member, class Pointer, bool Delayed>
constexpr bool check_typed() {
  static_assert(is_data_member_pointer_v<decltype(Member)>,
                "wq: enqueue<Member>: Member must name a work member, as in &my_type::my_work");
  using field_type = member_type_t<Member>;
  static_assert(std::is_base_of_v<work, field_type>,
                "wq: enqueue<&T::m>: the member m is not a wq::work / wq::delayed_work "
                "(wrong member type)");
  static_assert(!Delayed || std::is_base_of_v<delayed_work, field_type>,
                "wq: enqueue_delayed<&T::m>: the member m is a plain wq::work; delayed queueing "
                "needs a wq::delayed_work (or wq::shared_delayed_work) member");
  static_assert(work_pointer<Pointer>,
                "wq: the pointer type is not an owning pointer wq can carry: use T*, "
                "std::unique_ptr<T>, std::shared_ptr<T>, boost::intrusive_ptr<T>, or specialise "
                "wq::work_pointer_traits");
  using element = typename work_pointer_traits<Pointer>::element_type;
  static_assert(!std::is_const_v<element>, "wq: work items cannot be queued through a pointer "
                                           "to const");
  static_assert(std::is_base_of_v<member_parent_t<Member>, element>,
                "wq: enqueue<&C::m>(pointer): the member belongs to another class than the "
                "object the pointer points to");
  static_assert(has_run_for<element, Pointer, Member>,
                "wq: the pointee must declare `static void run(Pointer self, "
                "wq::id<&C::m>) noexcept` taking exactly the pointer type you enqueue (pointer "
                "type mismatch, missing run, or run not noexcept)");
  return true;
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
                                  !std::is_pointer_v<Pointer>};
};

/// The typed queueing algorithm shared by enqueue and enqueue_delayed.
template <auto Member, class Pointer, class Link>
enqueue_result<Pointer> typed_queue(Pointer pointer, Link&& link) noexcept {
  using traits = work_pointer_traits<Pointer>;
  using element = typename traits::element_type;
  element* obj = traits::get(pointer);
  WQ_ASSERT(obj != nullptr, "wq: enqueue of a null pointer");
  auto& field = static_cast<member_parent_t<Member>&>(*obj).*Member;
  work& w = field;
  switch (claim_pending(w)) {
    case claim_result::already_pending:
      WQ_ASSERT(!traits::unique,
                "wq: a uniquely owned item cannot already be pending (was it queued through a "
                "raw pointer too?)");
      return {queue_status::already_pending, std::move(pointer)};
    case claim_result::disabled:
      return {queue_status::disabled, std::move(pointer)};
    case claim_result::claimed:
      break;
  }
  // Safety (relaxed): the ops pointer is published to workers by the queue mutex taken in link.
  work_access::ops(w).store(&typed_ops<Member, Pointer>::value, std::memory_order_relaxed);
  traits::release(std::move(pointer), field);
  const queue_status st = link(field);
  if (st != queue_status::queued) {
    Pointer back = traits::reclaim(obj, field);
    unclaim_pending(w);
    return {st, std::move(back)};
  }
  return {queue_status::queued, Pointer{}};
}

}  // namespace detail

template <class Executor>
  requires boost::asio::execution::executor<Executor>
workqueue::workqueue(const Executor& ex, std::string_view name, queue_flags flags,
                     int max_active)
    : name_(name),
      flags_(flags),
      requested_max_active_(max_active),
      context_(&boost::asio::query(ex, boost::asio::execution::context)) {
  // The queue's work is outstanding work on `ex` (Asio's convention: run() does not return
  // while it has queued, running or armed items).
  auto box = std::make_unique<detail::executor_box>();
  if (has_flag(flags, queue_flags::ordered)) {
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
  init(std::move(box), has_flag(flags, queue_flags::unbound) ? max_max_active : static_cast<int>(hw));
}

template <auto Member, class Pointer>
enqueue_result<Pointer> workqueue::enqueue(Pointer pointer, const location& where) noexcept {
  static_assert(detail::check_typed<Member, Pointer, false>());
  auto r = detail::typed_queue<Member, Pointer>(std::move(pointer), [this, &where](work& w) {
    return detail::link_claimed(core_, id_, w, &where);
  });
  if (r.status == queue_status::already_pending) note_coalesced();
  return r;
}

template <auto Member, class Pointer, class Delay>
  requires wq::delay<Delay>
enqueue_result<Pointer> workqueue::enqueue_delayed(Pointer pointer, Delay delay,
                                                   const location& where) noexcept {
  static_assert(detail::check_typed<Member, Pointer, true>());
  const std::chrono::nanoseconds ns = delay_to_nanoseconds(delay);
  auto r = detail::typed_queue<Member, Pointer>(std::move(pointer),
                                                [this, ns, &where](delayed_work& w) {
    if (ns.count() == 0) return detail::link_claimed(core_, id_, w, &where);
    return detail::arm_claimed(core_, id_, w, ns, &where);
  });
  if (r.status == queue_status::already_pending) note_coalesced();
  return r;
}

template <class Delay>
  requires wq::delay<Delay>
queue_status workqueue::queue_delayed(delayed_work& item, Delay delay,
                                      const location& where) noexcept {
  const std::chrono::nanoseconds ns = delay_to_nanoseconds(delay);
  if (detail::work_access::ops(item).load(std::memory_order_relaxed) == nullptr) {
    detail::report(errc::no_work_function, "queue_delayed_work on queue '%s' refused",
                 name_.c_str());
    return queue_status::unbound;
  }
  switch (detail::claim_pending(item)) {
    case detail::claim_result::already_pending:
      note_coalesced();
      return queue_status::already_pending;
    case detail::claim_result::disabled: return queue_status::disabled;
    case detail::claim_result::claimed: break;
  }
  const queue_status st = ns.count() == 0 ? detail::link_claimed(core_, id_, item, &where)
                                           : detail::arm_claimed(core_, id_, item, ns, &where);
  if (st != queue_status::queued) detail::unclaim_pending(item);
  return st;
}

}  // namespace wq
