// SPDX-License-Identifier: BSL-1.0
// wq/container_of.hpp: recover an object from a pointer to one of its members, keyed on the
// member pointer `&Class::member` (the kernel's container_of, typed).
//
// Defines member_traits (with member_parent_t, member_type_t and the data_member_pointer
// concept), container_of, container_of_as (for an Outer derived from the member's class) and
// member_of. The member pointer is a field's identity: one object can embed several work items
// of one type and each trampoline finds its owner without numeric IDs or macros.
//
// Thread safety: every function here is pure address arithmetic on its arguments; calls are
// safe from any thread. Lifetime: the pointer returned is valid exactly as long as the object
// containing the field; nothing here extends or checks a lifetime.
//
// How the offset is computed, why that is acceptable although the standard does not bless it for
// every class, and why virtual bases are rejected: see wq/detail/member_pointer_traits.hpp.
#pragma once

#include <wq/config.hpp>

#include <type_traits>

#include <wq/detail/member_pointer_traits.hpp>

namespace wq {

/// Satisfied by pointer-to-data-member types (`M C::*`, M not a function type). Usable as
/// `template <wq::data_member_pointer auto Member>`.
template <class T>
concept data_member_pointer = detail::is_data_member_pointer_v<T>;

/// The class and field types named by a pointer to data member, deduced from the pointer itself.
///
/// `member_traits<&session::flush>` has `parent_type`, the class that *declares* the member
/// (for an inherited member `&Derived::m` has type `M Base::*`, so it is `Base`: use
/// container_of_as to reach `Derived`); `member_type`, the field's type with its cv-qualifiers;
/// and `pointer`, the member pointer itself. Any other argument (member function pointer,
/// ordinary pointer, null member pointer) is rejected by a static_assert naming the problem.
template <auto Member>
struct member_traits {
  static_assert(detail::is_data_member_pointer_v<decltype(Member)>,
                "wq: the template argument is not a pointer to a data member; pass &Class::member");
};

/// Partial specialisation for `M P::*` data member pointers: deduces P and M.
template <class Parent, class Member, Member Parent::*Pointer>
requires(!std::is_function_v<Member>) struct member_traits<Pointer> {
  static_assert(Pointer != nullptr, "wq: the member pointer is null; pass &Class::member");

  using parent_type = Parent;
  using member_type = Member;
  static constexpr auto pointer = Pointer;
};

/// The class that declares the member `Member` points to (member_traits::parent_type).
template <auto Member>
using member_parent_t = typename member_traits<Member>::parent_type;

/// The type of the field `Member` points to (member_traits::member_type).
template <auto Member>
using member_type_t = typename member_traits<Member>::member_type;

/// Returns the object whose `Member` field `field` points to.
///
/// Example:
///
///     struct hook { hook* next = nullptr; };
///     struct session { int id = 0; hook flush; hook timeout; };
///
///     void on_flush(hook* h) noexcept {
///       session* s = wq::container_of<&session::flush>(h);  // not &session::timeout!
///     }
///
/// Preconditions: `field` is not null and points to the `Member` subobject of a live
/// member_parent_t<Member> object (which may itself be a base subobject). The address of another
/// field, even one of the same type, is undefined behaviour and is not diagnosed.
///
/// Returns: a pointer to that object; for a member declared in a base `B`, the `B` subobject.
///
/// Complexity: constant (one subtraction).
///
/// Note: not constexpr: the casts that recover the offset are not allowed in constant
/// evaluation. For a const member only the const overload exists.
template <auto Member>
requires(!std::is_const_v<member_type_t<Member>>)
    [[nodiscard]] inline member_parent_t<Member>* container_of(
        member_type_t<Member>* field) noexcept {
  return detail::parent_from_member<Member>(field);
}

/// Returns the const object whose `Member` field `field` points to.
///
/// Preconditions, Complexity: as for the non-const overload.
template <auto Member>
[[nodiscard]] inline const member_parent_t<Member>* container_of(
    const member_type_t<Member>* field) noexcept {
  return detail::parent_from_member<Member>(field);
}

/// Returns the `Outer` object whose `Member` field `field` points to, where the member is
/// declared in `member_parent_t<Member>` and `Outer` derives from that class.
///
/// For a field declared in a base (`&Base::m`, or `&Outer::m` for an inherited `m`: both are
/// `M Base::*`), recovers the Base subobject with container_of, then `static_cast`s it down.
/// GCC 12 and Clang 14 reject a member pointer converted to `M Outer::*` as a template
/// argument, so this is how to name Outer.
///
/// Mandates (static_assert): Outer is a cv-unqualified class, and member_parent_t<Member> is
/// Outer or a public, unambiguous, **non-virtual** base of it. A virtual base fails with "wq: the
/// member's class is a virtual (or ambiguous, or inaccessible) base of Outer; container_of
/// cannot recover Outer": its distance to Outer is known only at run time.
///
/// Preconditions: as for container_of, and that Base object really is the Base subobject of a
/// live Outer. A wrong Outer is undefined behaviour and is not diagnosed.
///
/// Complexity: constant.
template <class Outer, auto Member>
requires(!std::is_const_v<member_type_t<Member>>)
    [[nodiscard]] inline Outer* container_of_as(member_type_t<Member>* field) noexcept {
  return detail::downcast_to_outer<Outer>(container_of<Member>(field));
}

/// Returns the const `Outer` object whose `Member` field `field` points to.
///
/// Mandates, Preconditions, Complexity: as for the non-const overload.
template <class Outer, auto Member>
[[nodiscard]] inline const Outer* container_of_as(const member_type_t<Member>* field) noexcept {
  return detail::downcast_to_outer<Outer>(container_of<Member>(field));
}

/// Returns \c parent.*Member, the inverse of container_of:
/// `container_of<Member>(&member_of<Member>(p)) == &p` for every live `p`.
template <auto Member>
[[nodiscard]] constexpr member_type_t<Member>& member_of(member_parent_t<Member>& parent) noexcept {
  return parent.*Member;
}

/// Returns the `Member` field of a const `parent`.
template <auto Member>
[[nodiscard]] constexpr const member_type_t<Member>& member_of(
    const member_parent_t<Member>& parent) noexcept {
  return parent.*Member;
}

}  // namespace wq
