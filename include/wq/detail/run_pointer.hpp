// SPDX-License-Identifier: BSL-1.0
// wq/detail/run_pointer.hpp: what a class's `run` overloads say about one work member: whether
// the class has a `run` at all, whether it has one for `wq::id<Member>`, whether that one is
// noexcept, and which pointer type it takes. The typed API uses these to deduce the pointer type
// of the typed cancel, disable and flush (`wq::cancel_work<&T::m>(obj)`), and to say exactly what
// is wrong when the `run` it needs is missing or different. Nothing here is a user contract.
//
// Technique: `&T::run` names an overload set. Deducing `P` from it against a parameter of type
// `void (*)(P, wq::id<Member>) noexcept` is trial deduction ([temp.deduct.call]/6): it is tried
// with each overload and succeeds only if exactly one of them matches, i.e. the one whose second
// parameter is `wq::id<Member>` (for another member the `id` types differ). A `run` that is a
// template, or two `run`s for one member, make the deduction fail.
//
// Thread safety: compile-time only; no state.
#pragma once

#include <wq/config.hpp>

#include <type_traits>

namespace wq {
template <auto Member>
struct id;  // wq/work.hpp (detail/ includes no public header)
}  // namespace wq

namespace wq::detail {

// Declared, never defined: used only in unevaluated operands to deduce P.
template <auto Member, class P>
P run_pointer_of(void (*)(P, id<Member>));  // any `run` for id<Member> (noexcept converts)
template <auto Member, class P>
P noexcept_run_pointer_of(void (*)(P, id<Member>) noexcept);  // only a noexcept one

// Lookup of `run` in run_probe<T> is ambiguous exactly when T (or one of its bases) declares a
// member named `run`, because run_probe_base declares one too.
struct run_probe_base {
  static void run() noexcept;
};
template <class T>
struct run_probe : T, run_probe_base {};

/// Whether class T declares (or inherits) any member named `run`. A final class cannot be
/// probed; it is assumed to have one, and the more specific checks below then speak.
template <class T>
concept has_any_run = std::is_class_v<T> &&
    (std::is_final_v<T> || !requires { &run_probe<T>::run; });

/// Whether T has exactly one static `run(P, wq::id<Member>)`, noexcept or not, for some P.
template <class T, auto Member>
concept has_run_for_member = requires {
  run_pointer_of<Member>(&T::run);
};

/// Whether that `run` is noexcept.
template <class T, auto Member>
concept has_noexcept_run_for_member = requires {
  noexcept_run_pointer_of<Member>(&T::run);
};

/// The pointer type (exactly as declared) of T's `run` for `wq::id<Member>`.
/// Preconditions: has_run_for_member<T, Member>.
template <class T, auto Member>
using run_pointer_t = decltype(run_pointer_of<Member>(&T::run));

/// Stands for the pointer type when T has no `run` for the member; the typed call that deduced
/// it then fails with a static_assert saying what is missing.
struct no_run_for_member {};

template <class T, auto Member, bool = has_run_for_member<T, Member>>
struct deduced_run_pointer {
  using type = no_run_for_member;
};
template <class T, auto Member>
struct deduced_run_pointer<T, Member, true> {
  using type = std::remove_cvref_t<run_pointer_t<T, Member>>;
};

/// The pointer type a typed call on an object of type T deduces for `Member`: the one T's `run`
/// for `wq::id<Member>` takes (without cv or reference, so that a `run` taking
/// `const P&` is reported as a pointer type mismatch, not as a broken return type), or
/// no_run_for_member.
template <class T, auto Member>
using deduced_run_pointer_t = typename deduced_run_pointer<T, Member>::type;

/// True when `run` takes exactly the pointer type passed. A variable template rather than a
/// plain is_same so that the compilers print both types in its name when a static_assert on it
/// fails: run's pointer type first, the one you pass second.
template <class RunTakes, class YouPass>
inline constexpr bool run_takes_the_pointer_you_pass = std::is_same_v<RunTakes, YouPass>;

}  // namespace wq::detail
