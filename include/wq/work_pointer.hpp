// SPDX-License-Identifier: BSL-1.0
// wq/work_pointer.hpp: how an owning pointer travels through a queue (Rust's `WorkItemPointer`).
//
// `work_pointer_traits<P>` is the customisation point: it says what P points to, whether two
// pointers of type P to one object can coexist (if not, "already pending" cannot happen), how the
// queue takes P's ownership when an item is queued (`release`) and how it gives it back to the
// run function or to a canceller (`reclaim`). Provided for:
//
//   T*                      # Safety: the caller keeps the object alive until it has run or
//                           a cancel_*_sync has returned. Already pending: false, nothing owned.
//   std::unique_ptr<T>      (Rust `Pin<KBox<T>>`) The queue owns the object while pending and
//                           hands it to run. Already pending is impossible: the caller held the
//                           only pointer (asserted).
//   boost::intrusive_ptr<T> (Rust `ARef<T>`) The queue holds one reference while pending; run
//                           receives it. Already pending: the caller's reference is handed back.
//   std::shared_ptr<T>      (Rust `Arc<T>`) Same as intrusive_ptr; the reference is stored in the
//                           item, so the member must be a `shared_work`/`shared_delayed_work`.
//
// Every reference the queue takes is released exactly once: by run (which receives it), by a
// cancellation (which hands it back) or by a queue that refuses the item (which hands it back).
//
// Thread safety: the traits are stateless.
#pragma once

#include <wq/config.hpp>

#include <concepts>
#include <memory>
#include <type_traits>

#include <boost/smart_ptr/intrusive_ptr.hpp>

#include <wq/impl/work_access.hpp>
#include <wq/shared_work.hpp>

namespace wq {

/// Customisation point; see the file comment. P must be default-constructible (a queued call
/// returns an empty P in enqueue_result), and `release` must leave the pointer it is given
/// without ownership. Specialise it for your own smart pointer with:
/// \code
///   using element_type = ...;
///   static constexpr bool unique = ...;            // two Ps to one object cannot coexist
///   static element_type* get(const P&) noexcept;
///   template <class Field> static void release(P&&, Field&) noexcept;   // queue takes over
///   template <class Field> static P reclaim(element_type*, Field&) noexcept;
/// \endcode
template <class P>
struct work_pointer_traits;

template <class T>
struct work_pointer_traits<T*> {
  using element_type = T;
  static constexpr bool unique = false;
  static T* get(T* p) noexcept { return p; }
  template <class Field>
  static void release(T*&&, Field&) noexcept {}
  template <class Field>
  static T* reclaim(T* obj, Field&) noexcept {
    return obj;
  }
};

template <class T, class D>
struct work_pointer_traits<std::unique_ptr<T, D>> {
  static_assert(std::is_empty_v<D> && std::is_default_constructible_v<D>,
                "wq: std::unique_ptr work items need a stateless, default-constructible deleter "
                "(the queue keeps only the object pointer while the item is pending)");
  using element_type = T;
  static constexpr bool unique = true;
  static T* get(const std::unique_ptr<T, D>& p) noexcept { return p.get(); }
  template <class Field>
  static void release(std::unique_ptr<T, D>&& p, Field&) noexcept {
    // Safety: ownership moves into the queue; reclaim() adopts the same pointer exactly once.
    (void)p.release();
  }
  template <class Field>
  static std::unique_ptr<T, D> reclaim(T* obj, Field&) noexcept {
    return std::unique_ptr<T, D>(obj);
  }
};

template <class T>
struct work_pointer_traits<boost::intrusive_ptr<T>> {
  using element_type = T;
  static constexpr bool unique = false;
  static T* get(const boost::intrusive_ptr<T>& p) noexcept { return p.get(); }
  template <class Field>
  static void release(boost::intrusive_ptr<T>&& p, Field&) noexcept {
    // Safety: the reference count is left incremented; reclaim() adopts that reference.
    (void)p.detach();
  }
  template <class Field>
  static boost::intrusive_ptr<T> reclaim(T* obj, Field&) noexcept {
    return boost::intrusive_ptr<T>(obj, /*add_ref=*/false);
  }
};

template <class T>
struct work_pointer_traits<std::shared_ptr<T>> {
  using element_type = T;
  static constexpr bool unique = false;
  static T* get(const std::shared_ptr<T>& p) noexcept { return p.get(); }
  template <class Field>
  static void release(std::shared_ptr<T>&& p, Field& field) noexcept {
    static_assert(
        std::is_base_of_v<shared_work, Field> || std::is_base_of_v<shared_delayed_work, Field>,
        "wq: a std::shared_ptr-owned item must use a wq::shared_work or "
        "wq::shared_delayed_work member (the queue's reference is stored in it)");
    detail::work_access::shared_slot(field).store(std::move(p));
  }
  template <class Field>
  static std::shared_ptr<T> reclaim(T*, Field& field) noexcept {
    return detail::work_access::shared_slot(field).template take<T>();
  }
};

/// Satisfied by pointer types that work_pointer_traits knows how to carry through a queue.
template <class P>
concept work_pointer = std::default_initializable<P> && requires(const P& p) {
  typename work_pointer_traits<P>::element_type;
  { work_pointer_traits<P>::get(p) }
  noexcept;
};

}  // namespace wq
