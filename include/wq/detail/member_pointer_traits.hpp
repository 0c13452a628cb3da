// SPDX-License-Identifier: BSL-1.0
// wq/detail/member_pointer_traits.hpp: the one place where wq turns a member pointer into an
// offset and steps from a field back to the object that contains it.
//
// Provides member_pointer_parts (split `M P::*`), is_static_downcastable_v, parent_from_member
// (Boost + std::launder) and downcast_to_outer (the checked downcast behind container_of_as).
// The public face is wq/container_of.hpp; nothing here is a user contract.
//
// Thread safety: stateless address arithmetic. Lifetime: results are valid only as long as the
// object the field belongs to.
#pragma once

#include <wq/config.hpp>

#include <new>
#include <type_traits>

#include <boost/intrusive/parent_from_member.hpp>

namespace wq::detail {

// ---------------------------------------------------------------------------------------------
// container_of by pointer to data member: technique, formal status, restrictions
// ---------------------------------------------------------------------------------------------
//
// Technique. The kernel's container_of(ptr, type, field) subtracts offsetof(type, field) from
// the field's address. We key the same step on a pointer to data member (`&Parent::field`), so
// the member pointer is both a field's identity and the way back to its owner, and we let
// boost::intrusive::get_parent_from_member (what Intrusive's member hooks use) do the arithmetic.
//
// Formal status. This is not blessed by the standard for arbitrary classes:
//   - there is no standard way to get a byte offset from a member pointer, and offsetof is only
//     conditionally-supported for classes that are not standard-layout (polymorphic classes,
//     mixed access, members in several classes of a hierarchy: our usual parents);
//   - stepping a `char*` derived from a field outside that field's bytes is in the unsettled
//     area of object-representation access (P1839), and std::launder's reachability
//     precondition is not met when the field is not pointer-interconvertible with its parent
//     (anything but the first member of a standard-layout class).
// What Boost does: on GCC, Clang and other Itanium-ABI compilers it applies the member pointer
// to a null Parent pointer and measures the resulting address (the classic null-pointer offset
// trick, formally undefined); on MSVC it reads the offset out of the member pointer's object
// representation and static-asserts that the representation is the plain one-int form.
//
// Why we accept it. Every ABI we target represents such a member pointer as a constant byte
// offset and the compilers define the arithmetic that reverses it; the kernel, Intrusive's
// member_hook and the peers' intrusive lists all rely on this. UBSan (GCC 12, Clang 14) does not
// flag Boost's computation, and test/container_of_test.cpp runs Intrusive's test shapes. We never
// write the null-pointer trick ourselves (house style): it sits behind one call below, so a
// well-defined primitive, once the language has one, is a one-line change. The result is
// laundered, so the optimiser cannot carry what it knows about the field pointer over to
// accesses through the recovered parent.
//
// Restriction: virtual bases. If the field is declared in a virtual base V of Outer, the
// distance from V to Outer is known only at run time (through the vtable) and differs between a
// complete Outer and an Outer base subobject, so no offset recovers Outer. The language already
// refuses to convert `M V::*` to `M Outer::*`, so a member pointer always names a class holding
// the field at a fixed offset; the hazard is only the V-to-Outer downcast, which
// downcast_to_outer static_asserts away (that static_cast is ill-formed for virtual bases).
// Boost documents the same limit ("does not work with pointer to members that rely on virtual
// inheritance"). Fields of a class that merely *has* virtual bases sit at a fixed offset and
// work on GCC and Clang (tested); Boost 1.81's MSVC path rejects at compile time every member
// pointer wider than one int, which includes those.
// ---------------------------------------------------------------------------------------------

/// True when T is a pointer to a data member (not a member function, not an ordinary pointer).
template <class T>
inline constexpr bool is_data_member_pointer_v = std::is_member_object_pointer_v<T>;

/// Splits `Member Parent::*` into its parts; empty for every other type.
template <class T>
struct member_pointer_parts {};

template <class Parent, class Member>
requires(!std::is_function_v<Member>) struct member_pointer_parts<Member Parent::*> {
  using parent_type = Parent;
  using member_type = Member;
};

template <auto Member>
using parent_of_t = typename member_pointer_parts<decltype(Member)>::parent_type;

template <auto Member>
using field_of_t = typename member_pointer_parts<decltype(Member)>::member_type;

/// Whether `static_cast<Outer*>(Base*)` is well formed: Base is Outer or a public, unambiguous,
/// non-virtual base of it (access is checked from wq::detail).
template <class Base, class Outer>
inline constexpr bool is_static_downcastable_v = requires(Base* base) {
  static_cast<Outer*>(base);
};

/// Recovers the object whose `Member` subobject `field` is.
/// Preconditions: `field` is the (non-null) `Member` subobject of a live parent_of_t<Member>.
template <auto Member>
requires(!std::is_const_v<field_of_t<Member>>)
    [[nodiscard]] inline parent_of_t<Member>* parent_from_member(
        field_of_t<Member>* field) noexcept {
  using parent = parent_of_t<Member>;
  using field_type = field_of_t<Member>;
  // Safety: by the precondition `field` lies inside a live `parent`, at the offset `Member`
  // denotes; Boost subtracts that offset (see the block above for how and why we accept it).
  parent* const raw = boost::intrusive::get_parent_from_member<parent, field_type>(field, Member);
  // Safety: a live `parent` sits at `raw` (precondition); launder makes the result point to
  // that object, not to storage reached by arithmetic on the field. Its reachability
  // precondition is formally unmet for most fields; see "Formal status" above.
  return std::launder(raw);
}

/// As above, for a pointer to const; constness is kept, never cast away.
template <auto Member>
[[nodiscard]] inline const parent_of_t<Member>* parent_from_member(
    const field_of_t<Member>* field) noexcept {
  using parent = parent_of_t<Member>;
  using field_type = std::remove_const_t<field_of_t<Member>>;
  // Safety: as in the non-const overload.
  const parent* const raw =
      boost::intrusive::get_parent_from_member<parent, field_type>(field, Member);
  // Safety: as in the non-const overload.
  return std::launder(raw);
}

/// Downcasts `base` (possibly to const) to its Outer, rejecting at compile time every Outer a
/// static_cast cannot reach. Preconditions: `*base` is the Base subobject of a live Outer.
template <class Outer, class Base>
[[nodiscard]] inline auto* downcast_to_outer(Base* base) noexcept {
  using base_class = std::remove_const_t<Base>;
  using result = std::conditional_t<std::is_const_v<Base>, const Outer, Outer>;
  static_assert(std::is_class_v<Outer> && !std::is_const_v<Outer> && !std::is_volatile_v<Outer>,
                "wq: Outer must be a class type without cv-qualifiers");
  static_assert(std::is_base_of_v<base_class, Outer>,
                "wq: Outer is not derived from the class that declares the member; "
                "container_of cannot recover Outer");
  static_assert(
      !std::is_base_of_v<base_class, Outer> || is_static_downcastable_v<base_class, Outer>,
      "wq: the member's class is a virtual (or ambiguous, or inaccessible) base of Outer; "
      "container_of cannot recover Outer");
  if constexpr (std::is_base_of_v<base_class, Outer> &&
                is_static_downcastable_v<base_class, Outer>) {
    // Safety: Base is a non-virtual, unambiguous, accessible base of Outer (checked above), so
    // the static_cast applies the fixed offset of that base; it is valid because `*base` is
    // the Base subobject of a live Outer (precondition).
    return static_cast<result*>(base);
  } else {
    // Only compiled when a static_assert above failed; avoids a second, noisier error.
    return static_cast<result*>(nullptr);
  }
}

}  // namespace wq::detail
